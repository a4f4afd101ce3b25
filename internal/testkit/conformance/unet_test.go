package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/npy"
	"github.com/grefine/grefine/internal/testkit/testenv"
)

// TestFullSizeUNetStep times one full-size SDXL-Inpainting UNet step (1024², CFG batch 2)
// exported by tools/gpu/sdxl_unet_step.py, on the pair GRF_UNET_PAIR (default ort/cuda),
// against PyTorch's time for the same weights and inputs (DIR/pytorch.json). It runs only
// with GRF_UNET_DIR=DIR. It writes DIR/grefine.json and logs the ratio. Sanity check (not
// a parity claim: fp16 kernels differ): the output's RMS error against PyTorch's must be
// under 5% of PyTorch's RMS.
func TestFullSizeUNetStep(t *testing.T) {
	dir := os.Getenv("GRF_UNET_DIR")
	if dir == "" {
		t.Skip("skipping: set GRF_UNET_DIR to the output of tools/gpu/sdxl_unet_step.py")
	}
	runs, _ := strconv.Atoi(os.Getenv("GRF_UNET_RUNS"))
	if runs <= 0 {
		runs = 10
	}
	pairName := os.Getenv("GRF_UNET_PAIR")
	if pairName == "" {
		pairName = "ort/cuda-tf32" // ONNX Runtime's CUDA defaults
	}
	var pair *Pair
	for _, p := range DefaultPairs(testenv.Root(t)) {
		if p.Name == pairName {
			pair = &p
		}
	}
	require.NotNil(t, pair, "unknown pair %q", pairName)
	env, err := pair.New()
	if errors.Is(err, engine.ErrUnavailable) {
		t.Skipf("skipping: %s unavailable: %v", pairName, err)
	}
	require.NoError(t, err)
	defer env.Close()

	in := map[string]*engine.HostTensor{}
	shapes := map[string]engine.Shape{}
	for _, n := range []string{"sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"} {
		a, err := npy.ReadFile(filepath.Join(dir, "inputs", n+".npy"))
		require.NoError(t, err)
		h, err := engine.FromFloat32(a.Shape, a.F32)
		require.NoError(t, err)
		in[n], shapes[n] = h, a.Shape
	}
	ctx := context.Background()
	t0 := time.Now()
	e, err := env.Open(ctx, filepath.Join(dir, "unet.onnx"), "sdxl_unet", shapes)
	require.NoError(t, err)
	defer e.Close()
	openTime := time.Since(t0)
	var out map[string]*engine.HostTensor
	for i := 0; i < 3; i++ { // warm-up: cuDNN algorithm search, arena growth
		out, err = env.RunHost(ctx, e, in)
		require.NoError(t, err)
	}
	ds := make([]time.Duration, runs)
	for i := range ds {
		s := time.Now()
		out, err = env.RunHost(ctx, e, in)
		require.NoError(t, err)
		ds[i] = time.Since(s)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	med, min := ds[runs/2], ds[0]

	ref, err := npy.ReadFile(filepath.Join(dir, "noise_pred_torch.npy"))
	require.NoError(t, err)
	got := out["noise_pred"].F32
	require.Len(t, got, len(ref.F32))
	var se, sr, maxAbs float64
	for i := range got {
		d := float64(got[i]) - float64(ref.F32[i])
		se += d * d
		sr += float64(ref.F32[i]) * float64(ref.F32[i])
		maxAbs = math.Max(maxAbs, math.Abs(d))
	}
	relRMS := math.Sqrt(se / math.Max(sr, 1e-30))

	var torch struct {
		MedianMS float64 `json:"median_ms"`
		MinMS    float64 `json:"min_ms"`
		Torch    string  `json:"torch"`
		GPU      string  `json:"gpu"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "pytorch.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &torch))
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
	rep := map[string]any{
		"pair": pairName, "runs": runs, "median_ms": ms(med), "min_ms": ms(min), "open_s": openTime.Seconds(),
		"pytorch_median_ms": torch.MedianMS, "ratio_pytorch_over_grefine": torch.MedianMS / ms(med),
		"max_abs_vs_pytorch": maxAbs, "rel_rms_vs_pytorch": relRMS, "gpu": torch.GPU,
		"note": "grefine time is host to host (H2D of the inputs, run, D2H of noise_pred); PyTorch's excludes copies",
	}
	jb, _ := json.MarshalIndent(rep, "", " ")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "grefine.json"), jb, 0o644))
	t.Logf("full-size SDXL-Inpainting UNet step: %s", jb)
	t.Log(fmt.Sprintf("grefine (%s) %.1f ms vs PyTorch %.1f ms: PyTorch/grefine = %.2f", pairName, ms(med), torch.MedianMS, torch.MedianMS/ms(med)))
	require.Less(t, relRMS, 5e-2, "grefine's noise_pred is far from PyTorch's (relative RMS error)")
}
