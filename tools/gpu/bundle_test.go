package gpu

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine/trt/trttest"
)

// repoRoot is the repository root (this package is tools/gpu).
func repoRoot(t *testing.T) string {
	r, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	return r
}

func runScript(t *testing.T, dir string, env []string, script string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if x, ok := err.(*exec.ExitError); ok {
		code = x.ExitCode()
	} else {
		require.NoError(t, err, "%s", out)
	}
	return code, string(out)
}

// TestBundleDryRun builds a bundle around a fake TensorRT (80 MiB of random bytes as
// libnvinfer, split into 32 MiB parts; the fake shim) and runs verify-gpu.sh on it as the
// GPU machine would: the dry run verifies and joins everything and stops each step at its
// GPU point; a real run on a machine without a GPU says why for each step and exits 3;
// damaged and missing parts are refused, and --stamp reports what arrived.
func TestBundleDryRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds Go binaries and runs bash")
	}
	for _, tool := range []string{"xz", "sha256sum", "split", "objdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	root := repoRoot(t)
	work := t.TempDir()
	trt := filepath.Join(work, "trt", "lib")
	require.NoError(t, os.MkdirAll(trt, 0o755))
	big := make([]byte, 80<<20) // incompressible: xz cannot shrink it below 3 parts
	_, err := rand.Read(big)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(trt, "libnvinfer.so.10"), big, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(trt, "libnvonnxparser.so.10"), []byte("fake parser"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(work, "trt", "INSTALLED"), []byte("# fake TensorRT for the bundle test\n"), 0o644))
	shim, err := trttest.Build(work)
	require.NoError(t, err)

	// The call limit: the tree plus 32 MiB parts (no margin).
	out := filepath.Join(work, "checkout")
	require.NoError(t, os.MkdirAll(out, 0o755))
	require.NoError(t, os.Symlink(filepath.Join(root, "testdata"), filepath.Join(out, "testdata")))
	env := []string{"GRF_GPU_CACHE=" + filepath.Join(work, "cache"), "GRF_GPU_OUT=" + out, "GRF_GPU_TRT_DIR=" + trt, "GRF_GPU_SHIM=" + shim, "GRF_GPU_XZ=-0", "GRF_GPU_XZ_BIN=-0",
		"GRF_GPU_WHEELS=0", "GRF_GPU_PKGS=engine/trt/gputest", "GRF_GPU_MARGIN_MIB=0"}
	code, log := runScript(t, root, append(env, "GRF_GPU_CALL_MIB=20"), "tools/gpu-bundle.sh")
	require.Equal(t, 1, code, log)
	assert.Contains(t, log, "per call would be left", "a limit the tree alone nearly fills is refused")

	tree := treeMiB(t, root)
	code, log = runScript(t, root, append(env, "GRF_GPU_CALL_MIB="+itoa(tree+32)), "tools/gpu-bundle.sh")
	require.Equal(t, 0, code, log)
	t.Logf("bundle:\n%s", tail(log, 12))
	parts, _ := filepath.Glob(filepath.Join(out, ".gpu-trt", "part-*"))
	require.Len(t, parts, 3, "80 MiB of random bytes in 32 MiB parts")
	for _, p := range parts {
		st, err := os.Stat(p)
		require.NoError(t, err)
		assert.LessOrEqual(t, st.Size(), int64(32<<20))
	}
	bundle, err := os.ReadFile(filepath.Join(out, ".gpu", "BUNDLE"))
	require.NoError(t, err)
	assert.Contains(t, string(bundle), `carry [".gpu", ".gpu-bin/part-00"]`, "the scripts travel with the first part of the binaries")
	assert.Contains(t, string(bundle), `carry [".gpu-trt/part-00"]`)
	assert.Contains(t, string(bundle), `carry [".gpu-trt/part-02"]`, "first fit: a part goes where it fits")
	assert.Contains(t, string(bundle), "--steps a,b,e --out")

	verify := filepath.Join(out, ".gpu", "verify-gpu.sh")
	noGPU := []string{"GRF_FAKE_TRT_DEVICES=0", "GRF_FAKE_TRT_VERSION=110100", "OUT=" + filepath.Join(work, "report")}

	code, log = runScript(t, out, noGPU, verify, "--dry-run")
	require.Equal(t, 0, code, log)
	report := readReport(t, work)
	assert.Contains(t, report, "- trt: 3 parts joined, libnvinfer.so.10 libnvonnxparser.so.10 (SHA-256 checked)")
	assert.Regexp(t, `- bin: \d+ parts joined, engine_trt_gputest.test grefine libgrefine_cuda.so libgrefine_trt.so libonnxruntime.so.1 \(SHA-256 checked\)`, report)
	assert.Regexp(t, `trt library +ok +TensorRT 11\.1\.0 \(getInferLibVersion\)`, report, "doctor ran on the carried shim")
	assert.Contains(t, report, "builder probe: not reached (dry run: no GPU work)")
	for _, s := range []string{"b", "c", "d", "e"} {
		assert.Contains(t, report, "- "+s+": dry run: reached the GPU point")
	}
	_, err = os.Stat(filepath.Join(out, ".gpu", "bin"))
	assert.True(t, os.IsNotExist(err), "the carried .gpu stays as it came (unpacked into .gpu-run)")

	// A real run without a GPU: every step says why, exit 3.
	code, _ = runScript(t, out, noGPU, verify)
	assert.Equal(t, 3, code)
	report = readReport(t, work)
	assert.Contains(t, report, "- trt: already in place, SHA-256 checked")
	assert.Contains(t, report, "- bin: already in place, SHA-256 checked")
	assert.Contains(t, report, "builder probe: not reached: no GPU: no CUDA device visible: cudaErrorNoDevice")
	assert.Equal(t, 4, strings.Count(report, "- not reached: no GPU: no CUDA device visible"), "steps b-e each say why")

	// Damaged and missing parts.
	require.NoError(t, os.RemoveAll(filepath.Join(out, ".gpu-run")))
	b, err := os.ReadFile(parts[1])
	require.NoError(t, err)
	b[100] ^= 0xff
	require.NoError(t, os.WriteFile(parts[1], b, 0o644))
	code, log = runScript(t, out, noGPU, verify, "--stamp", "call-3")
	assert.Equal(t, 1, code)
	assert.Contains(t, log, "BAD: .gpu-trt/part-01")
	code, _ = runScript(t, out, noGPU, verify, "--dry-run")
	assert.Equal(t, 1, code)
	assert.Contains(t, readReport(t, work), "- trt: parts fail their SHA-256")
	require.NoError(t, os.Remove(parts[1]))
	code, log = runScript(t, out, noGPU, verify, "--stamp", "call-4")
	assert.Equal(t, 0, code, log)
	assert.Contains(t, log, "call-4: ")
	assert.Contains(t, log, " 1 bundle files still to come")
	code, _ = runScript(t, out, noGPU, verify, "--dry-run")
	assert.Equal(t, 1, code)
	assert.Contains(t, readReport(t, work), "- trt: parts missing: part-01 (carry .gpu-trt/part-NN as .gpu/BUNDLE's calls say)")
	stamps, err := os.ReadFile(filepath.Join(out, ".gpu-stamps"))
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(stamps), "\n"))
}

func readReport(t *testing.T, work string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(work, "report", "trt-gpu-report.md"))
	require.NoError(t, err)
	return string(b)
}

// treeMiB is what gpu-bundle.sh counts: tracked plus untracked, unignored files, in MiB rounded up.
func treeMiB(t *testing.T, root string) int {
	cmd := exec.Command("bash", "-c", `{ git ls-files -z; git ls-files -z -o --exclude-standard; } | xargs -0 -r stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}'`)
	cmd.Dir = root
	b, err := cmd.Output()
	require.NoError(t, err)
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	require.NoError(t, err)
	return int((n + (1 << 20) - 1) >> 20)
}

func itoa(n int) string { return strconv.Itoa(n) }
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
