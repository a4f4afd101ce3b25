package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cuda"
	"github.com/grefine/grefine/engine/modelset"
	"github.com/grefine/grefine/pipeline/assess"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/refine"
	"github.com/grefine/grefine/pipeline/syntax"
	"github.com/grefine/grefine/pipeline/tokenizer"
	"github.com/grefine/grefine/plans"
)

// Version is grefine's version, set by the build (-ldflags "-X
// github.com/grefine/grefine/pipeline.Version=...").
var Version = "dev"

// Config is what Open needs. Only Models is required.
type Config struct {
	// Models is the model-set directory (a models.json manifest). Required: there is no
	// default, so a server never serves the tiny random-weight set by accident.
	Models string
	// HashCache remembers verified model files by size and mtime ("" = hash every file).
	HashCache string
	// Backend runs the networks: "ort" (default).
	Backend string
	// BackendOptions are passed to the backend factory ("lib": the native library path).
	BackendOptions map[string]string
	// BackendInstance, if set, is used instead of building Backend (embedding, tests);
	// the pipeline does not close it.
	BackendInstance engine.Backend
	// Opener, if set, opens the engines instead of the model set's ONNX files.
	Opener Opener
	// Plans is a TensorRT plan repository (the output of `grefine plans build`) for the
	// trt backend: each engine is opened from its plan, verified against the GPU, the
	// TensorRT version and the ONNX SHA-256 first (plans.Repo), and every slot gets its own
	// execution contexts.
	Plans string
	// Device is "cpu" (default) or "cuda": with cuda the non-network operations run on the
	// GPU (the map fusion kernel, the denoising loops' ops on a stream per slot) and, with
	// the ort backend, the networks run on ONNX Runtime's CUDA execution provider (the GPU
	// build that `make setup-gpu` installs).
	Device string
	// Threads bounds each engine's intra-op threads (0: the backend's default; at most
	// MaxThreads).
	Threads int
	// Slots is the number of requests that run at once (default 1, at most MaxSlots).
	// Further requests wait, in arrival order, until their context's deadline.
	Slots int
	// MaxQueue bounds the requests waiting for a slot (0: unbounded): the pipeline
	// admits at most Slots + MaxQueue requests (Admit), one more fails at once with
	// ErrBusy, before its image is decoded.
	MaxQueue int
	// AssessOnly opens only the quality indicators' engines; Refine is then unavailable.
	AssessOnly bool
	// Limits bound decoded images (DecodeImage) and accepted ones (every request).
	Limits imageio.Limits
	// MaxMemory refuses requests whose estimated working memory (Work.Memory) exceeds
	// it, before any work (0: 80 % of the machine's or the cgroup's memory; negative: no
	// check).
	MaxMemory int64
	// MaxTimesteps, MaxSteps and MaxStagePixels are the other work limits (WorkLimits;
	// 0: the defaults DefaultMaxTimesteps, DefaultMaxSteps, DefaultMaxStagePixels).
	MaxTimesteps   int
	MaxSteps       int
	MaxStagePixels int64
	// DecodeMemory is the memory all image decodes in flight share, counted at their
	// decoded size (0: DefaultDecodeMemory; negative: unbounded).
	DecodeMemory int64
	// MaxPromptBytes refuses longer prompts (default 16 KiB).
	MaxPromptBytes int
	// FeatureCache is the number of text features the LRU keeps (default 4096; negative
	// disables the cache).
	FeatureCache int
	// TextBatch batches the text-encoder calls of concurrent requests.
	TextBatch TextBatch
	// Logger receives the pipeline's logs (nil: none).
	Logger *zerolog.Logger
}

// TextBatch configures the cross-request batching of clip_text calls: a call waits up
// to MaxWait for calls of other requests with the same sequence length, and at most
// MaxRows rows run in one engine call. MaxWait 0 turns batching off.
type TextBatch struct {
	MaxRows int
	MaxWait time.Duration
}

// Opener opens a model set's engine by name; *modelset.Set implements it.
type Opener interface {
	OpenEngine(b engine.Backend, name string, opts engine.OpenOptions) (engine.Engine, error)
}

