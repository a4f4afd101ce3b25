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
	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/pipeline/assess"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/refine"
	"github.com/grefine/grefine/pipeline/syntax"
	"github.com/grefine/grefine/pipeline/tokenizer"
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
	Opener engine.Opener
	// Plans is a TensorRT plan repository (the output of `grefine plans build`) for the
	// trt backend: each engine is opened from its plan, verified against the GPU, the
	// TensorRT version and the ONNX SHA-256 first, and every slot gets its own execution
	// contexts. PlanOpener opens it.
	Plans string
	// PlanOpener opens the repository Plans names for the verified model set (the front
	// ends pass package plans' opener: the pipeline does not link TensorRT itself); the
	// Opener it returns may also be an io.Closer, closed with the pipeline.
	PlanOpener func(dir string, set *modelset.Set) (engine.Opener, error)
	// Device names the device the request's tensors live on and the non-network
	// operations run on, from the device registry (engine.NewDevice): "cpu" (default,
	// pure Go), "cuda" (libgrefine_cuda.so's kernels on a GPU) or "cuda-emu" (the same
	// Go code over libgrefine_cuda_emu.so). Every slot gets a stream of it. The engines
	// must read its tensors (trt engines read cuda tensors); engines that read host
	// tensors (ort) on a GPU device are wrapped by engine.OnDevice, whose copies are
	// counted, and with the ort backend a GPU device also runs the networks on ONNX
	// Runtime's CUDA execution provider (the GPU build that `make setup-gpu` installs).
	Device string
	// DeviceOptions are passed to the device factory ("lib": the native library,
	// "ordinal": the GPU index; with GPUs, leave ordinal out).
	DeviceOptions map[string]string
	// GPUs are the CUDA device indices the pipeline serves, on a GPU device ("cuda",
	// "cuda-emu"; at most MaxGPUs, each once). Each GPU gets its own device, its own
	// backend (built from Backend and BackendOptions with the GPU's index: trt's
	// device, ort's device_id on cuda), its own engines (TensorRT: plans verified for that
	// GPU, its own execution contexts), its own constants and text-feature cache, and
	// Slots slots, each with a stream of that GPU; every tensor, stream, kernel and engine
	// run of a request is on its slot's GPU. Requests wait in one line for any slot of any
	// GPU (a free slot goes to the GPU with the fewest busy slots). nil: one device,
	// Device with DeviceOptions (on a GPU device, the GPU its ordinal option names, 0 by
	// default).
	GPUs []int
	// Threads bounds each engine's intra-op threads (0: the backend's default; at most
	// MaxThreads).
	Threads int
	// Slots is the number of requests that run at once on each GPU (default 1; at most
	// MaxSlots in all). Further requests wait, in arrival order, until their context's
	// deadline.
	Slots int
	// MaxQueue bounds the requests waiting for a slot (0: unbounded): the pipeline
	// admits at most its slots (Info.Slots) + MaxQueue requests (Admit), one more fails
	// at once with ErrBusy, before its image is decoded.
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
	Version        string            `json:"version"`
	ModelSet       string            `json:"model_set"`
	ModelDir       string            `json:"model_dir"`
	Tiny           bool              `json:"tiny"`
	Backend        string            `json:"backend"`
	BackendVersion string            `json:"backend_version"`
	Device         string            `json:"device"`
	DeviceInfo     engine.DeviceInfo `json:"device_info"`
	Slots          int               `json:"slots"`
	Engines        []string          `json:"engines"`
	Refine         bool              `json:"refine"` // the refiner's engines are loaded
	Limits         imageio.Limits    `json:"limits"`
	MinSide        int               `json:"min_side"`
	MaxPromptBytes int               `json:"max_prompt_bytes"`
	MaxMemory      int64             `json:"max_memory_bytes"`
	MaxSide        int               `json:"max_working_side,omitempty"` // tiny sets only
	// Work are the limits on one request's work; DecodeMemory the decode budget
	// (0: unbounded); Queue the requests that may wait for a slot (0: unbounded).
	Work         WorkLimits `json:"work_limits"`
	DecodeMemory int64      `json:"decode_memory_bytes"`
	Queue        int        `json:"queue"`
	Defaults     Params     `json:"defaults"`
	// Params is the parameter table (names, ranges, defaults as text).
	Params []Param `json:"params"`
	// GPUs are the GPUs that serve, each with its slots (empty on the cpu device);
	// DeviceInfo is the first one's, and Slots counts the slots of all.
	GPUs []GPU `json:"gpus,omitempty"`
}

