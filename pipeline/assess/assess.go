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
	AQ              aq.Config
	MaxPromptBytes  int // longer prompts are refused (ErrPrompt)
	FeatureCache    int // LRU entries of text features
}

// DefaultConfig returns DESIGN's constants.
func DefaultConfig() Config {
	return Config{
		Alpha: engine.DefaultAlpha, PerceptualBound: engine.DefaultPerceptualBound,
		PerceptualGate: engine.DefaultPerceptualGate, AlignBound: engine.DefaultAlignBound,
		DilateRadius: 0, AQ: aq.DefaultConfig(),
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
	tpls     []string
	fuse     Fuser
	release  func()
	view     bool // a With copy: shares the engines, Close does nothing
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
	// Tokenizer, if set, is used instead of loading the model set's vocabulary again.
	Tokenizer *tokenizer.Tokenizer
	// Opener opens the engines (nil: the model set itself, from its ONNX files).
	Opener Opener
	// TextEngine forces "clip_text" or "clip_text_kv" ("": clip_text_kv when the set has
	// it, else clip_text).
	TextEngine string
}

// Opener opens a model set's engine by name; *modelset.Set implements it, and a plan
// repository (TensorRT) can stand in for it.
type Opener interface {
	OpenEngine(b engine.Backend, name string, opts engine.OpenOptions) (engine.Engine, error)
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
	var opener Opener = set
	if opts.Opener != nil {
		opener = opts.Opener
	}
	if a.image, err = opener.OpenEngine(b, "clip_surgery", engine.OpenOptions{Threads: opts.Threads}); err != nil {
		return nil, err
	}
	if a.text, err = opener.OpenEngine(b, a.textEngine(set, opts), engine.OpenOptions{Threads: opts.Threads}); err != nil {
		return nil, err
	}
	if a.tok = opts.Tokenizer; a.tok == nil {
		vocab, err := set.FilePath("bpe_vocab")
		if err != nil {
			return nil, err
		}
		if a.tok, err = tokenizer.Load(vocab); err != nil {
			return nil, err
		}
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
	a.tpls = aq.ParseTemplates(string(tplBytes))
	if a.encoder, err = aq.NewTextEncoder(a.tok, a.text, a.tpls, empty.F32, opts.Config.FeatureCache); err != nil {
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

// With returns a view of a that uses cfg for its calls (per-request thresholds). The view
// shares a's engines, tokenizer, parser and feature cache; its Close does nothing, and it
// must not be used after a is closed.
func (a *Assessor) With(cfg Config) *Assessor {
	v := *a
	v.cfg, v.view, v.release = cfg, true, nil
	return &v
}

// Config returns the thresholds the assessor's calls use.
func (a *Assessor) Config() Config { return a.cfg }

// Close releases the engines; idempotent. On a view (With) it does nothing.
func (a *Assessor) Close() error {
	if a == nil || a.view {
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
	PMap []float32 `json:"-"`
	AMap []float32 `json:"-"` // nil when alignment was skipped
	// Mask is the repair mask (1 = repair): the union of PerceptualMask and AlignMask.
	Mask []float32 `json:"-"`
	// PerceptualMask is Dilate((P < PerceptualBound) AND (L↑ < PerceptualGate)).
	PerceptualMask []float32 `json:"-"`
	// AlignMask is Dilate(A > AlignBound); nil when alignment was skipped.
	AlignMask []float32 `json:"-"`
}

// CheckPrompt refuses a prompt that is not UTF-8 or over MaxPromptBytes (ErrPrompt).
func (a *Assessor) CheckPrompt(prompt string) error {
	if !utf8.ValidString(prompt) {
		return fmt.Errorf("%w: prompt is not valid UTF-8", ErrPrompt)
	}
	if a.cfg.MaxPromptBytes > 0 && len(prompt) > a.cfg.MaxPromptBytes {
		return fmt.Errorf("%w: prompt of %d bytes exceeds the limit of %d", ErrPrompt, len(prompt), a.cfg.MaxPromptBytes)
	}
	return nil
}

// Parsed is a prompt already parsed: its plain text (weight syntax removed) and parts.
type Parsed struct {
	Plain string
	Parts []aq.Part
}

// Assess computes the report for img and prompt, parsing the prompt with the
// assessor's parser.
func (a *Assessor) Assess(ctx context.Context, img *imageio.RGB8, prompt string) (*Report, error) {
	return a.AssessParsed(ctx, img, prompt, nil)
}

// AssessParsed is Assess with the prompt already parsed (nil: parse it here), so a caller
// that needs the parse itself (prompt emphasis) parses once.
func (a *Assessor) AssessParsed(ctx context.Context, img *imageio.RGB8, prompt string, parsed *Parsed) (*Report, error) {
	if img == nil || img.W < 1 || img.H < 1 || len(img.Pix) != 3*img.W*img.H {
		return nil, fmt.Errorf("%w: empty or malformed image", ErrImage)
	}
	if err := a.CheckPrompt(prompt); err != nil {
		return nil, err
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
	defer engine.CloseAll(out)
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
		if parsed == nil {
			plain, parts, err := a.parser.Parts(prompt)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrPrompt, err)
			}
			parsed = &Parsed{Plain: plain, Parts: parts}
		}
		plain, parts := parsed.Plain, parsed.Parts
		if strings.TrimSpace(plain) == "" {
			plain = prompt
		}
		lap("parse", t0)
		texts := aq.Texts(plain, parts)
		rep.Notes = append(rep.Notes, a.truncationNotes(texts)...)
		t0 = time.Now()
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
	// The refiner resamples the mask to its own working resolution, so the fusion's
	// latent-resolution mask is not needed: ask for the smallest one (1×1).
	fp := engine.FuseParams{GridH: grid, GridW: grid, Height: img.H, Width: img.W,
		LatentH: 1, LatentW: 1, Radius: a.cfg.DilateRadius,
		Alpha: a.cfg.Alpha, PerceptualBound: a.cfg.PerceptualBound, PerceptualGate: a.cfg.PerceptualGate, AlignBound: a.cfg.AlignBound}
	HW := img.H * img.W
	// The fusion runs without the alignment map, so its mask is the perceptual one; the
	// alignment mask is thresholded and dilated on its own and the repair mask is their
	// union. A max filter distributes over OR, so the union equals the fused mask of
	// DESIGN §1.4 exactly (tested), and the two masks come for free.
	fo := cpu.FuseMapsOut{Score: make([]float32, 1), PMap: make([]float32, HW), MaskImg: make([]float32, HW), MaskLat: make([]float32, 1)}
	if err := a.fuse(fp, 1, good, nil, fo); err != nil {
		return nil, err
	}
	rep.P, rep.PMap, rep.PerceptualMask, rep.Mask = fo.Score[0], fo.PMap, fo.MaskImg, fo.MaskImg
	if align != nil {
		raw := make([]float32, HW)
		for i, v := range align {
			if v > a.cfg.AlignBound {
				raw[i] = 1
			}
		}
		rep.AlignMask = make([]float32, HW)
		if err := cpu.Dilate(raw, 1, img.H, img.W, a.cfg.DilateRadius, rep.AlignMask); err != nil {
			return nil, err
		}
		rep.Mask = make([]float32, HW)
		for i := range rep.Mask {
			rep.Mask[i] = max(rep.PerceptualMask[i], rep.AlignMask[i])
		}
	}
	rep.MaskFraction = float32(cpu.MaskFraction(rep.Mask))
	if rep.A != nil {
		rep.Q = (rep.P + *rep.A) / 2
	} else {
		rep.Q = rep.P
	}
	lap("fuse", t0)
	lap("total", total)
	return rep, nil
}

// truncationNotes says what CLIP's 77-token context cuts from the texts as they are
// encoded: each text (the prompt, then each part) inside each of the templates. A text
// none of whose templated strings is cut gets no note.
func (a *Assessor) truncationNotes(texts []string) []string {
	var notes []string
	for i, t := range texts {
		cut, worst := 0, 0
		for _, tpl := range a.tpls {
			if _, info, err := a.tok.Encode(strings.Replace(tpl, "{}", t, 1)); err == nil && info.Truncated {
				cut++
				worst = max(worst, info.Dropped)
			}
		}
		if cut == 0 {
			continue
		}
		what := "the prompt"
		if i > 0 {
			what = fmt.Sprintf("the text %q", t)
		}
		notes = append(notes, fmt.Sprintf("%s is cut to CLIP's 77 tokens in %d of %d templated texts, losing up to %d tokens", what, cut, len(a.tpls), worst))
	}
	return notes
}

// textEngine is Options.TextEngine if set, else the prefix-cached clip_text_kv when the
// set has it, else clip_text.
func (a *Assessor) textEngine(set *modelset.Set, opts Options) string {
	if opts.TextEngine != "" {
		return opts.TextEngine
	}
	if set.HasEngine(aq.KVEngine) {
		return aq.KVEngine
	}
	return "clip_text"
}

// TextEngine is the name of the text engine the assessor opened.
func (a *Assessor) TextEngine() string { return a.text.Name() }

func hasNoun(parts []aq.Part) bool {
	for _, p := range parts {
		if p.Noun != "" {
			return true
		}
	}
	return false
}
