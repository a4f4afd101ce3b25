package refine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/modelset"
	"github.com/grefine/grefine/pipeline/sched"
	"github.com/grefine/grefine/pipeline/tokenizer"
)

// Errors wrapped by this package.
var (
	ErrConfig = errors.New("refine: bad configuration")
	ErrInput  = errors.New("refine: bad input")
)

// engines of a full refiner, in opening order.
var engineNames = modelset.RefineEngines

type sdxlConfig struct {
	VAEScale       float64         `json:"vae_scale"`
	VAEFactor      int             `json:"vae_factor"`
	LatentChannels int             `json:"latent_channels"`
	TextLDim       int             `json:"text_l_dim"`
	TextGDim       int             `json:"text_g_dim"`
	TextEmbedsDim  int             `json:"text_embeds_dim"`
	UNetIn         int             `json:"unet_in_channels"`
	TimeIDs        int             `json:"time_ids"`
	TextLPad       int32           `json:"text_l_pad_id"`
	TextGPad       int32           `json:"text_g_pad_id"`
	Scheduler      json.RawMessage `json:"scheduler"`
}

type pasdConfig struct {
	VAEScale       float64         `json:"vae_scale"`
	VAEFactor      int             `json:"vae_factor"`
	LatentChannels int             `json:"latent_channels"`
	TextDim        int             `json:"text_dim"`
	PadID          int32           `json:"pad_id"`
	Scheduler      json.RawMessage `json:"scheduler"`
}

// Refiner holds the stage engines of a model set. Create with New; Close releases them.
// It is safe for concurrent use when the backend's engines are (ONNX Runtime's are).
type Refiner struct {
	cfg    Config
	tok    *tokenizer.Tokenizer
	sdxl   sdxlConfig
	pasd   pasdConfig
	sched1 sched.Scheduler // prototypes; cloned per request
	sched2 sched.Scheduler
	eng    map[string]engine.Engine
	engDev string // the device the engines read
	view   bool   // a With copy: shares the engines, Close does nothing
}

// Options for New.
type Options struct {
	Config  Config
	Threads int
	// Tokenizer, if set, is used instead of loading the model set's vocabulary again.
	Tokenizer *tokenizer.Tokenizer
	// Opener opens the engines (nil: the model set itself, from its ONNX files).
	Opener Opener
}

// Opener opens a model set's engine by name; *modelset.Set implements it, and a plan
// repository (TensorRT) can stand in for it.
type Opener interface {
	OpenEngine(b engine.Backend, name string, opts engine.OpenOptions) (engine.Engine, error)
}

// EngineNames lists the engines a refiner opens, in opening order.
func EngineNames() []string { return append([]string(nil), engineNames...) }

// New opens the SDXL-Inpainting and PASD engines of set with backend b.
func New(set *modelset.Set, b engine.Backend, opts Options) (*Refiner, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	r := &Refiner{cfg: opts.Config, eng: map[string]engine.Engine{}, engDev: b.DeviceName()}
	if err := set.Config("sdxl", &r.sdxl); err != nil {
		return nil, err
	}
	if err := set.Config("pasd", &r.pasd); err != nil {
		return nil, err
	}
	if r.sdxl.VAEFactor < 1 || r.pasd.VAEFactor < 1 || r.sdxl.LatentChannels < 1 || r.pasd.LatentChannels < 1 ||
		r.sdxl.VAEScale <= 0 || r.pasd.VAEScale <= 0 {
		return nil, fmt.Errorf("%w: model set sdxl/pasd config incomplete: %+v %+v", ErrConfig, r.sdxl, r.pasd)
	}
	var err error
	if r.sched1, err = sched.NewFromJSON("EulerDiscreteScheduler", r.sdxl.Scheduler); err != nil {
		return nil, fmt.Errorf("refine: sdxl scheduler: %w", err)
	}
	if r.sched2, err = sched.NewFromJSON("UniPCMultistepScheduler", r.pasd.Scheduler); err != nil {
		return nil, fmt.Errorf("refine: pasd scheduler: %w", err)
	}
	if r.tok = opts.Tokenizer; r.tok == nil {
		vocab, err := set.FilePath("bpe_vocab")
		if err != nil {
			return nil, err
		}
		if r.tok, err = tokenizer.Load(vocab); err != nil {
			return nil, err
		}
	}
	var opener Opener = set
	if opts.Opener != nil {
		opener = opts.Opener
	}
	for _, n := range engineNames {
		e, err := opener.OpenEngine(b, n, engine.OpenOptions{Threads: opts.Threads})
		if err != nil {
			r.Close()
			return nil, err
		}
		r.eng[n] = e
	}
	return r, nil
}