// Bounds of Config.
const (
	MaxSlots = 64
	// TinyMaxSide bounds the working sizes with a tiny model set: its stand-in UNets
	// attend at full latent resolution, so larger sizes need tens of GB.
	TinyMaxSide = 512
	// tinyLongSide is stage 1's default working long side with a tiny model set.
	tinyLongSide = 256
)

// MaxThreads is the largest Config.Threads accepted: four per CPU.
func MaxThreads() int { return 4 * runtime.NumCPU() }

// Info describes an open pipeline.
type Info struct {
	Version        string         `json:"version"`
	ModelSet       string         `json:"model_set"`
	ModelDir       string         `json:"model_dir"`
	Tiny           bool           `json:"tiny"`
	Backend        string         `json:"backend"`
	BackendVersion string         `json:"backend_version"`
	Device         string         `json:"device"`
	Slots          int            `json:"slots"`
	Engines        []string       `json:"engines"`
	Refine         bool           `json:"refine"` // the refiner's engines are loaded
	Limits         imageio.Limits `json:"limits"`
	MinSide        int            `json:"min_side"`
	MaxPromptBytes int            `json:"max_prompt_bytes"`
	MaxMemory      int64          `json:"max_memory_bytes"`
	MaxSide        int            `json:"max_working_side,omitempty"` // tiny sets only
	// Work are the limits on one request's work; DecodeMemory the decode budget
	// (0: unbounded); Queue the requests that may wait for a slot (0: unbounded).
	Work         WorkLimits `json:"work_limits"`
	DecodeMemory int64      `json:"decode_memory_bytes"`
	Queue        int        `json:"queue"`
	Defaults     Params     `json:"defaults"`
	// Params is the parameter table (names, ranges, defaults as text).
	Params []Param `json:"params"`
}

// Pipeline is a loaded G-Refine: the model set verified once, every engine opened once,
// the parser, tokenizer and feature cache loaded. It is safe for concurrent use; requests
// run on its slots. Close it when done.
type Pipeline struct {
	cfg     Config
	info    Info
	set     *modelset.Set
	backend engine.Backend
	ownB    bool
	parser  *syntax.Parser
	tok     *tokenizer.Tokenizer
	assess  *assess.Assessor
	refine  *refine.Refiner
	// per-slot instances: with per-slot engines (trt) slot s > 0 has its own; else nil
	slotA   []*assess.Assessor
	slotR   []*refine.Refiner
	release []func()
	ops     []refine.Ops // per slot: the denoising loops' device (nil entries: cpu)
	log     zerolog.Logger
	text    *batchEngine

	slots  *slotQueue
	reqs   *registry
	budget *decodeBudget

	closeMu sync.RWMutex // Close waits for requests in flight (held shared by each)
	closed  bool
}

