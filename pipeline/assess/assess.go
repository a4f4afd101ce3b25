package assess

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cpu"
	"github.com/grefine/grefine/engine/modelset"
	"github.com/grefine/grefine/pipeline/aq"
	"github.com/grefine/grefine/pipeline/imageio"
	"github.com/grefine/grefine/pipeline/pq"
	"github.com/grefine/grefine/pipeline/tokenizer"
)

// Errors wrapped by Assess.
var (
	ErrPrompt = errors.New("assess: bad prompt")
	ErrImage  = errors.New("assess: bad image")
)

// Config holds every tunable of the indicators (DESIGN §1.2-1.4).
type Config struct {
	Alpha           [3]float32 // cask thresholds (technical, rationality, naturalness)
	PerceptualBound float32    // 100/255
	PerceptualGate  float32    // τ_p = 0.5
	AlignBound      float32    // 170/255
	DilateRadius    int        // mask dilation radius in image pixels
	LatentFactor    int        // image/latent size ratio of mask_lat (8)
	AQ              aq.Config
	MaxPromptBytes  int // longer prompts are refused (ErrPrompt)
	FeatureCache    int // LRU entries of text features
}

// DefaultConfig returns DESIGN's constants.
func DefaultConfig() Config {
	return Config{
		Alpha: engine.DefaultAlpha, PerceptualBound: engine.DefaultPerceptualBound,
		PerceptualGate: engine.DefaultPerceptualGate, AlignBound: engine.DefaultAlignBound,
		DilateRadius: 0, LatentFactor: 8, AQ: aq.DefaultConfig(),
		MaxPromptBytes: 16 << 10, FeatureCache: 4096,
	}
}

// Parser turns a prompt into its plain text (weight syntax such as "(red hat:1.2)"
// removed: what CLIP scores as the whole prompt) and its parts (the syntax package
// implements it).
type Parser interface {
	Parts(prompt string) (plain string, parts []aq.Part, err error)
}

// Fuser runs the quality-map fusion on host slices (engine/cpu.FuseMaps is the
// reference; a GPU device can implement it with its kernel).
type Fuser func(p engine.FuseParams, batch int, good, align []float32, out cpu.FuseMapsOut) error

// clipConfig is the model set's "clip" config section.
type clipConfig struct {
	ImageSize int        `json:"image_size"`
	PatchSize int        `json:"patch_size"`
	Grid      int        `json:"grid"`
	EmbedDim  int        `json:"embed_dim"`
	Mean      [3]float32 `json:"mean"`
	Std       [3]float32 `json:"std"`
}

// Assessor computes reports. Create with New; Close releases the engines.
type Assessor struct {
	cfg      Config
	clip     clipConfig
	image    engine.Engine
	text     engine.Engine
	tok      *tokenizer.Tokenizer
	parser   Parser
	encoder  *aq.TextEncoder
	pqText   []float32
	fuse     Fuser
	release  func()
	Backend  string
	ModelSet string
}

// Options for New.
type Options struct {
	Config Config
	Parser Parser
	Fuser  Fuser // nil: cpu.FuseMaps
	// Release, if set, is called once by Close (e.g. to free the device behind Fuser).
	Release func()
	Threads int
}

// New loads the CLIP engines and constants of set with backend b.
func New(set *modelset.Set, b engine.Backend, opts Options) (*Assessor, error) {
	if opts.Parser == nil {
		return nil, errors.New("assess: a prompt parser is required")
	}
	a := &Assessor{cfg: opts.Config, parser: opts.Parser, fuse: opts.Fuser, Backend: b.Name(), ModelSet: set.Manifest.Name}
	// Release belongs to the caller until New succeeds (the caller cleans up on error).
	if a.fuse == nil {
		a.fuse = cpu.FuseMaps
	}
	if err := set.Config("clip", &a.clip); err != nil {
		return nil, err
	}
	if a.clip.Grid < 1 || a.clip.ImageSize < 1 || a.clip.EmbedDim < 1 {
		return nil, fmt.Errorf("assess: model set clip config %+v is incomplete", a.clip)
	}
	var err error
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if a.image, err = set.OpenEngine(b, "clip_surgery", engine.OpenOptions{Threads: opts.Threads}); err != nil {
		return nil, err
	}
	if a.text, err = set.OpenEngine(b, textEngine(set), engine.OpenOptions{Threads: opts.Threads}); err != nil {
		return nil, err
	}
	vocab, err := set.FilePath("bpe_vocab")
	if err != nil {
		return nil, err
	}
	if a.tok, err = tokenizer.Load(vocab); err != nil {
		return nil, err
	}
	tplPath, err := set.FilePath("templates")
	if err != nil {
		return nil, err
	}
	tplBytes, err := os.ReadFile(tplPath)
	if err != nil {
		return nil, fmt.Errorf("assess: %w", err)
	}
	empty, err := set.Constant("aq_empty")
	if err != nil {
		return nil, err
	}
	if a.encoder, err = aq.NewTextEncoder(a.tok, a.text, aq.ParseTemplates(string(tplBytes)), empty.F32, opts.Config.FeatureCache); err != nil {
		return nil, err
	}
	pqT, err := set.Constant("pq_text")
	if err != nil {
		return nil, err
	}
	if pqT.Len() != 8*a.clip.EmbedDim {
		return nil, fmt.Errorf("assess: pq_text has %d values, want 4×2×%d", pqT.Len(), a.clip.EmbedDim)
	}
	a.pqText = pqT.F32
	a.release = opts.Release
	ok = true
	return a, nil
}

