package refine

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/grefine/grefine/modelset"
)

// Memory estimates: the networks' attention is what grows fastest with the size of a call.
// Every SD/SDXL VAE (and the tiny stand-ins) has a single-head self-attention over the
// latent grid in its mid block, so one encode or decode at n latent pixels holds an n×n
// float32 score matrix and its softmax: about 8·n² bytes. The real UNets attend at a
// quarter of the latent pixels and fewer (10 heads at most there, CFG batch 2:
// 2·10·(n/4)²·4·2 bytes per tile of the batch); the tiny stand-ins attend at full latent
// resolution (2·n²·4·2). A stage's need is what lives at its working size (the images,
// the colour fix, the latents: StageBytesPerPixel) plus the largest network call: with
// tiles, n is a tile's, so the need is bounded by the tile size, not by the image.

// InputBytesPerPixel is the estimate of the buffers at the input's size per input pixel:
// the assessment's float32 maps and masks (P, A, the repair, perceptual and alignment
// masks, a transient map), the RGB image and its copies (the stage results resized back,
// the refined image).
const InputBytesPerPixel = 80

// StageBytesPerPixel is the estimate of a stage's buffers per working pixel besides the
// networks': the planar image and its resize, the decoded image, the colour fix and its
// scratch, the uint8 result, the latent-sized tensors.
const StageBytesPerPixel = 64

// Plan is how the refiner runs a w×h input: each stage's working size, tiling and memory
// (PlanFor). The crop of stage 1 is decided at run time, from the mask; it does not change
// the working size, so the memory is the same.
type Plan struct {
	Stage1, Stage2 StagePlan
}

// StagePlan is one stage of a Plan.
type StagePlan struct {
	Runs          bool `json:"-"`
	Width, Height int  `json:"-"`
	// VAE is set when the VAE runs in tiles, Denoise when the denoising does.
	VAE     *VAETiling     `json:"vae,omitempty"`
	Denoise *DenoiseTiling `json:"denoise,omitempty"`
	Memory  MemoryEstimate `json:"memory"`
}

// VAETiling is a stage's tiled VAE (diffusers' tiled_encode and tiled_decode).
type VAETiling struct {
	Tile        int     `json:"tile"`
	Overlap     float64 `json:"overlap"`
	EncodeTiles int     `json:"encode_tiles"`
	DecodeTiles int     `json:"decode_tiles"`
	Reason      string  `json:"reason"`
}

// DenoiseTiling is a stage's tiled denoising.
type DenoiseTiling struct {
	Tile         int    `json:"tile"`
	Overlap      int    `json:"overlap"`
	Weights      string `json:"weights"`
	Tiles        int    `json:"tiles"`
	Batch        int    `json:"unet_batch"`
	CallsPerStep int    `json:"unet_calls_per_step"`
	Reason       string `json:"reason"`
}

// MemoryEstimate is a stage's estimated working memory in bytes: untiled, as planned, and
// the limit it was planned within (0: none).
type MemoryEstimate struct {
	Untiled int64 `json:"untiled_bytes"`
	Chosen  int64 `json:"chosen_bytes"`
	Limit   int64 `json:"limit_bytes,omitempty"`
}

// vaeBytes is one VAE call's attention over n latent pixels; unetBytes one UNet call of
// batch tiles of n latent pixels each.
func vaeBytes(n float64) float64 { return 8 * n * n }

func unetBytes(n float64, batch int, tiny bool) float64 {
	if tiny {
		return float64(batch) * 2 * n * n * 4 * 2
	}
	return float64(batch) * 2 * 10 * (n / 4) * (n / 4) * 4 * 2
}

// PlanFor plans both stages for a w×h input with the refiner's configuration: tiling
// where a stage needs it, the UNet batch of tiles within Config.MemoryLimit, and the
// memory. It refuses (ErrInput, naming what to change) a stage whose plan does not fit the
// limit. tiny says whether the set's UNets are the full-resolution tiny stand-ins.
func (r *Refiner) PlanFor(w, h int, tiny bool) (Plan, error) {
	var p Plan
	var err error
	budget := int64(0) // a stage's share of the limit: what the input's buffers leave
	if r.cfg.MemoryLimit > 0 {
		budget = max(r.cfg.MemoryLimit-int64(w)*int64(h)*InputBytesPerPixel, 1)
	}
	if !r.cfg.SkipStage1 {
		W, H := r.Stage1Size(w, h)
		if p.Stage1, err = r.planStage(1, W, H, r.sdxl.VAEFactor, tiny, budget); err != nil {
			return p, err
		}
	}
	if !r.cfg.SkipStage2 {
		W, H := r.Stage2Size(w, h)
		if p.Stage2, err = r.planStage(2, W, H, r.pasd.VAEFactor, tiny, budget); err != nil {
			return p, err
		}
	}
	return p, nil
}

