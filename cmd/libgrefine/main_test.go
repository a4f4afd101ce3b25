package main

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/internal/testenv"
	"github.com/grefine/grefine/pipeline"
)

// The header's grefine_status values are the pipeline's Status values.
func TestHeaderStatusIsPipelineStatus(t *testing.T) {
	require.Len(t, headerStatus, int(pipeline.StatusInternal)+1)
	for s, v := range headerStatus {
		assert.Equal(t, int(s), v, "GREFINE status for %s", s)
	}
}

// tools/lib.sh reads the ABI from the header; so does the compiled library.
func TestABIVersion(t *testing.T) {
	h, err := os.ReadFile(testenv.Path(t, "include", "grefine.h"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^#define GREFINE_ABI_VERSION (\d+)$`).FindSubmatch(h)
	require.NotNil(t, m)
	v, _ := strconv.Atoi(string(m[1]))
	assert.Equal(t, v, headerABI)
}

func TestTruncateUTF8(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		n        int
		want     string
	}{
		{"fits", "abc", 5, "abc"},
		{"cut", "abcdef", 3, "abc"},
		{"no split of a two-byte rune", "aé", 2, "a"},
		{"no split of a three-byte rune", "a€b", 3, "a"},
		{"zero", "abc", 0, ""},
	} {
		assert.Equal(t, tc.want, truncateUTF8(tc.in, tc.n), tc.name)
	}
}

// BenchmarkPipelineAssess is the Go side of the C-overhead comparison (bench/RESULTS.md,
// Embedding): Pipeline.Assess on the tiny set with the image and prompt tests/c/bench_assess
// uses.
func BenchmarkPipelineAssess(b *testing.B) {
	p, err := pipeline.Open(context.Background(), pipeline.Config{Models: testenv.Path(b, "testdata", "models", "tiny"),
		BackendInstance: testenv.ORT(b), AssessOnly: true})
	require.NoError(b, err)
	defer p.Close()
	data, err := os.ReadFile(testenv.Path(b, "testdata", "images", "sample.png"))
	require.NoError(b, err)
	img, err := p.DecodeImage(data)
	require.NoError(b, err)
	req := pipeline.Request{Image: img, Prompt: benchPrompt}
	for i := 0; i < 3; i++ {
		_, err := p.Assess(context.Background(), req)
		require.NoError(b, err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Assess(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

const benchPrompt = "a red cat on a blue mat"