// Open loads the pipeline. Cheap checks come first (configuration, then the model set's
// manifest and hashes), then the engines.
func Open(ctx context.Context, cfg Config) (p *Pipeline, err error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	p = &Pipeline{cfg: cfg, log: zerolog.Nop()}
	if cfg.Logger != nil {
		p.log = *cfg.Logger
	}
	defer func() {
		if err != nil {
			p.Close()
			p, err = nil, classify(err)
		}
	}()
	if p.set, err = modelset.Load(cfg.Models, modelset.Options{HashCache: cfg.HashCache}); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p.backend = cfg.BackendInstance; p.backend == nil {
		opts := map[string]string{}
		for k, v := range cfg.BackendOptions {
			opts[k] = v
		}
		if cfg.Backend == "ort" && cfg.Device == "cuda" && opts["device"] == "" {
			opts["device"] = "cuda" // ONNX Runtime's CUDA execution provider (make setup-gpu)
		}
		if p.backend, err = engine.NewBackend(cfg.Backend, opts); err != nil {
			return nil, err
		}
		p.ownB = true
	}
	if err := p.backend.Available(); err != nil {
		return nil, err
	}
	fuser, err := p.openDevice()
	if err != nil {
		return nil, err
	}
	if p.parser, err = syntax.New(syntax.Options{}); err != nil {
		return nil, err
	}
	vocab, err := p.set.FilePath("bpe_vocab")
	if err != nil {
		return nil, err
	}
	if p.tok, err = tokenizer.Load(vocab); err != nil {
		return nil, err
	}
	var opener Opener = p.set
	if cfg.Opener != nil {
		opener = cfg.Opener
	}
	perSlot := false
	if cfg.Plans != "" {
		if cfg.Backend != "trt" && cfg.BackendInstance == nil {
			return nil, inputf("plans %s: TensorRT plans run on the trt backend (--backend trt)", cfg.Plans)
		}
		repo, err := plans.Open(cfg.Plans, p.set, plans.OpenOptions{})
		if err != nil {
			return nil, err
		}
		p.release = append(p.release, func() { repo.Close() })
		opener, perSlot = repo, true
	}
	base := opener
	if !perSlot {
		opener = &textBatchOpener{Opener: opener, cfg: cfg.TextBatch, out: &p.text}
	}
	acfg := assess.DefaultConfig()
	acfg.MaxPromptBytes = cfg.MaxPromptBytes
	acfg.FeatureCache = max(cfg.FeatureCache, 0)
	// The prefix-cached text engine (clip_text_kv) is used when the set has it, except
	// where the plain one is needed: cross-request batching merges clip_text calls, and
	// plan repositories hold clip_text only.
	textEngine := ""
	if cfg.TextBatch.MaxWait > 0 || perSlot {
		textEngine = "clip_text"
	}
	if p.assess, err = assess.New(p.set, p.backend, assess.Options{Config: acfg, Parser: assess.SyntaxParser{P: p.parser},
		Fuser: fuser, Threads: cfg.Threads, Tokenizer: p.tok, Opener: opener, TextEngine: textEngine}); err != nil {
		return nil, err
	}
	engines := []string{"clip_surgery", p.assess.TextEngine()}
	if !cfg.AssessOnly {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rcfg := refine.DefaultConfig()
		if cfg.Limits.MaxPixels > 0 {
			rcfg.MaxPixels = cfg.Limits.MaxPixels
		}
		if p.refine, err = refine.New(p.set, p.backend, refine.Options{Config: rcfg, Threads: cfg.Threads, Tokenizer: p.tok, Opener: opener}); err != nil {
			return nil, err
		}
		engines = append(engines, refine.EngineNames()...)
	}
	if perSlot {
		// Every further slot gets its own sessions (execution contexts) of every engine.
		p.slotA, p.slotR = make([]*assess.Assessor, cfg.Slots), make([]*refine.Refiner, cfg.Slots)
		for sl := 1; sl < cfg.Slots; sl++ {
			so := slotOpener{Opener: base, slot: sl}
			if p.slotA[sl], err = assess.New(p.set, p.backend, assess.Options{Config: acfg, Parser: assess.SyntaxParser{P: p.parser},
				Fuser: fuser, Threads: cfg.Threads, Tokenizer: p.tok, Opener: so, TextEngine: textEngine}); err != nil {
				return nil, err
			}
			if p.refine != nil {
				if p.slotR[sl], err = refine.New(p.set, p.backend, refine.Options{Config: p.refine.Config(), Threads: cfg.Threads, Tokenizer: p.tok, Opener: so}); err != nil {
					return nil, err
				}
			}
		}
	}
	p.slots = newSlotQueue(cfg.Slots, cfg.MaxQueue)
	p.reqs = newRegistry(cfg.Slots, cfg.MaxQueue)
	p.budget = newDecodeBudget(cfg.DecodeMemory)
	p.info = Info{Version: Version, ModelSet: p.set.Manifest.Name, ModelDir: p.set.Dir, Tiny: p.set.Manifest.Tiny,
		Backend: p.backend.Name(), BackendVersion: p.backend.Version(), Device: cfg.Device, Slots: cfg.Slots,
		Engines: engines, Refine: p.refine != nil, Limits: cfg.Limits, MinSide: MinSide,
		MaxPromptBytes: cfg.MaxPromptBytes, MaxMemory: cfg.MaxMemory, Work: cfg.workLimits(),
		DecodeMemory: max(cfg.DecodeMemory, 0), Queue: cfg.MaxQueue, Params: ParamTable()}
	if p.info.Tiny {
		p.info.MaxSide = TinyMaxSide
		p.log.Warn().Str("models", cfg.Models).Msg("tiny random-weight model set: scores, maps and refinements are not meaningful")
	}
	p.info.Defaults = p.DefaultParams()
	return p, nil
}

