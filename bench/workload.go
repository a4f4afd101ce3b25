package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/pipeline"
)

// Assessor is what the assess workload needs of the pipeline.
type Assessor interface {
	Assess(ctx context.Context, req pipeline.Request) (*pipeline.Assessment, error)
}

// Refiner is what the refine workload needs of the pipeline.
type Refiner interface {
	Refine(ctx context.Context, req pipeline.Request) (*pipeline.Refinement, error)
}

// AssessTarget runs the whole assess of each input on the pipeline. Stages are the
// report's timings, "assess/<name>" (preprocess, clip_image, pq, parse, clip_text, aq,
// fuse); compute starts at the pipeline's "assess" event (the request got its slot).
// Parts keeps each input's parsed parts for the baseline (the Python reference is given
// the same parts).
type AssessTarget struct {
	P      Assessor
	Params *pipeline.Params
	mu     sync.Mutex
	parts  map[string][]PartSpec
}

// PartSpec is one prompt part as the baseline receives it.
type PartSpec struct {
	Text     string `json:"text"`
	Noun     string `json:"noun"`
	Ancestor int    `json:"ancestor"`
}

// Do implements Target.
func (t *AssessTarget) Do(ctx context.Context, in *Input) (Outcome, error) {
	var o Outcome
	a, err := t.P.Assess(ctx, pipeline.Request{Image: in.Image, Prompt: in.Prompt, Params: t.Params, Observer: startObserver(&o)})
	if err != nil {
		return o, err
	}
	o.Stages = assessStages(a)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.parts == nil {
		t.parts = map[string][]PartSpec{}
	}
	if _, ok := t.parts[in.ID]; !ok {
		ps := make([]PartSpec, len(a.Parts))
		for i, p := range a.Parts {
			ps[i] = PartSpec{Text: p.Text, Noun: p.Noun, Ancestor: p.Ancestor}
		}
		t.parts[in.ID] = ps
	}
	return o, nil
}

// Parts returns the parts the pipeline parsed for an input id (nil if it never ran).
func (t *AssessTarget) Parts(id string) []PartSpec {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.parts[id]
}

// startObserver records when the request left the queue (its first non-"queued" event).
func startObserver(o *Outcome) pipeline.Observer {
	return func(e pipeline.Event) error {
		if e.Stage != "queued" && o.Started.IsZero() {
			o.Started = time.Now()
		}
		return nil
	}
}

func assessStages(a *pipeline.Assessment) map[string]float64 {
	st := map[string]float64{}
	if a == nil || a.Report == nil {
		return st
	}
	for k, v := range a.TimingsMillis {
		if k == "total" {
			st["assess"] = v
			continue
		}
		st["assess/"+k] = v
	}
	return st
}

// RefineTarget runs the whole refine (assess, stage 1, stage 2) of each input. Stages:
// the assess timings as AssessTarget's, "stage1" and "stage2" (the refiner's stage
// reports), and from the progress events "stageN/unet_steps" (mean step interval ×
// steps) and "stageN/other" (the rest: text encoders, VAE encode and decode, resizes,
// colour fix, paste).
type RefineTarget struct {
	P      Refiner
	Params *pipeline.Params
}

// Do implements Target.
func (t *RefineTarget) Do(ctx context.Context, in *Input) (Outcome, error) {
	var o Outcome
	steps := map[string][]time.Time{}
	start := startObserver(&o)
	obs := func(e pipeline.Event) error {
		if e.Step > 0 && (e.Stage == "stage1" || e.Stage == "stage2") {
			steps[e.Stage] = append(steps[e.Stage], time.Now())
		}
		return start(e)
	}
	r, err := t.P.Refine(ctx, pipeline.Request{Image: in.Image, Prompt: in.Prompt, Params: t.Params, Observer: obs})
	if err != nil {
		return o, err
	}
	o.Stages = assessStages(r.Assessment)
	if r.Refine != nil {
		for name, rep := range map[string]float64{"stage1": r.Refine.Stage1.Millis, "stage2": r.Refine.Stage2.Millis} {
			if rep == 0 {
				continue
			}
			o.Stages[name] = rep
			if ts := steps[name]; len(ts) >= 2 {
				unet := millis(ts[len(ts)-1].Sub(ts[0])) * float64(len(ts)) / float64(len(ts)-1)
				o.Stages[name+"/unet_steps"] = unet
				o.Stages[name+"/other"] = max(rep-unet, 0)
			}
		}
	}
	o.Stages["total"] = r.TotalMillis
	return o, nil
}

// EngineTarget runs one engine alone on fixed synthetic inputs of its contract's shapes
// (as trtexec does): Slots calls at once at most, the rest wait (queue time). With a
// device stream the inputs live on the device (uploaded once) and each call ends with a
// sync of the stream, so its time is the device's.
type EngineTarget struct {
	E      engine.Engine
	inputs map[string]engine.Tensor
	slots  chan struct{}
	stream engine.Stream // nil: host tensors
}

