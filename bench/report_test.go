package bench

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/monitor"
	"github.com/grefine/grefine/pipeline"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fixedReport is a Report with every section filled with fixed values.
func fixedReport() *Report {
	f := func(v float64) *float64 { return &v }
	u32 := func(v uint32) *uint32 { return &v }
	yes, no := true, false
	info := pipeline.Info{Version: "v-test", ModelSet: "tiny", ModelDir: "testdata/models/tiny", Tiny: true, Backend: "ort",
		BackendVersion: "onnxruntime 1.30.0", Device: "cpu", Slots: 2, Engines: []string{"clip_surgery", "clip_text"},
		Defaults: pipeline.DefaultParams()}
	run := func(sc string, rp int, lat []float64) RunResult {
		var recs []Record
		for i, l := range lat {
			recs = append(recs, Record{Input: fmt.Sprintf("synthetic-%03d", i), IssuedS: float64(i) * 0.25, QueueMs: l / 4, ComputeMs: l * 3 / 4,
				LatencyMs: l, Stages: map[string]float64{"assess/clip_image": l / 2, "assess": l * 0.7}})
		}
		r := (&runner{origin: time.Unix(0, 0)}).result(sc, time.Unix(0, 0), recs)
		r.Repeat, r.StartS, r.EndS = rp, float64(rp), float64(rp)+2.5
		r.EnergyJ, r.JPerImage = f(120), f(120/float64(len(lat)))
		return r
	}
	rep := &Report{Schema: SchemaVersion, Version: "v-test", Created: time.Date(2026, 12, 3, 15, 4, 5, 0, time.UTC),
		Command: "grefine --models testdata/models/tiny bench --duration 5s --out /tmp/b", Workload: "assess", Scenario: Server,
		Settings: Settings{DurationS: 5, Warmup: 2, Repeats: 2, QPS: 4, LatencyBoundMs: 500, FindPeak: true, Slots: 2, Seed: 1,
			Concurrency: []int{1, 2}},
		Pipeline: &info, Engine: &EngineInfo{Name: "clip_text", Backend: "ort (onnxruntime 1.30.0)", Shapes: []string{"input_ids=85x77"}},
		Inputs: InputsInfo{Source: "synthetic", Count: 8, Width: 256, Height: 256},
		Machine: Machine{CPUModel: "Test CPU 9000", Cores: 2, GOMAXPROCS: 2, OS: "linux", Arch: "amd64", GoVersion: "go1.26.8",
			MemTotalMB: 24 * 1024, LoadAvg: f(0.5), RSSMB: 140, RSSPeakMB: 150},
		GPU: GPUReport{Available: true, IntervalS: 0.05,
			Devices: []monitor.DeviceInfo{{Index: 0, Name: "NVIDIA H200", UUID: "GPU-0", ComputeCapability: "9.0", MemoryTotal: 141 << 30,
				DriverVersion: "570.1", CUDADriverVersion: "12.8", PowerLimitW: f(700), MaxSMClockMHz: u32(1980), MaxMemClockMHz: u32(3201)}},
			Timeline: []TimedSample{{T: 0.05, GPUs: []monitor.GPUSample{{Index: 0, GPUUtil: u32(90), PowerW: f(400), EnergyJ: f(1000),
				Throttle: []string{"sw_power_cap"}}}}},
			Summary: []monitor.GPUSummary{{Index: 0, Metrics: map[string]monitor.Stat{monitor.MetricPower: {Min: 100, Mean: 300, Max: 400, N: 3}},
				Throttle: map[string]int{"sw_power_cap": 1}}}},
		WarmupS: 0.4,
		Runs:    []RunResult{run(Server, 1, []float64{80, 95, 120, 100}), run(Server, 1, []float64{90, 300, 110}), run(Server, 2, []float64{85, 99})},
		Peak:    &Peak{QPS: 4, Converged: true, Probes: []Probe{{QPS: 4, Meets: true, P99: 119}, {QPS: 8, Meets: false, P99: 296}}},
		Notes:   []string{"a note"},
		peaks:   []float64{4, 4.5},
	}
	rep.Runs[0].TargetQPS, rep.Runs[1].TargetQPS, rep.Runs[2].TargetQPS = 4, 8, 4
	rep.Runs[0].MeetsBound, rep.Runs[1].MeetsBound, rep.Runs[2].MeetsBound = &yes, &no, &yes
	rep.Runs[1].Errors = 1
	rep.Runs[1].Records = append(rep.Runs[1].Records, Record{Input: "synthetic-003", IssuedS: 1, Error: "server run past its deadline"})
	rep.Metrics = metrics(rep)
	rep.Baseline = &BaselineResult{Command: "python3 tools/bench_baseline.py", Samples: 3, Latency: Summarize([]float64{900, 1000, 1100}),
		Throughput: 1, Stages: map[string]Summary{"clip_text": Summarize([]float64{700, 800})}, Info: map[string]any{"description": "PyTorch reference"},
		Against: runLabel(rep.Runs[0]), LatencyRatio: 9.5, ThroughputRatio: 8.4, WallS: 4}
	old := *rep
	old.Metrics = []Metric{{Name: "peak_qps", Unit: "1/s", Better: "higher", Values: []float64{3, 3.1}, Median: 3.05, Min: 3, Max: 3.1},
		{Name: "rss_peak", Unit: "MiB", Better: "lower", Values: []float64{149}, Median: 149, Min: 149, Max: 149}}
	rep.Compare = Compare(&old, rep, "old/bench.json", 0.05)
	return rep
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./bench -run Golden -update to create it")
	assert.Equal(t, string(want), string(got), "%s differs (go test ./bench -run Golden -update rewrites it; review the diff)", path)
}

