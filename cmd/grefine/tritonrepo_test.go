package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/triton"
)

// TestTritonRepo: triton-repo writes the two models for the global flags; usage errors
// exit 2 with nothing written. (tools/triton-test.sh loads such a repository into a real
// tritonserver.)
func TestTritonRepo(t *testing.T) {
	out := filepath.Join(t.TempDir(), "repo")
	stdout, stderr, code := runFull(t, "--models", tiny, "--hash-cache", "", "--threads", "2", "triton-repo", "--out", out, "--slots", "2", "--instances", "3")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, filepath.Join(out, triton.AssessModel)+"\n"+filepath.Join(out, triton.RefineModel)+"\n", stdout)
	b, err := os.ReadFile(filepath.Join(out, triton.RefineModel, "config.pbtxt"))
	require.NoError(t, err)
	abs, err := filepath.Abs(tiny)
	require.NoError(t, err)
	for _, want := range []string{`name: "grefine_refine"`, "{ count: 3 kind: KIND_CPU }", `string_value: "` + abs + `"`,
		"key: \"slots\"\n  value: { string_value: \"2\" }", "key: \"threads\"\n  value: { string_value: \"2\" }"} {
		assert.Contains(t, string(b), want)
	}
	assert.NotContains(t, string(b), `key: "hash_cache"`, "--hash-cache '' writes none")

	stdout, stderr, code = runFull(t, "--models", tiny, "--hash-cache", "", "--device", "cuda", "triton-repo", "--out", out, "--assess-only", "--gpus", "1")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, filepath.Join(out, triton.AssessModel)+"\n", stdout)
	b, err = os.ReadFile(filepath.Join(out, triton.AssessModel, "config.pbtxt"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "{ count: 1 kind: KIND_GPU gpus: [ 1 ] }", "--device cuda picks KIND_GPU")
	assert.Contains(t, string(b), "key: \"device\"\n  value: { string_value: \"cuda\" }")

	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no --out", []string{"--models", tiny, "triton-repo"}, "--out DIR is required"},
		{"no --models", []string{"triton-repo", "--out", "x"}, "no model set given"},
		{"bad kind", []string{"--models", tiny, "triton-repo", "--out", "x", "--kind", "tpu"}, `bad --kind "tpu"`},
		{"gpus on cpu", []string{"--models", tiny, "triton-repo", "--out", "x", "--kind", "cpu", "--gpus", "0"}, "GPUs need KIND_GPU instances"},
		{"cuda on cpu", []string{"--models", tiny, "--device", "cuda", "triton-repo", "--out", "x", "--kind", "cpu"}, "a KIND_CPU instance cannot run device cuda"},
		{"instances", []string{"--models", tiny, "triton-repo", "--out", "x", "--instances", "0"}, "--instances 0 is out of range [1, 64]"},
		{"slots", []string{"--models", tiny, "triton-repo", "--out", "x", "--slots", "0"}, "--slots 0 is out of range [1, 64]"},
		{"trt without plans", []string{"--models", tiny, "--backend", "trt", "triton-repo", "--out", "x"}, "--backend trt needs --plans DIR"},
		{"stray argument", []string{"--models", tiny, "triton-repo", "--out", "x", "extra"}, `unexpected argument(s) "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string(nil), tc.args...)
			for i, a := range args {
				if a == "x" {
					args[i] = filepath.Join(dir, "repo")
				}
			}
			_, stderr, code := runFull(t, args...)
			assert.Equal(t, 2, code, stderr)
			assert.Contains(t, stderr, tc.stderr)
			assert.NoDirExists(t, filepath.Join(dir, "repo"))
		})
	}
}
