package conformance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/grefine/grefine/engine"
)

// Tolerance bounds |got-ref| <= Abs + Rel·|ref| elementwise.
type Tolerance struct{ Abs, Rel float64 }

// String formats as "1e-04 + 1e-04·|ref|".
func (t Tolerance) String() string { return fmt.Sprintf("%.0e + %.0e·|ref|", t.Abs, t.Rel) }

// wider returns the elementwise larger tolerance.
func (t Tolerance) wider(o *Tolerance) Tolerance {
	if o == nil {
		return t
	}
	return Tolerance{math.Max(t.Abs, o.Abs), math.Max(t.Rel, o.Rel)}
}

// Case is one conformance case: it runs on an Env and returns named float32 outputs.
type Case struct {
	Name string
	Tol  Tolerance
	Run  func(ctx context.Context, env *Env) (map[string][]float32, error)
}

// Pair is one backend/device combination. New returns its Env, or an error wrapping
// engine.ErrUnavailable when the pair is missing here (the case is then skipped with that
// reason); other errors fail the run.
type Pair struct {
	Name string
	// Tol widens the cases' tolerances for this pair (nil: the case's own).
	Tol *Tolerance
	New func() (*Env, error)
}

// Env is what a case sees of a pair.
type Env struct {
	Pair    string
	Backend engine.Backend
	// Stream is the device stream of pairs whose engines read a device's tensors through
	// explicit copies (nil otherwise); its Counters count them.
	Stream engine.Stream
	// open opens an ONNX file for inputs of the given shapes (a TensorRT pair builds a
	// plan for exactly those shapes).
	open func(ctx context.Context, onnx, name string, shapes map[string]engine.Shape) (engine.Engine, error)
	// upload/download move tensors to and from the pair's device; nil: host tensors.
	upload   func(*engine.HostTensor) (engine.Tensor, error)
	download func(engine.Tensor) (*engine.HostTensor, error)
	sync     func() error
	close    []func() error
}

// Open opens an ONNX model for inputs of the given shapes.
func (e *Env) Open(ctx context.Context, onnx, name string, shapes map[string]engine.Shape) (engine.Engine, error) {
	if e.open != nil {
		return e.open(ctx, onnx, name, shapes)
	}
	return e.Backend.Open(onnx, engine.OpenOptions{Name: name})
}

// RunHost runs eng with host inputs: it moves them to the pair's device, runs, waits and
// returns host copies of the outputs (device tensors are closed).
func (e *Env) RunHost(ctx context.Context, eng engine.Engine, in map[string]*engine.HostTensor) (map[string]*engine.HostTensor, error) {
	dev := make(map[string]engine.Tensor, len(in))
	defer func() {
		if e.upload != nil {
			engine.CloseAll(dev)
		}
	}()
	for k, h := range in {
		if e.upload == nil {
			dev[k] = h
			continue
		}
		t, err := e.upload(h)
		if err != nil {
			return nil, fmt.Errorf("%s: upload %s: %w", e.Pair, k, err)
		}
		dev[k] = t
	}
	out, err := eng.Run(ctx, dev)
	if err != nil {
		return nil, err
	}
	defer engine.CloseAll(out)
	if e.sync != nil {
		if err := e.sync(); err != nil {
			return nil, err
		}
	}
	res := make(map[string]*engine.HostTensor, len(out))
	for k, t := range out {
		if h, ok := t.(*engine.HostTensor); ok {
			res[k] = h
			continue
		}
		if e.download == nil {
			return nil, fmt.Errorf("%w: %s: output %s is on %s and this pair has no download", engine.ErrDevice, e.Pair, k, t.DeviceName())
		}
		h, err := e.download(t)
		if err != nil {
			return nil, fmt.Errorf("%s: download %s: %w", e.Pair, k, err)
		}
		res[k] = h
	}
	return res, nil
}

// Close releases the pair's backend and devices.
func (e *Env) Close() error {
	var first error
	for i := len(e.close) - 1; i >= 0; i-- {
		if err := e.close[i](); err != nil && first == nil {
			first = err
		}
	}
	e.close = nil
	return first
}

// Result is the comparison of one case on one pair with the reference.
type Result struct {
	Pair, Case     string
	Skipped        string // the reason, when skipped
	MaxAbs, MaxRel float64
	N              int
	Tol            Tolerance
	Err            error
}

// String is the log line of r.
func (r Result) String() string {
	switch {
	case r.Skipped != "":
		return fmt.Sprintf("conformance: %s %s: skipped: %s", r.Pair, r.Case, r.Skipped)
	case r.Err != nil:
		return fmt.Sprintf("conformance: %s %s: FAIL: %v", r.Pair, r.Case, r.Err)
	}
	return fmt.Sprintf("conformance: %s %s: max abs %.3g, max rel %.3g over %d values (tol %s)", r.Pair, r.Case, r.MaxAbs, r.MaxRel, r.N, r.Tol)
}

