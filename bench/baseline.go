package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/grefine/grefine/internal/files"
	"github.com/grefine/grefine/pipeline/imageio"
)

// BaselineResult is a competitor's run on the same inputs (--baseline) and how grefine
// compares with it.
type BaselineResult struct {
	Command string `json:"command"`
	// Samples are the competitor's timed requests (one at a time, after its warm-up).
	Samples    int                `json:"samples"`
	Latency    Summary            `json:"latency_ms"`
	Throughput float64            `json:"throughput_per_s"` // 1000 / mean latency
	Stages     map[string]Summary `json:"stages_ms,omitempty"`
	Info       map[string]any     `json:"info,omitempty"` // the competitor's own description
	// Against names grefine's run the ratios use (its first repeat).
	Against string `json:"against"`
	// LatencyRatio is the competitor's median latency over grefine's (> 1: grefine is
	// faster); ThroughputRatio is grefine's throughput over the competitor's.
	LatencyRatio    float64 `json:"latency_ratio"`
	ThroughputRatio float64 `json:"throughput_ratio"`
	WallS           float64 `json:"wall_s"`
}

// baselineLine is one line a baseline command prints on stdout: a timed request, a
// warm-up (ignored) or an "info" object describing the competitor.
type baselineLine struct {
	ID     string             `json:"id"`
	Ms     *float64           `json:"ms"`
	Warmup bool               `json:"warmup"`
	Stages map[string]float64 `json:"stages_ms"`
	Info   map[string]any     `json:"info"`
}

// baselineInput is one line of the inputs file a baseline command reads.
type baselineInput struct {
	ID     string     `json:"id"`
	Image  string     `json:"image"` // absolute PNG path
	Prompt string     `json:"prompt"`
	Parts  []PartSpec `json:"parts,omitempty"` // assess: grefine's parse of the prompt
}

// BaselineSpec is what RunBaseline is given.
type BaselineSpec struct {
	Command  string
	Workload string // assess, refine
	Models   string // the model-set directory
	Count    int    // timed requests
	Warmup   int
	Threads  int                        // 0: the command's default
	Parts    func(id string) []PartSpec // nil: none
	Dir      string                     // scratch directory for the inputs
	Stderr   io.Writer                  // the command's stderr (nil: discarded)
}

// RunBaseline runs the competitor once with `sh -c Command`. The protocol (see doc.go):
// the environment carries GREFINE_BENCH_INPUTS (a JSONL file of {"id", "image" (PNG
// path), "prompt", "parts"}), GREFINE_BENCH_WORKLOAD, GREFINE_BENCH_MODELS,
// GREFINE_BENCH_COUNT, GREFINE_BENCH_WARMUP and GREFINE_BENCH_THREADS; the command runs
// COUNT requests one at a time over the inputs in turn, after WARMUP untimed ones, and
// prints one JSON object per request on stdout: {"id": ..., "ms": 123.4, "stages_ms":
// {...}} ({"warmup": true, ...} lines are ignored, {"info": {...}} describes it; other
// lines are logs). It must exit 0 and report at least one request.
func RunBaseline(ctx context.Context, spec BaselineSpec, inputs []Input) (*BaselineResult, error) {
	if strings.TrimSpace(spec.Command) == "" {
		return nil, fmt.Errorf("baseline: empty command")
	}
	path, err := writeBaselineInputs(spec, inputs)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", spec.Command)
	cmd.Env = append(os.Environ(),
		"GREFINE_BENCH_INPUTS="+path, "GREFINE_BENCH_WORKLOAD="+spec.Workload, "GREFINE_BENCH_MODELS="+spec.Models,
		"GREFINE_BENCH_COUNT="+strconv.Itoa(spec.Count), "GREFINE_BENCH_WARMUP="+strconv.Itoa(spec.Warmup),
		"GREFINE_BENCH_THREADS="+strconv.Itoa(spec.Threads))
	var tail tailBuffer
	cmd.Stderr = &tail
	if spec.Stderr != nil {
		cmd.Stderr = io.MultiWriter(spec.Stderr, &tail)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("baseline %q: %w%s", spec.Command, err, tail.String())
	}
	res, err := parseBaseline(&out)
	if err != nil {
		return nil, fmt.Errorf("baseline %q: %w%s", spec.Command, err, tail.String())
	}
	res.Command = spec.Command
	return res, nil
}

// parseBaseline reads a baseline command's stdout.
func parseBaseline(r io.Reader) (*BaselineResult, error) {
	res := &BaselineResult{}
	var lat []float64
	stages := map[string][]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var l baselineLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			return nil, fmt.Errorf("stdout line %d: %v", n, err)
		}
		switch {
		case l.Info != nil:
			res.Info = l.Info
		case l.Warmup:
		case l.Ms == nil || !(*l.Ms >= 0):
			return nil, fmt.Errorf("stdout line %d: a request line needs \"ms\" >= 0", n)
		default:
			lat = append(lat, *l.Ms)
			for k, v := range l.Stages {
				stages[k] = append(stages[k], v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(lat) == 0 {
		return nil, fmt.Errorf("it reported no timed request (want JSON lines {\"id\", \"ms\"} on stdout)")
	}
	res.Samples, res.Latency = len(lat), Summarize(lat)
	if res.Latency.Mean > 0 {
		res.Throughput = 1000 / res.Latency.Mean
	}
	if len(stages) > 0 {
		res.Stages = map[string]Summary{}
		for k, v := range stages {
			res.Stages[k] = Summarize(v)
		}
	}
	return res, nil
}

// writeBaselineInputs writes the inputs as PNGs plus the JSONL the command reads.
func writeBaselineInputs(spec BaselineSpec, inputs []Input) (string, error) {
	if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
		return "", fmt.Errorf("baseline: %w", err)
	}
	var b bytes.Buffer
	for i, in := range inputs {
		p := filepath.Join(spec.Dir, fmt.Sprintf("input-%03d.png", i))
		if err := files.WriteAtomic(p, func(w io.Writer) error { return imageio.EncodePNG(w, in.Image) }); err != nil {
			return "", fmt.Errorf("baseline: %w", err)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		l := baselineInput{ID: in.ID, Image: abs, Prompt: in.Prompt}
		if spec.Parts != nil {
			l.Parts = spec.Parts(in.ID)
		}
		j, err := json.Marshal(l)
		if err != nil {
			return "", err
		}
		b.Write(append(j, '\n'))
	}
	p := filepath.Join(spec.Dir, "inputs.jsonl")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("baseline: %w", err)
	}
	return filepath.Abs(p)
}

// tailBuffer keeps the last 2 KiB written, for error messages.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = t.b[len(t.b)-2048:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return ""
	}
	return "; its stderr ends:\n" + s
}