// planStage plans one stage at its working size W×H (VAE factor f).
func (r *Refiner) planStage(stage, W, H, f int, tiny bool, budget int64) (StagePlan, error) {
	c := r.cfg
	sp := StagePlan{Runs: true, Width: W, Height: H}
	h, w := H/f, W/f
	n := float64(h) * float64(w)
	resident := float64(W) * float64(H) * StageBytesPerPixel
	sp.Memory = MemoryEstimate{Untiled: int64(resident + max(vaeBytes(n), unetBytes(n, 1, tiny))), Limit: budget}
	vaeNet := vaeBytes(n)
	if v := c.vae(f); max(W, H) > v.Tile {
		enc, err := v.EncodePlan(H, W)
		if err != nil {
			return sp, fmt.Errorf("%w: stage %d: %v", ErrInput, stage, err)
		}
		dec, err := v.DecodePlan(h, w)
		if err != nil {
			return sp, fmt.Errorf("%w: stage %d: %v", ErrInput, stage, err)
		}
		tl := float64(min(v.TileLatent(), h)) * float64(min(v.TileLatent(), w))
		vaeNet = vaeBytes(tl)
		sp.VAE = &VAETiling{Tile: v.Tile, Overlap: v.Overlap, EncodeTiles: enc.Count(), DecodeTiles: dec.Count(),
			Reason: fmt.Sprintf("working size %dx%d has a side above the VAE tile %d", W, H, v.Tile)}
	}
	unetNet := unetBytes(n, 1, tiny)
	g := c.grid()
	if h*w > g.Tile*g.Tile {
		wins := g.Windows(h, w)
		tn := float64(wins[0].H) * float64(wins[0].W)
		batch := c.TileBatch
		if batch == 0 { // as memory allows
			batch = min(len(wins), DefaultTileBatch)
			for batch > 1 && budget > 0 && resident+max(vaeNet, unetBytes(tn, batch, tiny)) > float64(budget) {
				batch--
			}
		}
		batch = min(batch, len(wins))
		unetNet = unetBytes(tn, batch, tiny)
		sp.Denoise = &DenoiseTiling{Tile: g.Tile, Overlap: g.Overlap, Weights: c.TileWeights.String(), Tiles: len(wins),
			Batch: batch, CallsPerStep: (len(wins) + batch - 1) / batch,
			Reason: fmt.Sprintf("latent %dx%d is larger than the tile %dx%d", w, h, g.Tile, g.Tile)}
	}
	sp.Memory.Chosen = int64(resident + max(vaeNet, unetNet))
	if budget > 0 && sp.Memory.Chosen > budget {
		what := "lower the tile (tile, vae_tile)"
		if resident >= float64(budget) {
			what = "the working size alone is too large: refine a smaller image"
			if stage == 1 {
				what = "the working size alone is too large: lower long_side"
			}
		}
		return sp, fmt.Errorf("%w: stage %d works at %dx%d: it needs about %s (%s at its working size, %s for its largest network call), over the %s the memory limit leaves it; %s, skip stage %d (skip_stage%d) or raise the limit (--max-memory)",
			ErrInput, stage, W, H, gib(sp.Memory.Chosen), gib(int64(resident)), gib(int64(max(vaeNet, unetNet))), gib(budget), what, stage, stage)
	}
	return sp, nil
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

// checkVAE validates cfg's VAE tiling with the set's VAE factors.
func (r *Refiner) checkVAE(cfg Config) error {
	for _, f := range []int{r.sdxl.VAEFactor, r.pasd.VAEFactor} {
		if err := cfg.vae(f).Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	return nil
}

// NewPlan reads only the configuration of set (no engine, no file beyond the manifest)
// into a Refiner that can answer geometry and memory questions (Stage1Size,
// Stage2Size, PlanFor) before anything is loaded. It cannot refine.
func NewPlan(set *modelset.Set, cfg Config) (*Refiner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Refiner{cfg: cfg, view: true, tiny: set.Manifest.Tiny}
	if err := set.Config("sdxl", &r.sdxl); err != nil {
		return nil, err
	}
	if err := set.Config("pasd", &r.pasd); err != nil {
		return nil, err
	}
	if r.sdxl.VAEFactor < 1 || r.pasd.VAEFactor < 1 {
		return nil, fmt.Errorf("%w: model set sdxl/pasd vae_factor missing", ErrConfig)
	}
	if err := r.checkVAE(cfg); err != nil {
		return nil, err
	}
	return r, nil
}