// Close releases the engines; idempotent.
func (a *Assessor) Close() error {
	if a == nil {
		return nil
	}
	var errs []error
	for _, e := range []*engine.Engine{&a.image, &a.text} {
		if *e != nil {
			errs = append(errs, (*e).Close())
			*e = nil
		}
	}
	if a.release != nil {
		a.release()
		a.release = nil
	}
	return errors.Join(errs...)
}

// Tokenizer returns the CLIP tokenizer of the model set.
func (a *Assessor) Tokenizer() *tokenizer.Tokenizer { return a.tok }

// CacheStats reports the text-feature cache counters.
func (a *Assessor) CacheStats() aq.CacheStats { return a.encoder.Stats() }

// Report is the outcome for one image.
type Report struct {
	Width         int                `json:"width"`
	Height        int                `json:"height"`
	P             float32            `json:"p"`
	A             *float32           `json:"a"` // nil when alignment was skipped
	Q             float32            `json:"q"`
	Perceptual    map[string]float32 `json:"perceptual"` // the four PQ dimensions at CLS
	PromptScore   *float32           `json:"prompt_score,omitempty"`
	Parts         []aq.PartResult    `json:"parts"`
	MaskFraction  float32            `json:"mask_fraction"`
	Notes         []string           `json:"notes,omitempty"`
	TimingsMillis map[string]float64 `json:"timings_ms"`

	// Maps at image resolution (row-major H×W), not serialised.
	PMap    []float32 `json:"-"`
	AMap    []float32 `json:"-"`
	Mask    []float32 `json:"-"`
	MaskLat []float32 `json:"-"`
	LatentH int       `json:"-"`
	LatentW int       `json:"-"`
}