// With returns a view of r that runs with cfg (per-request parameters: seed, steps,
// strengths, guidance, switches). The view shares r's engines, tokenizer and scheduler
// prototypes; its Close does nothing, and it must not be used after r is closed.
func (r *Refiner) With(cfg Config) (*Refiner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := *r
	v.cfg, v.view = cfg, true
	return &v, nil
}

// Close releases the engines; idempotent. On a view (With) it does nothing.
func (r *Refiner) Close() error {
	if r == nil || r.view {
		return nil
	}
	var errs []error
	for n, e := range r.eng {
		errs = append(errs, e.Close())
		delete(r.eng, n)
	}
	return errors.Join(errs...)
}

// Config returns the refiner's configuration.
func (r *Refiner) Config() Config { return r.cfg }

// Tokenizer returns the CLIP tokenizer the text engines use.
func (r *Refiner) Tokenizer() *tokenizer.Tokenizer { return r.tok }

// run runs one engine with host tensors and returns its float32 outputs.
func (r *Refiner) run(ctx context.Context, name string, in map[string]engine.Tensor) (map[string]*engine.HostTensor, error) {
	e, ok := r.eng[name]
	if !ok {
		return nil, fmt.Errorf("%w: engine %s is closed", engine.ErrClosed, name)
	}
	out, err := e.Run(ctx, in)
	if err != nil {
		return nil, err
	}
	// Every output is closed here (a device tensor holds device memory); host tensors
	// are handed on, since their Close only drops nothing.
	defer engine.CloseAll(out)
	res := make(map[string]*engine.HostTensor, len(out))
	for k, t := range out {
		h, ok := t.(*engine.HostTensor)
		if !ok || h.DType() != engine.Float32 {
			return nil, fmt.Errorf("refine: %s output %s is %T, want a float32 host tensor", name, k, t)
		}
		res[k] = h
	}
	return res, nil
}

func f32(shape engine.Shape, data []float32) engine.Tensor {
	t, err := engine.FromFloat32(shape, data)
	if err != nil {
		panic(err) // shapes are computed here; a mismatch is a bug in this package
	}
	return t
}

func i32(ids []int32) engine.Tensor {
	t, err := engine.FromInt32(engine.Shape{int64(len(ids) / tokenizer.ContextLength), tokenizer.ContextLength}, ids)
	if err != nil {
		panic(err)
	}
	return t
}

// vaeEncode returns vae_scale · latent_mean of image [3,H,W] in [0,1] (or already in
// [-1,1] when signed).
func (r *Refiner) vaeEncode(ctx context.Context, name string, scale float64, img []float32, H, W int, signed bool) ([]float32, error) {
	x := make([]float32, len(img))
	for i, v := range img {
		if signed {
			x[i] = v
		} else {
			x[i] = v*2 - 1
		}
	}
	out, err := r.run(ctx, name, map[string]engine.Tensor{"images": f32(engine.Shape{1, 3, int64(H), int64(W)}, x)})
	if err != nil {
		return nil, err
	}
	z := out["latent_mean"].F32
	for i := range z {
		z[i] = float32(float64(z[i]) * scale)
	}
	return z, nil
}