// fill applies the defaults and checks the bounds.
func (c *Config) fill() error {
	if c.Models == "" {
		return inputf("no model set given (--models DIR or GREFINE_MODELS)")
	}
	if c.Backend == "" {
		c.Backend = "ort"
	}
	if c.Device == "" {
		c.Device = "cpu"
	}
	if c.Slots == 0 {
		c.Slots = 1
	}
	if c.MaxPromptBytes == 0 {
		c.MaxPromptBytes = 16 << 10
	}
	if err := c.fillWork(); err != nil {
		return err
	}
	if c.FeatureCache == 0 {
		c.FeatureCache = 4096
	}
	if c.Limits == (imageio.Limits{}) {
		c.Limits = imageio.DefaultLimits
	}
	switch {
	case c.Device != "cpu" && c.Device != "cuda":
		return inputf("device %q: want cpu or cuda", c.Device)
	case c.Threads < 0 || c.Threads > MaxThreads():
		return inputf("threads: %d is out of range [0, %d] (0: the backend's default)", c.Threads, MaxThreads())
	case c.Slots < 1 || c.Slots > MaxSlots:
		return inputf("slots: %d is out of range [1, %d]", c.Slots, MaxSlots)
	case c.MaxQueue < 0:
		return inputf("queue: %d must be >= 0", c.MaxQueue)
	case c.MaxPromptBytes < 0:
		return inputf("max prompt bytes: %d must be >= 0", c.MaxPromptBytes)
	case c.TextBatch.MaxRows < 0 || c.TextBatch.MaxWait < 0:
		return inputf("text batch: max rows %d and max wait %v must be >= 0", c.TextBatch.MaxRows, c.TextBatch.MaxWait)
	}
	return nil
}

// openDevice prepares Config.Device: the map fusion to use (nil: the cpu reference) and
// the ops of each slot (a stream of its own on the GPU).
func (p *Pipeline) openDevice() (assess.Fuser, error) {
	p.ops = make([]refine.Ops, p.cfg.Slots)
	if p.cfg.Device == "cpu" {
		return nil, nil
	}
	d, err := cuda.Open(cuda.Options{})
	if err != nil {
		return nil, fmt.Errorf("device cuda: %w", err)
	}
	p.release = append(p.release, func() { d.Close() })
	f, err := cuda.NewHostFuser(d)
	if err != nil {
		return nil, fmt.Errorf("device cuda: %w", err)
	}
	p.release = append(p.release, func() { f.Close() })
	for i := range p.ops {
		o, err := cuda.NewOps(d)
		if err != nil {
			return nil, fmt.Errorf("device cuda: slot %d: %w", i, err)
		}
		p.ops[i] = o
		p.release = append(p.release, func() { o.Close() })
	}
	return f.FuseMaps, nil
}

// slotOpener opens engines for one execution slot.
type slotOpener struct {
	Opener
	slot int
}

func (o slotOpener) OpenEngine(b engine.Backend, name string, opts engine.OpenOptions) (engine.Engine, error) {
	opts.Slot = o.slot
	return o.Opener.OpenEngine(b, name, opts)
}

// assessor and refiner return the instances slot s runs on.
func (p *Pipeline) assessor(s int) *assess.Assessor {
	if s < len(p.slotA) && p.slotA[s] != nil {
		return p.slotA[s]
	}
	return p.assess
}

func (p *Pipeline) refiner(s int) *refine.Refiner {
	if s < len(p.slotR) && p.slotR[s] != nil {
		return p.slotR[s]
	}
	return p.refine
}

// Info describes the pipeline.
func (p *Pipeline) Info() Info { return p.info }

// Close waits for the requests in flight and releases the engines; idempotent.
func (p *Pipeline) Close() error {
	if p == nil {
		return nil
	}
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	for i := range p.slotR {
		errs = append(errs, p.slotR[i].Close(), p.slotA[i].Close())
	}
	if p.refine != nil {
		errs = append(errs, p.refine.Close())
	}
	if p.assess != nil {
		errs = append(errs, p.assess.Close())
	}
	if p.text != nil {
		p.text.stop()
	}
	for i := len(p.release) - 1; i >= 0; i-- {
		p.release[i]()
	}
	if p.ownB && p.backend != nil {
		errs = append(errs, p.backend.Close())
	}
	return errors.Join(errs...)
}
