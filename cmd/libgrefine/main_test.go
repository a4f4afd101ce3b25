package main

import (
	"context"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/internal/testkit/testenv"
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

// TestCParamsMatchTable: grefine_params (as cgo compiled include/grefine.h) has one
// field per parameter-table row, under the row's C field name and of its kind, plus the
// call's own fields; nothing else.
func TestCParamsMatchTable(t *testing.T) {
	fields := map[string]reflect.Kind{}
	for _, f := range cParamFields() {
		fields[f.Name] = f.Type.Kind()
	}
	want := map[pipeline.Kind]reflect.Kind{pipeline.KindInt: reflect.Int32, pipeline.KindBool: reflect.Int32,
		pipeline.KindUint: reflect.Uint64, pipeline.KindFloat: reflect.Float64}
	for _, r := range pipeline.ParamTable() {
		k, ok := fields[r.CField]
		if assert.True(t, ok, "grefine_params has %s", r.CField) {
			assert.Equal(t, want[r.Kind], k, "%s is a C %s", r.CField, r.Kind)
		}
		delete(fields, r.CField)
	}
	for _, f := range callFields {
		_, ok := fields[f]
		assert.True(t, ok, f)
		delete(fields, f)
	}
	assert.Empty(t, fields, "grefine_params fields that are neither a parameter nor the call's own")
}

// TestHeaderParamsMatchTable: in the hand-written header, each parameter's comment
// starts with the range the table gives (booleans: "boolean"), and its C type is the
// table kind's.
func TestHeaderParamsMatchTable(t *testing.T) {
	h, err := os.ReadFile(testenv.Path(t, "include", "grefine.h"))
	require.NoError(t, err)
	_, body, ok := strings.Cut(string(h), "typedef struct grefine_params {")
	require.True(t, ok)
	body, _, _ = strings.Cut(body, "} grefine_params;")
	line := regexp.MustCompile(`(?m)^\s*([a-z0-9_]+(?: \*)?)\s+\*?([a-z0-9_]+);\s*/\*\s*(.*?)(?:\*/|$)`)
	got := map[string][2]string{}
	for _, m := range line.FindAllStringSubmatch(body, -1) {
		rng, _, _ := strings.Cut(m[3], ": ")
		got[m[2]] = [2]string{m[1], rng}
	}
	ctype := map[pipeline.Kind]string{pipeline.KindInt: "int", pipeline.KindBool: "int", pipeline.KindUint: "uint64_t", pipeline.KindFloat: "double"}
	for _, r := range pipeline.ParamTable() {
		want := r.Range()
		if r.Kind == pipeline.KindBool {
			want = "boolean"
		}
		assert.Equal(t, [2]string{ctype[r.Kind], want}, got[r.CField], "grefine.h: %s", r.CField)
	}
}

// TestParamsRoundTripThroughC: paramsToC then paramsFromC gives the parameters back,
// every row (the marshalling is the table's, field by field).
func TestParamsRoundTripThroughC(t *testing.T) {
	p := pipeline.DefaultParams()
	p.Seed, p.Steps1, p.Steps2, p.Strength1, p.MaskedBlend, p.SkipStage2, p.Dilate, p.AlignBound = 1<<63+5, 3, 4, 0.25, false, true, 7, 0.125
	got, err := roundTripParams(p)
	require.NoError(t, err)
	d := pipeline.DefaultParams()
	p.LongSide, p.ProcessSize, p.Tile, p.VAETile = d.LongSide, d.ProcessSize, d.Tile, d.VAETile // GREFINE_SIZE_DEFAULT: the defaults
	assert.Equal(t, p, got)
}

// TestOlderParamsKeepNewDefaults: a caller whose grefine_params ends before the
// large-image fields (the first release's struct_size) is accepted, and those fields keep
// the pipeline's defaults whatever lies past its struct; a size below that is refused.
func TestOlderParamsKeepNewDefaults(t *testing.T) {
	p := pipeline.DefaultParams()
	p.Steps1, p.Tile, p.CropPadding, p.Crop = 3, 64, 7, false
	got, err := roundTripParamsSized(p, minParamsSize)
	require.NoError(t, err)
	d := pipeline.DefaultParams()
	assert.Equal(t, 3, got.Steps1, "an old field is read")
	assert.Equal(t, [3]any{d.Tile, d.CropPadding, d.Crop}, [3]any{got.Tile, got.CropPadding, got.Crop}, "new fields keep the defaults")
	_, err = roundTripParamsSized(p, minParamsSize-1)
	assert.ErrorContains(t, err, "struct_size")
}

// TestGuardTurnsPanicIntoInternal: a Go panic in an exported function's body comes back
// as GREFINE_ERR_INTERNAL with its message.
func TestGuardTurnsPanicIntoInternal(t *testing.T) {
	st, msg := guarded(func() { panic("boom") })
	assert.Equal(t, pipeline.StatusInternal, st)
	assert.Contains(t, msg, "panic")
	assert.Contains(t, msg, "boom")
	st, msg = guarded(func() {})
	assert.Equal(t, pipeline.StatusOK, st)
	assert.Empty(t, msg)
}

// TestHandles: a closed handle is unavailable (use after close, double close), a value
// that never was a handle is input, and results are freed once.
func TestHandles(t *testing.T) {
	h := newHandle(&lib{})
	l, err := resolve("f", h, false)
	require.NoError(t, err)
	assert.NotNil(t, l)
	_, err = resolve("grefine_close", h, true)
	require.NoError(t, err)
	for i := 0; i < 2; i++ {
		_, err = resolve("grefine_assess", h, i == 1)
		assert.Equal(t, pipeline.StatusUnavailable, pipeline.StatusOf(err), "closed: %v", err)
	}
	h2 := newHandle(&lib{})
	assert.NotEqual(t, h, h2, "a reused entry has a new generation")
	_, err = resolve("f", h, false)
	assert.Equal(t, pipeline.StatusUnavailable, pipeline.StatusOf(err), "the old handle stays closed")
	for _, bad := range []uint64{1, 0xdeadbeef, h2 + 1, handleTag | 77<<32 | 1} {
		_, err = resolve("f", bad, false)
		assert.Equal(t, pipeline.StatusInput, pipeline.StatusOf(err), "%#x: %v", bad, err)
	}
	_, err = resolve("f", h2, true)
	require.NoError(t, err)
}