// vaeDecode decodes scaled latents [C,h,w] to an image [3,H,W] in [0,1] (clamped).
func (r *Refiner) vaeDecode(ctx context.Context, name string, scale float64, z []float32, C, h, w int) ([]float32, int, int, error) {
	x := make([]float32, len(z))
	for i, v := range z {
		x[i] = float32(float64(v) / scale)
	}
	out, err := r.run(ctx, name, map[string]engine.Tensor{"latent": f32(engine.Shape{1, int64(C), int64(h), int64(w)}, x)})
	if err != nil {
		return nil, 0, 0, err
	}
	img := out["images"]
	s := img.Shape()
	if len(s) != 4 || s[1] != 3 {
		return nil, 0, 0, fmt.Errorf("refine: %s returned shape %v", name, s)
	}
	for i, v := range img.F32 {
		img.F32[i] = min(max(v/2+0.5, 0), 1)
	}
	return img.F32, int(s[2]), int(s[3]), nil
}

// StepFunc observes the latents after each denoising step (tests, progress). latents is
// nil when the loop runs on a device other than the cpu.
type StepFunc func(stage string, step, total int, latents []float32)

// loopSpec is one denoising loop: scheduler, conditioning and the UNet call. The
// latents, init, noise and mask live on the ops' device.
type loopSpec struct {
	stage    string
	sc       sched.Scheduler
	start, N int
	guidance float64
	C, h, w  int
	x        xfer
	init     engine.Tensor // clean latents (blending target)
	noise    engine.Tensor
	mask     engine.Tensor // latent mask [1,1,h,w] for blending; nil = none
	// unet returns the noise prediction [2,C,h,w] for latents x at step i, on the ops'
	// device (the loop closes it).
	unet   func(ctx context.Context, x engine.Tensor, i int) (engine.Tensor, error)
	onStep StepFunc
}

// denoise runs steps start..N-1 from x (updated in place) with the fused CFG + step +
// blending op of the ops' device.
func denoise(ctx context.Context, l loopSpec, x engine.Tensor) error {
	ops := l.x.ops
	shape := engine.Shape{1, int64(l.C), int64(l.h), int64(l.w)}
	// Three buffers rotate: x0 of this step, and the two previous x0 (history).
	var bufs [3]engine.Tensor
	defer func() { closeAll(bufs[:]...) }()
	for k := range bufs {
		b, err := ops.Zeros(shape)
		if err != nil {
			return err
		}
		bufs[k] = b
	}
	var hist [2]engine.Tensor
	for i := l.start; i < l.N; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		np, err := l.unet(ctx, x, i)
		if err != nil {
			return err
		}
		if !np.Shape().Equal(engine.Shape{2, int64(l.C), int64(l.h), int64(l.w)}) {
			np.Close()
			return fmt.Errorf("refine: %s: UNet returned %v, want [2,%d,%d,%d]", l.stage, np.Shape(), l.C, l.h, l.w)
		}
		co, err := sched.Blend(l.sc, i, l.guidance)
		if err != nil {
			np.Close()
			return err
		}
		in := engine.BlendTensors{NoisePred: np, X: x, Hist: hist}
		if l.mask != nil {
			in.Init, in.Noise, in.Mask = l.init, l.noise, l.mask
		}
		x0 := bufs[(i-l.start)%3]
		err = ops.BlendStep(co, in, x, x0)
		np.Close()
		if err != nil {
			return err
		}
		// history for multistep solvers: hist[0] = this step's x0, hist[1] the one before
		hist[1], hist[0] = hist[0], x0
		if l.onStep != nil {
			var lat []float32
			if h, ok := x.(*engine.HostTensor); ok {
				lat = h.F32 // host latents only: a device loop does not copy them back per step
			}
			l.onStep(l.stage, i-l.start+1, l.N-l.start, lat)
		}
	}
	return nil
}

// schedule prepares a cloned scheduler so exactly steps steps run at strength s.
func schedule(proto sched.Scheduler, steps int, s float64) (sched.Scheduler, int, int, error) {
	N, err := sched.TimestepsForStrength(steps, s)
	if err != nil {
		return nil, 0, 0, err
	}
	start, err := sched.StartStep(N, s)
	if err != nil {
		return nil, 0, 0, err
	}
	sc := proto.Clone()
	if err := sc.SetTimesteps(N); err != nil {
		return nil, 0, 0, err
	}
	if err := sc.SetBeginIndex(start * sc.Order()); err != nil {
		return nil, 0, 0, err
	}
	return sc, start * sc.Order(), N, nil
}

func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if strings.TrimSpace(p) != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "")
}