// Pipeline is a loaded G-Refine: the model set verified once, every engine opened once,
// the parser, tokenizer and feature cache loaded. It is safe for concurrent use; requests
// run on its slots. Close it when done.
type Pipeline struct {
	cfg    Config
	info   Info
	set    *modelset.Set
	parser *syntax.Parser
	tok    *tokenizer.Tokenizer
	// groups are the devices (one, or one per GPU) with their backends and engines;
	// slot s runs on groups[slotGroup[s]] with streams[s]
	groups    []*group
	slotGroup []int
	streams   []engine.Stream // one per slot
	// per-slot instances (slot 0's are assess and refine); they share the engines where
	// the backend allows it, and each device's text-feature cache and constants
	assess  *assess.Assessor
	refine  *refine.Refiner
	slotA   []*assess.Assessor
	slotR   []*refine.Refiner
	release []func()
	log     zerolog.Logger

	slots  *slotQueue
	reqs   *registry
	budget *decodeBudget

	closeMu sync.RWMutex // Close waits for requests in flight (held shared by each)
	closed  bool
}

// Open loads the pipeline. Cheap checks come first (configuration, then the devices and
// GPU indices, then the model set's manifest and hashes), then the engines.
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
	if err := p.openDevices(); err != nil {
		return nil, err
	}
	if p.set, err = modelset.Load(cfg.Models, modelset.Options{HashCache: cfg.HashCache}); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := p.openBackends(); err != nil {
		return nil, err
	}
	adapt := p.groups[0].adapt
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
	var opener engine.Opener = p.set
	if cfg.Opener != nil {
		opener = cfg.Opener
	}
	perSlot := false
	if cfg.Plans != "" {
		if cfg.Backend != "trt" && cfg.BackendInstance == nil {
			return nil, inputf("plans %s: TensorRT plans run on the trt backend (--backend trt)", cfg.Plans)
		}
		if cfg.PlanOpener == nil {
			return nil, fmt.Errorf("%w: plans %s: no plan repository support in this program (set Config.PlanOpener, e.g. from package plans)", ErrUnavailable, cfg.Plans)
		}
		repo, err := cfg.PlanOpener(cfg.Plans, p.set)
		if err != nil {
			return nil, err
		}
		if c, ok := repo.(interface{ Close() error }); ok {
			p.release = append(p.release, func() { c.Close() })
		}
		opener, perSlot = repo, true
	}
	for _, g := range p.groups { // each device its own engines
		base := opener
		if !perSlot {
			base = &textBatchOpener{Opener: opener, cfg: cfg.TextBatch, out: &g.text}
		}
		g.engines = &engineSet{base: base, perSlot: perSlot, shared: map[string]engine.Engine{}}
		p.release = append(p.release, g.engines.close)
	}
	acfg := assess.DefaultConfig()
	acfg.MaxPromptBytes = cfg.MaxPromptBytes
	acfg.FeatureCache = max(cfg.FeatureCache, 0)
	// The prefix-cached text engine (clip_text_kv) is used when the set has it, except
	// where the plain one is needed: cross-request batching merges clip_text calls, plan
	// repositories hold clip_text only, and engines behind explicit copies (ort on a GPU
	// device) would copy the prefix table at every call.
	textEngine := ""
	if cfg.TextBatch.MaxWait > 0 || perSlot || adapt {
		textEngine = "clip_text"
	}
	rcfg := refine.DefaultConfig()
	rcfg.MemoryLimit = max(cfg.MaxMemory, 0) // the refiner plans its tiles within it
	if cfg.Limits.MaxPixels > 0 {
		rcfg.MaxPixels = cfg.Limits.MaxPixels
	}
	nslots := len(p.streams)
	p.slotA, p.slotR = make([]*assess.Assessor, nslots), make([]*refine.Refiner, nslots)
	for sl := 0; sl < nslots; sl++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// A slot's engines, constants and caches are its device's: the first slot of each
		// device owns them, the device's other slots share them.
		g := p.groups[p.slotGroup[sl]]
		var share *assess.Assessor
		if sl > g.first {
			share = p.slotA[g.first]
		}
		so := slotOpener{set: g.engines, slot: sl - g.first, stream: p.streams[sl], adapt: g.adapt}
		if p.slotA[sl], err = assess.New(p.set, g.backend, assess.Options{Config: acfg, Parser: assess.SyntaxParser{P: p.parser},
			Threads: cfg.Threads, Tokenizer: p.tok, Opener: so, TextEngine: textEngine, Stream: p.streams[sl], Share: share}); err != nil {
			return nil, err
		}
		if sl == 0 {
			p.assess = p.slotA[0]
		}
		if cfg.AssessOnly {
			continue
		}
		if p.slotR[sl], err = refine.New(p.set, g.backend, refine.Options{Config: rcfg, Threads: cfg.Threads, Tokenizer: p.tok,
			Opener: so, Stream: p.streams[sl]}); err != nil {
			return nil, err
		}
		if sl == 0 {
			p.refine = p.slotR[0]
		}
	}
	engines := []string{"clip_surgery", p.assess.TextEngine()}
	if !cfg.AssessOnly {
		engines = append(engines, refine.EngineNames()...)
	}
	p.slots = newSlotQueue(p.slotGroup, len(p.groups), cfg.MaxQueue)
	p.reqs = newRegistry(nslots, cfg.MaxQueue)
	p.budget = newDecodeBudget(cfg.DecodeMemory)
	b := p.groups[0].backend
	p.info = Info{Version: Version, ModelSet: p.set.Manifest.Name, ModelDir: p.set.Dir, Tiny: p.set.Manifest.Tiny,
		Backend: b.Name(), BackendVersion: b.Version(), Device: cfg.Device, DeviceInfo: p.groups[0].device.Info(),
		GPUs: p.gpuInfo(), Slots: nslots,
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
	return c.checkGPUs()
}