func TestGoldenMarkdown(t *testing.T) {
	golden(t, "testdata/bench.golden.md", []byte(fixedReport().Markdown()))
}

// TestGoldenSchema pins bench.json's shape: every key path and its JSON type. A change
// here is a schema change: document it in doc.go (and bump SchemaVersion if a field
// changes meaning or goes away).
func TestGoldenSchema(t *testing.T) {
	b, err := fixedReport().MarshalIndent()
	require.NoError(t, err)
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	paths := map[string]string{}
	schemaPaths(v, "", "", paths)
	lines := make([]string, 0, len(paths))
	for p, ty := range paths {
		// pipeline.Info is the pipeline's own (documented there); pinning its fields here
		// would make every pipeline change a bench schema change.
		if strings.HasPrefix(p, "pipeline.") {
			continue
		}
		lines = append(lines, p+" "+ty)
	}
	sort.Strings(lines)
	golden(t, "testdata/bench.schema.golden", []byte(strings.Join(lines, "\n")+"\n"))

	// doc.go documents every field of the report's own types (pipeline, engine-side and
	// monitor types are documented where they are defined).
	doc, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	own := regexp.MustCompile(`^(schema|grefine_version|created|command|workload|scenario|settings|engine|inputs|machine|gpu|warmup_s|runs|peak|metrics|baseline|compare|notes)`)
	for p := range paths {
		if !own.MatchString(p) || strings.HasPrefix(p, "gpu.devices") || strings.HasPrefix(p, "gpu.timeline[].gpus") || strings.HasPrefix(p, "gpu.summary[]") ||
			strings.HasPrefix(p, "compare.rows[].old") || strings.HasPrefix(p, "compare.rows[].new") {
			continue
		}
		parts := strings.FieldsFunc(p, func(r rune) bool { return r == '.' || r == '[' || r == ']' })
		leaf := parts[len(parts)-1]
		if leaf == "*" {
			continue
		}
		assert.True(t, regexp.MustCompile(`\b`+regexp.QuoteMeta(leaf)+`\b`).Match(doc), "doc.go does not document %s (%s)", leaf, p)
	}
}

// dynamicKeys are objects whose keys are names (stages, metrics, reasons), not fields.
var dynamicKeys = map[string]bool{"stages_ms": true, "info": true, "throttle": true, "errors": true}

func schemaPaths(v any, path, key string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		out[path] = "object"
		dyn := dynamicKeys[key] || (key == "metrics" && strings.HasPrefix(path, "gpu.summary"))
		for k, e := range x {
			name := k
			if dyn {
				name = "*"
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			schemaPaths(e, p, k, out)
		}
	case []any:
		out[path] = "array"
		for _, e := range x {
			schemaPaths(e, path+"[]", key, out)
		}
	case string:
		out[path] = "string"
	case float64:
		out[path] = "number"
	case bool:
		out[path] = "bool"
	case nil:
		out[path] = "null"
	}
	if path == "" {
		delete(out, "")
	}
}

func TestMarkdownNoGPUAndFewSamples(t *testing.T) {
	rep := fixedReport()
	rep.GPU = GPUReport{Reason: "nvml library libnvidia-ml.so.1 not found"}
	md := rep.Markdown()
	assert.Contains(t, md, "GPU: none (nvml library libnvidia-ml.so.1 not found): CPU side only")
	assert.Contains(t, md, "fewer than 100 samples, so the p99 is about the maximum")
}
