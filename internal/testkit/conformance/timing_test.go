package conformance

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/testkit/testenv"
)

// TestStageLatency measures every tiny engine on every ort pair available (per-stage
// latency and host/device copies per run). It runs only with GRF_STAGE_LATENCY=N (N timed
// runs each; the GPU script sets it) and writes the table to GRF_STAGE_LATENCY_REPORT.
func TestStageLatency(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("GRF_STAGE_LATENCY"))
	if runs <= 0 {
		t.Skip("skipping: set GRF_STAGE_LATENCY=N to time each tiny engine N times per pair")
	}
	testenv.ORT(t)
	set := testenv.TinySet(t)
	var all []Timing
	for _, p := range Selected(DefaultPairs(testenv.Root(t))) {
		if p.Name != "ort/cpu" && p.Name != "ort/cuda" && p.Name != "ort/cuda-tf32" && p.Name != "ort/cuda-dev" {
			continue
		}
		env, err := p.New()
		if errors.Is(err, engine.ErrUnavailable) {
			t.Logf("%s: skipped: %v", p.Name, err)
			continue
		}
		require.NoError(t, err)
		ts, err := Timings(context.Background(), env, set, TinyInputs, runs)
		env.Close()
		require.NoError(t, err)
		all = append(all, ts...)
	}
	table := TimingTable(all)
	t.Logf("per-stage latency, host to host:\n%s", table)
	if f := os.Getenv("GRF_STAGE_LATENCY_REPORT"); f != "" {
		require.NoError(t, os.WriteFile(f, []byte(table), 0o644))
	}
}
