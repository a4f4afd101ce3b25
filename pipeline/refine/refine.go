package refine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/pipeline/sched"
	"github.com/grefine/grefine/pipeline/tokenizer"
)

// Errors wrapped by this package.
var (
	ErrConfig = errors.New("refine: bad configuration")
	ErrInput  = errors.New("refine: bad input")
)

// engines of a full refiner, in opening order.
var engineNames = []string{"sdxl_text_l", "sdxl_text_g", "sdxl_unet", "sdxl_vae_encoder", "sdxl_vae_decoder",
	"pasd_text", "pasd_unet", "pasd_vae_encoder", "pasd_vae_decoder"}

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
	s      engine.Stream // where the refiner's work runs
	ownS   bool          // s was made here (the cpu device's)
	view   bool          // a With copy: shares the engines, Close does nothing
	tiny   bool          // the set's UNets are the tiny stand-ins (memory estimates)
}

// Options for New.
type Options struct {
	Config  Config
	Threads int
	// Tokenizer, if set, is used instead of loading the model set's vocabulary again.
	Tokenizer *tokenizer.Tokenizer
	// Opener opens the engines (nil: the model set itself, from its ONNX files). The
	// engines must read and write the tensors of Stream's device.
	Opener engine.Opener
	// Stream is where the refiner's work runs (nil: a stream of the "cpu" device, which
	// the program must link, e.g. by importing engine/cpu).
	Stream engine.Stream
}

// EngineNames lists the engines a refiner opens, in opening order.
func EngineNames() []string { return append([]string(nil), engineNames...) }

// New opens the SDXL-Inpainting and PASD engines of set with backend b.
func New(set *modelset.Set, b engine.Backend, opts Options) (*Refiner, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	r := &Refiner{cfg: opts.Config, eng: map[string]engine.Engine{}, s: opts.Stream, tiny: set.Manifest.Tiny}
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
	if err := r.checkVAE(r.cfg); err != nil {
		return nil, err
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
	if r.s == nil {
		d, err := engine.NewDevice("cpu", nil)
		if err != nil {
			return nil, err
		}
		if r.s, err = d.NewStream(); err != nil {
			return nil, err
		}
		r.ownS = true
	}
	var opener engine.Opener = set
	if opts.Opener != nil {
		opener = opts.Opener
	}
	for _, n := range engineNames {
		e, err := opener.OpenEngine(b, n, engine.OpenOptions{Threads: opts.Threads, Stream: r.s})
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
	if err := r.checkVAE(cfg); err != nil {
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
	if r.ownS && r.s != nil {
		errs = append(errs, r.s.Close())
		r.s = nil
	}
	return errors.Join(errs...)
}

// Stream is the stream the refiner runs on.
func (r *Refiner) Stream() engine.Stream { return r.s }

// Config returns the refiner's configuration.
func (r *Refiner) Config() Config { return r.cfg }

// Tokenizer returns the CLIP tokenizer the text engines use.
func (r *Refiner) Tokenizer() *tokenizer.Tokenizer { return r.tok }

// run runs one engine; its outputs (on the refiner's device) belong to scp.
func (r *Refiner) run(ctx context.Context, scp *scope, name string, in map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	e, ok := r.eng[name]
	if !ok {
		return nil, fmt.Errorf("%w: engine %s is closed", engine.ErrClosed, name)
	}
	out, err := e.Run(ctx, in)
	if err != nil {
		return nil, err
	}
	dev := r.s.Device().Name()
	for k, t := range out {
		scp.keep(t)
		if t.DType() != engine.Float32 {
			return nil, fmt.Errorf("refine: %s output %s is %v, want float32", name, k, t.DType())
		}
		if err := engine.CheckDevice("refine: "+name, "output "+k, t, dev); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// runInto runs one engine into bound outputs (the UNet: the same tensors at every step,
// so nothing is allocated and a TensorRT session replays its captured graph).
func (r *Refiner) runInto(ctx context.Context, name string, in, out map[string]engine.Tensor) error {
	e, ok := r.eng[name]
	if !ok {
		return fmt.Errorf("%w: engine %s is closed", engine.ErrClosed, name)
	}
	return engine.RunInto(ctx, e, r.s, in, out)
}

// scope owns the device tensors of one piece of work and frees them at close.
type scope struct {
	s  engine.Stream
	ts []engine.Tensor
}

func (r *Refiner) scope() *scope { return &scope{s: r.s} }

// keep hands t to the scope; release takes it back (the caller then owns it).
func (c *scope) keep(t engine.Tensor) { c.ts = append(c.ts, t) }

func (c *scope) release(t engine.Tensor) {
	for i, x := range c.ts {
		if x == t {
			c.ts = append(c.ts[:i], c.ts[i+1:]...)
			return
		}
	}
}

func (c *scope) alloc(dt engine.DType, shape engine.Shape) (engine.Tensor, error) {
	t, err := c.s.Device().Alloc(dt, shape)
	if err == nil {
		c.keep(t)
	}
	return t, err
}

func (c *scope) view(t engine.Tensor, off int64, shape engine.Shape) (engine.Tensor, error) {
	v, err := c.s.Device().View(t, off, shape)
	if err == nil {
		c.keep(v)
	}
	return v, err
}

// put uploads a host tensor (made by from, or its error) into a new tensor of the scope.
func (c *scope) put(h *engine.HostTensor, err error) (engine.Tensor, error) {
	if err != nil {
		return nil, err
	}
	t, err := engine.Upload(c.s, h)
	if err == nil {
		c.keep(t)
	}
	return t, err
}

func (c *scope) upload(shape engine.Shape, data []float32) (engine.Tensor, error) {
	return c.put(engine.FromFloat32(shape, data))
}

func (c *scope) uploadI32(shape engine.Shape, data []int32) (engine.Tensor, error) {
	return c.put(engine.FromInt32(shape, data))
}

func (c *scope) uploadU8(shape engine.Shape, data []uint8) (engine.Tensor, error) {
	return c.put(engine.FromUint8(shape, data))
}

// close frees the tensors (views first: they were made after their base).
func (c *scope) close() {
	for i := len(c.ts) - 1; i >= 0; i-- {
		c.ts[i].Close()
	}
	c.ts = nil
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