// Assess computes the report for img and prompt.
func (a *Assessor) Assess(ctx context.Context, img *imageio.RGB8, prompt string) (*Report, error) {
	if img == nil || img.W < 1 || img.H < 1 || len(img.Pix) != 3*img.W*img.H {
		return nil, fmt.Errorf("%w: empty or malformed image", ErrImage)
	}
	if !utf8.ValidString(prompt) {
		return nil, fmt.Errorf("%w: prompt is not valid UTF-8", ErrPrompt)
	}
	if a.cfg.MaxPromptBytes > 0 && len(prompt) > a.cfg.MaxPromptBytes {
		return nil, fmt.Errorf("%w: prompt of %d bytes exceeds the limit of %d", ErrPrompt, len(prompt), a.cfg.MaxPromptBytes)
	}
	rep := &Report{Width: img.W, Height: img.H, TimingsMillis: map[string]float64{}, Parts: []aq.PartResult{}}
	lap := func(name string, t0 time.Time) {
		rep.TimingsMillis[name] += float64(time.Since(t0).Microseconds()) / 1000
	}
	t0 := time.Now()
	total := t0

	// Image side: CLIP-Surgery tokens.
	size, grid, D := a.clip.ImageSize, a.clip.Grid, a.clip.EmbedDim
	T := 1 + grid*grid
	x, err := engine.FromFloat32(engine.Shape{1, 3, int64(size), int64(size)}, imageio.CLIPInput(img, size, a.clip.Mean, a.clip.Std))
	if err != nil {
		return nil, err
	}
	lap("preprocess", t0)
	t0 = time.Now()
	out, err := a.image.Run(ctx, map[string]engine.Tensor{"pixel_values": x})
	if err != nil {
		return nil, err
	}
	tokT, ok := out["tokens"].(*engine.HostTensor)
	if !ok || tokT.Len() != T*D {
		return nil, fmt.Errorf("assess: clip_surgery returned %v, want [1,%d,%d]", out["tokens"], T, D)
	}
	tokens := tokT.F32
	lap("clip_image", t0)

	// Perceptual probabilities.
	t0 = time.Now()
	good, err := pq.GoodProbs(tokens, 1, T, D, a.pqText)
	if err != nil {
		return nil, err
	}
	dims := pq.DimensionScores(good, 0, T)
	rep.Perceptual = map[string]float32{}
	for i, n := range pq.Dimensions {
		rep.Perceptual[n] = dims[i]
	}
	lap("pq", t0)

	// Alignment.
	var align []float32
	if strings.TrimSpace(prompt) == "" {
		rep.Notes = append(rep.Notes, "empty prompt: alignment skipped, q = p")
	} else {
		t0 = time.Now()
		plain, parts, err := a.parser.Parts(prompt)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrPrompt, err)
		}
		if strings.TrimSpace(plain) == "" {
			plain = prompt
		}
		lap("parse", t0)
		if _, info, err := a.tok.Encode(plain); err == nil && info.Truncated {
			rep.Notes = append(rep.Notes, fmt.Sprintf("prompt has more than 75 CLIP tokens: %d dropped when scoring the whole prompt", info.Dropped))
		}
		t0 = time.Now()
		texts := aq.Texts(plain, parts)
		fs, err := a.encoder.Features(ctx, texts)
		if err != nil {
			return nil, err
		}
		feats := make(map[string][]float32, len(texts))
		for i, t := range texts {
			feats[t] = fs[i]
		}
		lap("clip_text", t0)
		t0 = time.Now()
		res, err := aq.Compute(a.cfg.AQ, aq.Geometry{GridH: grid, GridW: grid, Dim: D, H: img.H, W: img.W}, tokens, plain, parts, feats)
		if err != nil {
			return nil, err
		}
		rep.A, rep.PromptScore, rep.Parts = &res.Score, &res.PromptScore, res.Parts
		if !hasNoun(parts) {
			rep.Notes = append(rep.Notes, "no noun in the prompt: empty alignment map, a = s(prompt)")
		}
		align, rep.AMap = res.Map, res.Map
		lap("aq", t0)
	}

	// Fusion: P, masks, p.
	t0 = time.Now()
	fp := engine.FuseParams{GridH: grid, GridW: grid, Height: img.H, Width: img.W,
		LatentH: max(img.H/a.cfg.LatentFactor, 1), LatentW: max(img.W/a.cfg.LatentFactor, 1), Radius: a.cfg.DilateRadius,
		Alpha: a.cfg.Alpha, PerceptualBound: a.cfg.PerceptualBound, PerceptualGate: a.cfg.PerceptualGate, AlignBound: a.cfg.AlignBound}
	HW := img.H * img.W
	fo := cpu.FuseMapsOut{Score: make([]float32, 1), PMap: make([]float32, HW), MaskImg: make([]float32, HW), MaskLat: make([]float32, fp.LatentH*fp.LatentW)}
	if err := a.fuse(fp, 1, good, align, fo); err != nil {
		return nil, err
	}
	rep.P, rep.PMap, rep.Mask, rep.MaskLat, rep.LatentH, rep.LatentW = fo.Score[0], fo.PMap, fo.MaskImg, fo.MaskLat, fp.LatentH, fp.LatentW
	n := 0
	for _, v := range fo.MaskImg {
		if v > 0.5 {
			n++
		}
	}
	rep.MaskFraction = float32(n) / float32(HW)
	if rep.A != nil {
		rep.Q = (rep.P + *rep.A) / 2
	} else {
		rep.Q = rep.P
	}
	lap("fuse", t0)
	lap("total", total)
	return rep, nil
}

// textEngine is the prefix-cached clip_text_kv when the set has it, else clip_text.
func textEngine(set *modelset.Set) string {
	if set.HasEngine(aq.KVEngine) {
		return aq.KVEngine
	}
	return "clip_text"
}

func hasNoun(parts []aq.Part) bool {
	for _, p := range parts {
		if p.Noun != "" {
			return true
		}
	}
	return false
}
