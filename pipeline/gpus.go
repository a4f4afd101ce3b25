package pipeline

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/grefine/grefine/engine"
)

// MaxGPUs bounds Config.GPUs.
const MaxGPUs = 16

// GPU is one GPU the pipeline serves (Info.GPUs): its CUDA device index, the device, and
// its slots, numbered [FirstSlot, FirstSlot+Slots) among the pipeline's.
type GPU struct {
	Index     int               `json:"index"`
	Device    engine.DeviceInfo `json:"device"`
	Slots     int               `json:"slots"`
	FirstSlot int               `json:"first_slot"`
}

// GPULoad is what one GPU is doing (Pipeline.GPULoad): its slots, those running a
// request now, and the requests that have run on it (counted when they got a slot).
type GPULoad struct {
	Index    int   `json:"index"`
	Slots    int   `json:"slots"`
	Busy     int   `json:"busy"`
	Requests int64 `json:"requests"`
}

// ParseGPUs reads a GPU list as the front ends take it: CUDA device indices,
// comma-separated ("0,1"; spaces allowed). "" is nil (no list). Config.GPUs checks the
// rest (repeats, the devices present).
func ParseGPUs(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	fields := strings.Split(s, ",")
	if len(fields) > MaxGPUs {
		return nil, inputf("gpus %q: at most %d GPUs", s, MaxGPUs)
	}
	out := make([]int, 0, len(fields))
	for _, f := range fields {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, inputf("gpus %q: want CUDA device indices, comma-separated (0,1)", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// group is the part of the pipeline on one device: the device, the backend that runs
// its engines (a GPU's own: TensorRT runtimes and ONNX Runtime CUDA sessions belong to
// one GPU), its engines, and its slots [first, first+n), each with a stream of the device.
type group struct {
	gpu     int // CUDA device index; -1 on the cpu device
	device  engine.Device
	backend engine.Backend
	ownB    bool
	adapt   bool // the engines read host tensors: each is wrapped by engine.OnDevice
	engines *engineSet
	text    *batchEngine
	first   int
	n       int
}

// checkGPUs checks Config.GPUs (cheap, before anything is opened).
func (c *Config) checkGPUs() error {
	if len(c.GPUs) == 0 {
		return nil
	}
	switch {
	case len(c.GPUs) > MaxGPUs:
		return inputf("gpus: %d GPUs, at most %d", len(c.GPUs), MaxGPUs)
	case c.Device == "cpu":
		return inputf("gpus %v: the cpu device has no GPUs (use device cuda or cuda-emu)", c.GPUs)
	case c.BackendInstance != nil && len(c.GPUs) > 1:
		return inputf("gpus %v: one backend instance cannot serve several GPUs (name the backend, Config.Backend, and each GPU gets its own)", c.GPUs)
	case c.DeviceOptions["ordinal"] != "":
		return inputf("gpus %v and the device option ordinal=%s both choose GPUs: use gpus", c.GPUs, c.DeviceOptions["ordinal"])
	case c.Slots*len(c.GPUs) > MaxSlots:
		return inputf("slots: %d per GPU on %d GPUs is %d slots, at most %d", c.Slots, len(c.GPUs), c.Slots*len(c.GPUs), MaxSlots)
	}
	seen := map[int]bool{}
	for _, g := range c.GPUs {
		if g < 0 {
			return inputf("gpus %v: %d is not a CUDA device index", c.GPUs, g)
		}
		if seen[g] {
			return inputf("gpus %v: GPU %d is named twice", c.GPUs, g)
		}
		seen[g] = true
	}
	return nil
}

// openDevices opens the device of every group and a stream per slot (cheap: no model
// work yet, so a GPU index that is not there is refused first). Without Config.GPUs there
// is one group on Config.Device with DeviceOptions; with them one per GPU, each on its own
// device (option "ordinal").
func (p *Pipeline) openDevices() error {
	known := engine.Devices()
	if !slices.Contains(known, p.cfg.Device) {
		return inputf("device %q: want one of %v", p.cfg.Device, known)
	}
	gpus := p.cfg.GPUs
	if len(gpus) == 0 {
		gpus = []int{-1}
	}
	for i, gpu := range gpus {
		opts, what := p.cfg.DeviceOptions, "device "+p.cfg.Device
		if gpu >= 0 {
			opts = maps.Clone(opts)
			if opts == nil {
				opts = map[string]string{}
			}
			opts["ordinal"] = strconv.Itoa(gpu)
			what = fmt.Sprintf("%s, GPU %d", what, gpu)
		}
		d, err := engine.NewDevice(p.cfg.Device, opts)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		p.release = append(p.release, func() { d.Close() })
		if err := d.Available(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		g := &group{gpu: gpu, device: d, first: i * p.cfg.Slots, n: p.cfg.Slots}
		if d.Name() == "cpu" {
			if gpu >= 0 {
				return inputf("gpus: device %s is not a GPU", p.cfg.Device)
			}
		} else {
			g.gpu = d.Info().Ordinal
		}
		for j := 0; j < g.n; j++ {
			s, err := d.NewStream()
			if err != nil {
				return fmt.Errorf("%s: slot %d: %w", what, g.first+j, err)
			}
			p.streams = append(p.streams, s)
			p.slotGroup = append(p.slotGroup, i)
			p.release = append(p.release, func() { s.Close() })
		}
		p.groups = append(p.groups, g)
	}
	return nil
}

// openBackends gives every group its backend (Config.BackendInstance, else one built per
// group, on the group's GPU) and checks that the backend's engines can read the device's
// tensors: the same device, or host tensors behind engine.OnDevice.
func (p *Pipeline) openBackends() error {
	for _, g := range p.groups {
		if g.backend = p.cfg.BackendInstance; g.backend == nil {
			opts, err := p.cfg.backendOptions(g.gpu)
			if err != nil {
				return err
			}
			if g.backend, err = engine.NewBackend(p.cfg.Backend, opts); err != nil {
				return err
			}
			g.ownB = true
		}
		if err := g.backend.Available(); err != nil {
			return err
		}
		switch bd, dn := g.backend.DeviceName(), g.device.Name(); {
		case bd == dn:
		case bd == "cpu":
			g.adapt = true
		default:
			return fmt.Errorf("%w: backend %s reads %s tensors, device %s holds %s tensors (use --device %s)",
				ErrUnavailable, g.backend.Name(), bd, p.cfg.Device, dn, bd)
		}
	}
	return nil
}

// backendOptions are the options of the backend built for GPU gpu (-1: no GPU): the
// configured ones, ONNX Runtime's CUDA execution provider on a cuda device, CUDA graphs
// for TensorRT, and the GPU's index (trt: device, ort on cuda: device_id). An index the
// options already name must be the GPU's.
func (c *Config) backendOptions(gpu int) (map[string]string, error) {
	opts := maps.Clone(c.BackendOptions)
	if opts == nil {
		opts = map[string]string{}
	}
	if c.Backend == "ort" && c.Device == "cuda" && opts["device"] == "" {
		opts["device"] = "cuda" // ONNX Runtime's CUDA execution provider (make setup-gpu)
	}
	if c.Backend == "trt" && opts["cuda_graphs"] == "" {
		opts["cuda_graphs"] = "true" // the denoising step captured once per shape, then replayed
	}
	key := ""
	switch {
	case gpu < 0:
	case c.Backend == "trt":
		key = "device"
	case c.Backend == "ort" && opts["device"] == "cuda":
		key = "device_id"
	}
	if key != "" {
		if v, ok := opts[key]; ok && v != strconv.Itoa(gpu) {
			return nil, inputf("backend option %s=%s names another GPU than the device's, %d (choose GPUs with Config.GPUs, --gpus)", key, v, gpu)
		}
		opts[key] = strconv.Itoa(gpu)
	}
	return opts, nil
}

// gpuOf is the CUDA device index slot s runs on (nil on the cpu device).
func (p *Pipeline) gpuOf(s int) *int {
	g := p.groups[p.slotGroup[s]]
	if g.gpu < 0 {
		return nil
	}
	i := g.gpu
	return &i
}

// gpuInfo describes the groups on GPUs (nil on the cpu device).
func (p *Pipeline) gpuInfo() []GPU {
	var out []GPU
	for _, g := range p.groups {
		if g.gpu >= 0 {
			out = append(out, GPU{Index: g.gpu, Device: g.device.Info(), Slots: g.n, FirstSlot: g.first})
		}
	}
	return out
}

// GPULoad reports each GPU's slots, busy slots and requests run so far (nil on the cpu
// device), in Info.GPUs order.
func (p *Pipeline) GPULoad() []GPULoad {
	if p.groups[0].gpu < 0 {
		return nil
	}
	busy, runs := p.slots.load()
	out := make([]GPULoad, len(p.groups))
	for i, g := range p.groups {
		out[i] = GPULoad{Index: g.gpu, Slots: g.n, Busy: busy[i], Requests: runs[i]}
	}
	return out
}