// engineSet opens the engines of every slot: with per-slot sessions (trt plans) each
// slot opens its own, on its stream; else each engine is opened once and shared.
type engineSet struct {
	base    engine.Opener
	perSlot bool
	mu      sync.Mutex
	shared  map[string]engine.Engine
}

func (e *engineSet) open(b engine.Backend, name string, opts engine.OpenOptions) (engine.Engine, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.shared[name]; ok {
		return x, nil
	}
	opts.Stream = nil // shared by every slot: not bound to one slot's stream
	x, err := e.base.OpenEngine(b, name, opts)
	if err != nil {
		return nil, err
	}
	e.shared[name] = x
	return x, nil
}

func (e *engineSet) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for n, x := range e.shared {
		x.Close()
		delete(e.shared, n)
	}
}

// slotOpener opens engines for one execution slot: they read and write the tensors of
// the slot's stream's device and, where the backend keeps state per slot, enqueue on the
// slot's stream.
type slotOpener struct {
	set    *engineSet
	slot   int
	stream engine.Stream
	adapt  bool
}

func (o slotOpener) OpenEngine(b engine.Backend, name string, opts engine.OpenOptions) (engine.Engine, error) {
	opts.Slot, opts.Stream = o.slot, o.stream
	if o.set.perSlot {
		return o.set.base.OpenEngine(b, name, opts)
	}
	x, err := o.set.open(b, name, opts)
	if err != nil {
		return nil, err
	}
	if o.adapt {
		return engine.OnDevice(x, o.stream), nil // explicit, counted copies; its Close leaves x open
	}
	return borrowed{x}, nil
}

// borrowed is a shared engine as one slot sees it: its Close leaves it open (the
// pipeline closes shared engines once).
type borrowed struct{ engine.Engine }

func (borrowed) Close() error { return nil }

// assessor and refiner return the instances slot s runs on.
func (p *Pipeline) assessor(s int) *assess.Assessor { return p.slotA[s] }

func (p *Pipeline) refiner(s int) *refine.Refiner { return p.slotR[s] }

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
	for i := len(p.slotR) - 1; i >= 0; i-- { // each device's first slot last: the others share its cache
		errs = append(errs, p.slotR[i].Close(), p.slotA[i].Close())
	}
	for i := len(p.release) - 1; i >= 0; i-- {
		p.release[i]()
	}
	for _, g := range p.groups {
		if g.ownB && g.backend != nil {
			errs = append(errs, g.backend.Close())
		}
	}
	return errors.Join(errs...)
}