// NewEngineTarget prepares e's synthetic inputs. Each dynamic dimension is resolved by
// ResolveShape unless shapes names the input (a full concrete shape). st is the stream e
// reads its tensors on (nil for an engine of host tensors); a stream serves one call at a
// time, so slots must then be 1.
func NewEngineTarget(e engine.Engine, st engine.Stream, size, batch, slots int, shapes map[string]engine.Shape, seed uint64) (*EngineTarget, error) {
	if slots < 1 {
		slots = 1
	}
	if st != nil && slots > 1 {
		return nil, fmt.Errorf("engine %s runs on a %s stream: one call at a time (slots 1, not %d)", e.Name(), st.Device().Name(), slots)
	}
	t := &EngineTarget{E: e, inputs: map[string]engine.Tensor{}, slots: make(chan struct{}, slots), stream: st}
	r := rand.New(rand.NewPCG(seed, 7))
	for name := range shapes {
		found := false
		for _, d := range e.Inputs() {
			found = found || d.Name == name
		}
		if !found {
			return nil, fmt.Errorf("engine %s has no input %q (inputs: %v)", e.Name(), name, e.Inputs())
		}
	}
	for _, d := range e.Inputs() {
		s, ok := shapes[d.Name]
		if !ok {
			s = ResolveShape(e.Name(), d, size, batch)
		}
		if !s.IsConcrete() || !d.Shape.Matches(s) {
			return nil, fmt.Errorf("engine %s input %s: shape %v does not fit the contract %v", e.Name(), d.Name, s, d.Shape)
		}
		ht, err := engine.NewHostTensor(d.DType, s)
		if err != nil {
			return nil, fmt.Errorf("engine %s input %s: %w", e.Name(), d.Name, err)
		}
		fillSynthetic(ht, d.Name, r)
		if st == nil {
			t.inputs[d.Name] = ht
			continue
		}
		dt, err := engine.Upload(st, ht)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("engine %s input %s: %w", e.Name(), d.Name, err)
		}
		t.inputs[d.Name] = dt
	}
	if st != nil {
		if err := st.Sync(); err != nil {
			t.Close()
			return nil, fmt.Errorf("engine %s inputs: %w", e.Name(), err)
		}
	}
	return t, nil
}

// Close releases the inputs (device memory with a stream); it does not close the engine.
func (t *EngineTarget) Close() error {
	err := engine.CloseAll(t.inputs)
	t.inputs = map[string]engine.Tensor{}
	return err
}

// Shapes reports the input shapes the target runs, "name=AxBxC" sorted by name.
func (t *EngineTarget) Shapes() []string {
	var out []string
	for n, v := range t.inputs {
		out = append(out, n+"="+FormatShape(v.Shape()))
	}
	sort.Strings(out)
	return out
}

// Do implements Target.
func (t *EngineTarget) Do(ctx context.Context, _ *Input) (Outcome, error) {
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
	defer func() { <-t.slots }()
	o := Outcome{Started: time.Now()}
	out, err := t.E.Run(ctx, t.inputs)
	if err != nil {
		return o, err
	}
	if t.stream != nil {
		err = t.stream.Sync()
	}
	engine.CloseAll(out)
	if err != nil {
		return o, err
	}
	o.Stages = map[string]float64{t.E.Name(): millis(time.Since(o.Started))}
	return o, nil
}

// ResolveShape fills a contract's dynamic dimensions (-1) for a synthetic run: the
// batch (dim 0) is batch; a token sequence is 77; an image-space side is size and a
// latent side size/8 (inputs named sample or latent), the way the pipeline calls them.
func ResolveShape(engineName string, d engine.TensorDesc, size, batch int) engine.Shape {
	s := d.Shape.Clone()
	for i := range s {
		if s[i] != engine.Dynamic {
			continue
		}
		switch {
		case i == 0:
			s[i] = int64(batch)
		case d.DType == engine.Int32 || d.DType == engine.Int64:
			s[i] = 77
		case d.Name == "sample" || d.Name == "latent":
			s[i] = int64(max(size/8, 1))
		default:
			s[i] = int64(size)
		}
	}
	return s
}

// ParseShape reads "2x9x32x32".
func ParseShape(s string) (engine.Shape, error) {
	var out engine.Shape
	for _, f := range strings.Split(s, "x") {
		var v int64
		if _, err := fmt.Sscanf(f, "%d", &v); err != nil || v < 1 || fmt.Sprint(v) != f {
			return nil, fmt.Errorf("shape %q: want positive dimensions joined by x (e.g. 2x9x32x32)", s)
		}
		out = append(out, v)
	}
	return out, nil
}

// FormatShape writes a shape as "2x9x32x32".
func FormatShape(s engine.Shape) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, "x")
}

// fillSynthetic gives a tensor plausible values: token ids BOS, words, EOS and padding;
// a timestep of 500; SDXL time ids for a 1024² image; uniform [-1, 1) elsewhere.
func fillSynthetic(t *engine.HostTensor, name string, r *rand.Rand) {
	switch {
	case t.I32 != nil || t.I64 != nil:
		sh := t.Shape()
		seq := int(sh[len(sh)-1])
		ids := make([]int64, t.Len())
		for row := 0; row < len(ids)/seq; row++ {
			n := 4 + r.IntN(max(seq/4, 1))
			for j := 0; j < seq; j++ {
				switch {
				case j == 0:
					ids[row*seq+j] = 49406
				case j < n:
					ids[row*seq+j] = int64(320 + r.IntN(4000))
				default:
					ids[row*seq+j] = 49407
				}
			}
		}
		for i, v := range ids {
			if t.I32 != nil {
				t.I32[i] = int32(v)
			} else {
				t.I64[i] = v
			}
		}
	case name == "timestep":
		for i := range t.F32 {
			t.F32[i] = 500
		}
	case name == "time_ids":
		ids := []float32{1024, 1024, 0, 0, 1024, 1024}
		for i := range t.F32 {
			t.F32[i] = ids[i%6]
		}
	default:
		for i := range t.F32 {
			t.F32[i] = 2*r.Float32() - 1
		}
	}
}