// Compare checks got against ref: the same names, lengths and finite values within tol.
func Compare(ref, got map[string][]float32, tol Tolerance) (Result, error) {
	r := Result{Tol: tol}
	names := make([]string, 0, len(ref))
	for k := range ref {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(got) != len(ref) {
		return r, fmt.Errorf("conformance: %d outputs, reference has %d", len(got), len(ref))
	}
	var bad []string
	for _, k := range names {
		g, ok := got[k]
		if !ok {
			return r, fmt.Errorf("conformance: output %q missing", k)
		}
		want := ref[k]
		if len(g) != len(want) {
			return r, fmt.Errorf("conformance: output %q has %d values, reference %d", k, len(g), len(want))
		}
		worst, worstAt := 0.0, -1
		for i := range want {
			x, y := float64(g[i]), float64(want[i])
			d := math.Abs(x - y)
			if math.IsNaN(x) != math.IsNaN(y) || math.IsInf(x, 0) != math.IsInf(y, 0) {
				d = math.Inf(1)
			} else if math.IsNaN(x) || math.IsInf(x, 0) {
				d = 0
			}
			r.MaxAbs = math.Max(r.MaxAbs, d)
			if math.Abs(y) > 1e-6 {
				r.MaxRel = math.Max(r.MaxRel, d/math.Abs(y))
			}
			if over := d / (tol.Abs + tol.Rel*math.Abs(y)); over > 1 && over > worst {
				worst, worstAt = over, i
			}
		}
		r.N += len(want)
		if worstAt >= 0 {
			bad = append(bad, fmt.Sprintf("%s[%d] = %g, reference %g (%.1f× the tolerance)", k, worstAt, g[worstAt], want[worstAt], worst))
		}
	}
	if len(bad) > 0 {
		return r, fmt.Errorf("conformance: outside %s: %s", tol, strings.Join(bad, "; "))
	}
	return r, nil
}

// EnvPairs is the variable limiting the pairs (comma-separated names).
const EnvPairs = "GRF_CONFORMANCE_PAIRS"

// Selected filters pairs by $GRF_CONFORMANCE_PAIRS; the first pair (the reference) stays.
func Selected(pairs []Pair) []Pair {
	v := os.Getenv(EnvPairs)
	if v == "" || len(pairs) == 0 {
		return pairs
	}
	want := map[string]bool{}
	for _, n := range strings.Split(v, ",") {
		want[strings.TrimSpace(n)] = true
	}
	out := pairs[:1:1]
	for _, p := range pairs[1:] {
		if want[p.Name] {
			out = append(out, p)
		}
	}
	return out
}

// Report collects the results of Run.
type Report struct {
	mu      sync.Mutex
	Results []Result
}

func (r *Report) add(res Result) {
	r.mu.Lock()
	r.Results = append(r.Results, res)
	r.mu.Unlock()
}

// Summary is the results as a Markdown table.
func (r *Report) Summary() string {
	var b strings.Builder
	b.WriteString("| pair | case | max abs | max rel | values | tolerance | result |\n|---|---|---|---|---|---|---|\n")
	for _, x := range r.Results {
		switch {
		case x.Skipped != "":
			fmt.Fprintf(&b, "| %s | %s | | | | | skipped: %s |\n", x.Pair, x.Case, x.Skipped)
		case x.Err != nil:
			fmt.Fprintf(&b, "| %s | %s | %.3g | %.3g | %d | %s | FAIL: %v |\n", x.Pair, x.Case, x.MaxAbs, x.MaxRel, x.N, x.Tol, x.Err)
		default:
			fmt.Fprintf(&b, "| %s | %s | %.3g | %.3g | %d | %s | ok |\n", x.Pair, x.Case, x.MaxAbs, x.MaxRel, x.N, x.Tol)
		}
	}
	return b.String()
}

// Evaluate runs every case on pairs[0] (the reference) and on every other pair and
// compares: one Result per pair and case, or one per pair (Case "*") when the pair is
// unavailable. Its error is the reference's (wrapping engine.ErrUnavailable when the
// reference pair is missing) or a pair that fails to start for another reason.
func Evaluate(ctx context.Context, pairs []Pair, cases []Case) (*Report, error) {
	rep := &Report{}
	ref, err := pairs[0].New()
	if err != nil {
		return nil, fmt.Errorf("reference pair %s: %w", pairs[0].Name, err)
	}
	defer ref.Close()
	want := make([]map[string][]float32, len(cases))
	for i, c := range cases {
		if want[i], err = c.Run(ctx, ref); err != nil {
			return nil, fmt.Errorf("reference %s %s: %w", pairs[0].Name, c.Name, err)
		}
	}
	for _, p := range pairs[1:] {
		env, err := p.New()
		if err != nil {
			if !errors.Is(err, engine.ErrUnavailable) {
				return rep, fmt.Errorf("pair %s: %w", p.Name, err)
			}
			rep.add(Result{Pair: p.Name, Case: "*", Skipped: err.Error()})
			continue
		}
		for i, c := range cases {
			res := Result{Pair: p.Name, Case: c.Name}
			got, err := c.Run(ctx, env)
			if err == nil {
				res, err = Compare(want[i], got, c.Tol.wider(p.Tol))
				res.Pair, res.Case = p.Name, c.Name
			}
			res.Err = err
			rep.add(res)
		}
		if err := env.Close(); err != nil {
			return rep, fmt.Errorf("pair %s: close: %w", p.Name, err)
		}
	}
	return rep, nil
}

// Run is Evaluate as a test: pairs are filtered by $GRF_CONFORMANCE_PAIRS, each result
// is a subtest PAIR/CASE that logs its line and fails or skips with the reason. Without
// the reference the test is skipped with the reason (failed when GRF_REQUIRE_ORT=1, as
// `make test` sets).
func Run(t *testing.T, pairs []Pair, cases []Case) *Report {
	t.Helper()
	rep, err := Evaluate(context.Background(), Selected(pairs), cases)
	if rep == nil {
		if errors.Is(err, engine.ErrUnavailable) && os.Getenv("GRF_REQUIRE_ORT") != "1" {
			t.Skipf("skipping: %v", err)
		}
		t.Fatal(err)
	}
	if err != nil {
		t.Error(err)
	}
	for _, r := range rep.Results {
		t.Run(r.Pair+"/"+r.Case, func(t *testing.T) {
			t.Log(r)
			switch {
			case r.Skipped != "":
				t.Skipf("skipping: pair %s unavailable here", r.Pair)
			case r.Err != nil:
				t.Error(r.Err)
			}
		})
	}
	return rep
}
