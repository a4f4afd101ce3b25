package main

import (
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
