package refine

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/grefine/grefine/modelset"
)

// Memory estimates: the networks' attention is what grows fastest with the working size.
// Every SD/SDXL VAE (and the tiny stand-ins) has a single-head self-attention over the
// latent grid in its mid block, so one encode or decode at n = (H/8)·(W/8) latent pixels
// holds an n×n float32 score matrix and its softmax: about 8·n² bytes. The real UNets
// attend at a quarter of the latent pixels and fewer (10 heads at most there, CFG batch 2:
// 2·10·(n/4)²·4·2 bytes); the tiny stand-ins attend at full latent resolution (2·n²·4·2).
// The estimate is the largest of those for a stage, as the engines run one at a time.

// StageMemory is the estimated peak working memory of each stage, in bytes.
type StageMemory struct {
	Stage1, Stage2 int64
	// W1, H1 and W2, H2 are the working sizes the estimates are for.
	W1, H1, W2, H2 int
}

// EstimateMemory estimates both stages' peak memory for a w×h input with the refiner's
// configuration; tiny says whether the model set's UNets are the full-resolution tiny
// stand-ins.
func (r *Refiner) EstimateMemory(w, h int, tiny bool) StageMemory {
	var m StageMemory
	if !r.cfg.SkipStage1 {
		m.W1, m.H1 = r.Stage1Size(w, h)
		m.Stage1 = attentionBytes(m.W1, m.H1, r.sdxl.VAEFactor, tiny)
	}
	if !r.cfg.SkipStage2 {
		m.W2, m.H2 = r.Stage2Size(w, h)
		m.Stage2 = attentionBytes(m.W2, m.H2, r.pasd.VAEFactor, tiny)
	}
	return m
}

// EstimateFor is EstimateMemory with cfg instead of the refiner's own configuration
// (cfg is not validated again: the caller validated the request's parameters).
func (r *Refiner) EstimateFor(cfg Config, w, h int, tiny bool) StageMemory {
	v := *r
	v.cfg, v.view = cfg, true
	return v.EstimateMemory(w, h, tiny)
}

// CheckMemoryFor is CheckMemory with cfg instead of the refiner's own configuration.
func (r *Refiner) CheckMemoryFor(cfg Config, w, h int, tiny bool, limit int64) error {
	v := *r
	v.cfg, v.view = cfg, true
	return v.CheckMemory(w, h, tiny, limit)
}

func attentionBytes(w, h, f int, tiny bool) int64 {
	n := float64(w/f) * float64(h/f)
	vae := 8 * n * n
	unet := 2 * 10 * (n / 4) * (n / 4) * 4 * 2
	if tiny {
		unet = 2 * n * n * 4 * 2
	}
	return int64(max(vae, unet))
}

// CheckMemory refuses a w×h input whose stages would need more than limit bytes
// (ErrInput), with a message that names the stage, the working size, the need, the
// limit and what to change. limit <= 0 disables the check.
func (r *Refiner) CheckMemory(w, h int, tiny bool, limit int64) error {
	if limit <= 0 {
		return nil
	}
	m := r.EstimateMemory(w, h, tiny)
	if m.Stage1 > limit {
		return fmt.Errorf("%w: stage 1 works at %dx%d (long side %d): its attention needs about %s, over the %s memory limit; lower the working long side (--long-side) or raise the limit (--max-memory)",
			ErrInput, m.W1, m.H1, r.cfg.LongSide, gib(m.Stage1), gib(limit))
	}
	if m.Stage2 > limit {
		return fmt.Errorf("%w: stage 2 works at %dx%d (the input's size%s): its VAE attention needs about %s, over the %s memory limit; refine a smaller image, skip stage 2 (--skip-stage2) or raise the limit (--max-memory)",
			ErrInput, m.W2, m.H2, minShort(r.cfg.ProcessSize), gib(m.Stage2), gib(limit))
	}
	return nil
}

func minShort(ps int) string {
	if ps <= 0 {
		return ""
	}
	return fmt.Sprintf(", short side raised to at least %d", ps)
}

func gib(b int64) string {
	return strconv.FormatFloat(float64(b)/(1<<30), 'f', 1, 64) + " GiB"
}

// DefaultMemoryLimit is 80 % of the memory this process may use: the cgroup limit when
// there is one, else MemTotal; 0 when neither can be read (no check).
func DefaultMemoryLimit() int64 {
	var lim int64
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			lim = v
		}
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 2 && fs[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(fs[1], 10, 64); err == nil && (lim == 0 || kb*1024 < lim) {
					lim = kb * 1024
				}
			}
		}
	}
	return lim / 10 * 8
}

// NewPlan reads only the configuration of set (no engine, no file beyond the manifest)
// into a Refiner that can answer geometry and memory questions (Stage1Size,
// Stage2Size, EstimateMemory, CheckMemory) before anything is loaded. It cannot refine.
func NewPlan(set *modelset.Set, cfg Config) (*Refiner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Refiner{cfg: cfg, view: true}
	if err := set.Config("sdxl", &r.sdxl); err != nil {
		return nil, err
	}
	if err := set.Config("pasd", &r.pasd); err != nil {
		return nil, err
	}
	if r.sdxl.VAEFactor < 1 || r.pasd.VAEFactor < 1 {
		return nil, fmt.Errorf("%w: model set sdxl/pasd vae_factor missing", ErrConfig)
	}
	return r, nil
}
