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
	"github.com/grefine/grefine/modelset"
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

// clipConfig is the model set's "clip" config section.
type clipConfig struct {
	ImageSize int        `json:"image_size"`
	PatchSize int        `json:"patch_size"`
	Grid      int        `json:"grid"`
	EmbedDim  int        `json:"embed_dim"`
	Mean      [3]float32 `json:"mean"`
	Std       [3]float32 `json:"std"`
}

// Assessor computes reports on one device stream. Create with New; Close releases the
// engines. One Assessor runs one request at a time (its stream); the pipeline gives each
// slot its own, sharing one feature cache (Options.Share).
type Assessor struct {
	cfg      Config
	clip     clipConfig
	image    engine.Engine
	text     engine.Engine
	tok      *tokenizer.Tokenizer
	parser   Parser
	encoder  *aq.TextEncoder
	tpls     []string
	s        engine.Stream
	pqT      engine.Tensor // pq_text [4,2,D] on the device (shared)
	owner    bool          // owns encoder and pqT (not a sharer)
	ownS     bool          // owns s (made from the cpu device)
	view     bool          // a With copy: shares the engines, Close does nothing
	Backend  string
	ModelSet string
}

// Options for New.
type Options struct {
	Config  Config
	Parser  Parser
	Threads int
	// Tokenizer, if set, is used instead of loading the model set's vocabulary again.
	Tokenizer *tokenizer.Tokenizer
	// Opener opens the engines (nil: the model set itself, from its ONNX files). The
	// engines must read and write the tensors of Stream's device.
	Opener engine.Opener
	// TextEngine forces "clip_text" or "clip_text_kv" ("": clip_text_kv when the set has
	// it, else clip_text).
	TextEngine string
	// Stream is where the assessor's work runs (nil: a stream of the "cpu" device, which
	// the program must link, e.g. by importing engine/cpu).
	Stream engine.Stream
	// Share, if set, is an assessor on the same device (the same engine.Device: one GPU)
	// whose feature cache, template prefixes and constants this one uses instead of its
	// own; it must outlive this one.
	Share *Assessor
}

// defaultStream is a stream of the registered cpu device.
func defaultStream() (engine.Stream, error) {
	d, err := engine.NewDevice("cpu", nil)
	if err != nil {
		return nil, err
	}
	return d.NewStream()
}

// New loads the CLIP engines and constants of set with backend b.
func New(set *modelset.Set, b engine.Backend, opts Options) (*Assessor, error) {
	if opts.Parser == nil {
		return nil, errors.New("assess: a prompt parser is required")
	}
	a := &Assessor{cfg: opts.Config, parser: opts.Parser, s: opts.Stream, Backend: b.Name(), ModelSet: set.Manifest.Name}
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
	if a.s == nil {
		if a.s, err = defaultStream(); err != nil {
			return nil, err
		}
		a.ownS = true
	}
	var opener engine.Opener = set
	if opts.Opener != nil {
		opener = opts.Opener
	}
	eo := engine.OpenOptions{Threads: opts.Threads, Stream: a.s}
	if a.image, err = opener.OpenEngine(b, "clip_surgery", eo); err != nil {
		return nil, err
	}
	if a.text, err = opener.OpenEngine(b, a.textEngine(set, opts), eo); err != nil {
		return nil, err
	}
	if sh := opts.Share; sh != nil {
		if sh.s.Device() != a.s.Device() {
			return nil, fmt.Errorf("%w: assess: the shared assessor's constants are on device %s (%v), this one runs on %s (%v): each device needs its own",
				engine.ErrDevice, sh.s.Device().Name(), sh.s.Device().Info().Ordinal, a.s.Device().Name(), a.s.Device().Info().Ordinal)
		}
		if a.encoder, err = sh.encoder.With(a.text, a.s); err != nil {
			return nil, err
		}
		a.tok, a.tpls, a.pqT = sh.tok, sh.tpls, sh.pqT
		ok = true
		return a, nil
	}
	a.owner = true
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
	if a.encoder, err = aq.NewTextEncoder(a.tok, a.text, a.s, a.tpls, empty.F32, opts.Config.FeatureCache); err != nil {
		return nil, err
	}
	pqT, err := set.Constant("pq_text")
	if err != nil {
		return nil, err
	}
	if pqT.Len() != 8*a.clip.EmbedDim {
		return nil, fmt.Errorf("assess: pq_text has %d values, want 4×2×%d", pqT.Len(), a.clip.EmbedDim)
	}
	if a.pqT, err = a.s.Device().Alloc(engine.Float32, pqT.Shape()); err != nil {
		return nil, err
	}
	if err := a.s.Upload(a.pqT, pqT); err != nil {
		return nil, err
	}
	if err := a.s.Sync(); err != nil { // read by the other slots' streams
		return nil, err
	}
	ok = true
	return a, nil
}

// With returns a view of a that uses cfg for its calls (per-request thresholds). The view
// shares a's engines, tokenizer, parser and feature cache; its Close does nothing, and it
// must not be used after a is closed.
func (a *Assessor) With(cfg Config) *Assessor {
	v := *a
	v.cfg, v.view = cfg, true
	return &v
}

// Config returns the thresholds the assessor's calls use.
func (a *Assessor) Config() Config { return a.cfg }

// Close releases the engines (and, on the assessor that does not share another's, the
// feature cache's device tensors and the constants); idempotent. On a view (With) it does
// nothing.
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
	if a.owner {
		errs = append(errs, a.encoder.Close())
		if a.pqT != nil {
			errs = append(errs, a.pqT.Close())
		}
		a.owner = false
	}
	a.encoder, a.pqT = nil, nil
	if a.ownS && a.s != nil {
		errs = append(errs, a.s.Close())
		a.s = nil
	}
	return errors.Join(errs...)
}

// Stream is the stream the assessor runs on.
func (a *Assessor) Stream() engine.Stream { return a.s }

// Tokenizer returns the CLIP tokenizer of the model set.
func (a *Assessor) Tokenizer() *tokenizer.Tokenizer { return a.tok }

// CacheStats reports the text-feature cache counters.
func (a *Assessor) CacheStats() aq.CacheStats { return a.encoder.Stats() }

// Report is the outcome for one image.
type Report struct {
	Width        int                `json:"width"`
	Height       int                `json:"height"`
	P            float32            `json:"p"`
	A            *float32           `json:"a"` // nil when alignment was skipped
	Q            float32            `json:"q"`
	Perceptual   map[string]float32 `json:"perceptual"` // the four PQ dimensions at CLS
	PromptScore  *float32           `json:"prompt_score,omitempty"`
	Parts        []aq.PartResult    `json:"parts"`
	MaskFraction float32            `json:"mask_fraction"`
	// MaskPixels is the number of repair-mask pixels (>= 0.5): MaskFraction exactly is
	// MaskPixels/(Width·Height).
	MaskPixels int64 `json:"-"`
	// MaskBox is the bounding box [x1, y1, x2, y2) of the repair mask's pixels (all zeros
	// when the mask is empty): stage 1's crop starts from it.
	MaskBox       [4]int             `json:"-"`
	Notes         []string           `json:"notes,omitempty"`
	TimingsMillis map[string]float64 `json:"timings_ms"`

	// Maps at image resolution (row-major H×W) in host memory, not serialised; nil unless
	// the request asked for them (Request.Maps).
	PMap []float32 `json:"-"`
	AMap []float32 `json:"-"` // nil when alignment was skipped
	// Mask is the repair mask (1 = repair): the union of PerceptualMask and AlignMask.
	Mask []float32 `json:"-"`
	// PerceptualMask is Dilate((P < PerceptualBound) AND (L↑ < PerceptualGate)).
	PerceptualMask []float32 `json:"-"`
	// AlignMask is Dilate(A > AlignBound); nil when alignment was skipped.
	AlignMask []float32 `json:"-"`

	// Device holds the same maps on the assessor's device (Run only; the caller closes it).
	Device *Maps `json:"-"`
}

// Maps are a report's maps on the device, float32 [H,W] each (views of one block): the
// refiner reads the repair mask from here without a copy. Close frees them.
type Maps struct {
	PMap, AMap, Mask, PerceptualMask, AlignMask engine.Tensor // AMap, AlignMask nil without alignment
	block                                       engine.Tensor
	planes                                      int
	views                                       []engine.Tensor
}

// Close frees the maps; idempotent and nil-safe.
func (m *Maps) Close() error {
	if m == nil || m.block == nil {
		return nil
	}
	for _, v := range m.views {
		v.Close()
	}
	err := m.block.Close()
	*m = Maps{}
	return err
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

// Request is one image to assess.
type Request struct {
	// Image is the decoded image (borrowed for the call).
	Image *imageio.RGB8
	// Tensor, if set, is the same image on the assessor's device, uint8 [H,W,3] (the
	// pipeline uploads a request's image once); nil: Run uploads it.
	Tensor engine.Tensor
	Prompt string
	// Parsed is the prompt already parsed (nil: parsed here).
	Parsed *Parsed
	// Maps reads the maps back into the report's host slices (PMap, AMap, the masks);
	// without it only the scores come back and the maps stay on the device (Report.Device).
	Maps bool
}

// Assess computes the report for img and prompt, parsing the prompt with the
// assessor's parser; the maps come back in host memory.
func (a *Assessor) Assess(ctx context.Context, img *imageio.RGB8, prompt string) (*Report, error) {
	return a.AssessParsed(ctx, img, prompt, nil)
}

// AssessParsed is Assess with the prompt already parsed (nil: parse it here), so a caller
// that needs the parse itself (prompt emphasis) parses once.
func (a *Assessor) AssessParsed(ctx context.Context, img *imageio.RGB8, prompt string, parsed *Parsed) (*Report, error) {
	rep, err := a.Run(ctx, Request{Image: img, Prompt: prompt, Parsed: parsed, Maps: true})
	if err != nil {
		return nil, err
	}
	rep.Device.Close()
	rep.Device = nil
	return rep, nil
}

// Run computes the report of one request on the assessor's stream. The host reads back
// the CLS token with the perceptual scores (one copy), the texts' features when they are
// not cached (one copy), the mask's pixel count (one copy) and, with req.Maps, the maps
// (one copy); everything else stays on the device. The report's Device maps belong to
// the caller.
func (a *Assessor) Run(ctx context.Context, req Request) (rep *Report, err error) {
	img, prompt, parsed := req.Image, req.Prompt, req.Parsed
	if img == nil || img.W < 1 || img.H < 1 || len(img.Pix) != 3*img.W*img.H {
		return nil, fmt.Errorf("%w: empty or malformed image", ErrImage)
	}
	if err := a.CheckPrompt(prompt); err != nil {
		return nil, err
	}
	rep = &Report{Width: img.W, Height: img.H, TimingsMillis: map[string]float64{}, Parts: []aq.PartResult{}}
	lap := func(name string, t0 time.Time) {
		rep.TimingsMillis[name] += float64(time.Since(t0).Microseconds()) / 1000
	}
	t0 := time.Now()
	total := t0
	s, dev := a.s, a.s.Device()
	var tmp []engine.Tensor
	maps := &Maps{}
	defer func() {
		for _, t := range tmp {
			t.Close()
		}
		if err != nil {
			maps.Close()
		}
	}()
	alloc := func(dt engine.DType, shape engine.Shape) (engine.Tensor, error) {
		t, err := dev.Alloc(dt, shape)
		if err == nil {
			tmp = append(tmp, t)
		}
		return t, err
	}
	H, W := int64(img.H), int64(img.W)
	imgT := req.Tensor
	if imgT == nil {
		h, err := engine.FromUint8(engine.Shape{H, W, 3}, img.Pix)
		if err != nil {
			return nil, err
		}
		if imgT, err = alloc(engine.Uint8, h.Shape()); err != nil {
			return nil, err
		}
		if err := s.Upload(imgT, h); err != nil {
			return nil, err
		}
	}

	// Image side: CLIP-Surgery tokens.
	size, grid, D := int64(a.clip.ImageSize), a.clip.Grid, int64(a.clip.EmbedDim)
	T := int64(1 + grid*grid)
	small, err := alloc(engine.Uint8, engine.Shape{size, size, 3})
	if err != nil {
		return nil, err
	}
	x, err := alloc(engine.Float32, engine.Shape{1, 3, size, size})
	if err != nil {
		return nil, err
	}
	if err := s.ResizeImage(imgT, small, engine.Resample{}); err != nil {
		return nil, err
	}
	if err := s.ToPlanar(small, x, a.clip.Mean, a.clip.Std); err != nil {
		return nil, err
	}
	lap("preprocess", t0)
	t0 = time.Now()
	out, err := a.image.Run(ctx, map[string]engine.Tensor{"pixel_values": x})
	if err != nil {
		return nil, err
	}
	defer engine.CloseAll(out)
	tokens := out["tokens"]
	if tokens == nil || tokens.DType() != engine.Float32 || !tokens.Shape().Equal(engine.Shape{1, T, D}) {
		return nil, fmt.Errorf("assess: clip_surgery returned %v, want float32 [1,%d,%d]", tokens, T, D)
	}
	lap("clip_image", t0)

	// Perceptual probabilities and the fusion: P, the perceptual mask, p.
	t0 = time.Now()
	good, err := alloc(engine.Float32, engine.Shape{1, 4, T})
	if err != nil {
		return nil, err
	}
	if err := s.GoodProbs(tokens, a.pqT, good); err != nil {
		return nil, err
	}
	lap("pq", t0)
	aligned := strings.TrimSpace(prompt) != ""
	maps.planes = 2 // P, the perceptual mask (= the repair mask without alignment)
	if aligned {
		maps.planes = 5 // and the repair mask, A, the alignment mask
	}
	if maps.block, err = dev.Alloc(engine.Float32, engine.Shape{int64(maps.planes), H, W}); err != nil {
		return nil, err
	}
	plane := func(i int64, shape engine.Shape) (engine.Tensor, error) {
		v, err := dev.View(maps.block, i*H*W, shape)
		if err == nil {
			maps.views = append(maps.views, v)
		}
		return v, err
	}
	if maps.PMap, err = plane(0, engine.Shape{1, H, W}); err != nil {
		return nil, err
	}
	if maps.PerceptualMask, err = plane(1, engine.Shape{1, H, W}); err != nil {
		return nil, err
	}
	maps.Mask = maps.PerceptualMask
	score, err := alloc(engine.Float32, engine.Shape{1})
	if err != nil {
		return nil, err
	}
	lat, err := alloc(engine.Float32, engine.Shape{1, 1, 1})
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	// The refiner resamples the mask to its own working resolution, so the fusion's
	// latent-resolution mask is not needed: ask for the smallest one (1×1). The fusion
	// runs without the alignment map, so its mask is the perceptual one; the alignment
	// mask is thresholded and dilated on its own and the repair mask is their union. A
	// max filter distributes over OR, so the union equals the fused mask of DESIGN §1.4
	// exactly (tested), and the two masks come for free.
	fp := engine.FuseParams{GridH: grid, GridW: grid, Height: img.H, Width: img.W,
		LatentH: 1, LatentW: 1, Radius: a.cfg.DilateRadius,
		Alpha: a.cfg.Alpha, PerceptualBound: a.cfg.PerceptualBound, PerceptualGate: a.cfg.PerceptualGate, AlignBound: a.cfg.AlignBound}
	if err := s.FuseMaps(fp, good, nil, engine.FuseOutputs{Score: score, PMap: maps.PMap, MaskImg: maps.PerceptualMask, MaskLat: lat}); err != nil {
		return nil, err
	}
	lap("fuse", t0)

	// Alignment: the texts' features (cached in host memory, else computed on the device).
	var parts []aq.Part
	var plain string
	feats := map[string][]float32{}
	if !aligned {
		rep.Notes = append(rep.Notes, "empty prompt: alignment skipped, q = p")
	} else {
		t0 = time.Now()
		if parsed == nil {
			pl, ps, err := a.parser.Parts(prompt)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrPrompt, err)
			}
			parsed = &Parsed{Plain: pl, Parts: ps}
		}
		plain, parts = parsed.Plain, parsed.Parts
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
		for i, t := range texts {
			feats[t] = fs[i]
		}
		lap("clip_text", t0)
	}

	// One read-back: the CLS token, the four perceptual dimensions at CLS and p.
	t0 = time.Now()
	sc, err := alloc(engine.Float32, engine.Shape{D + 5})
	if err != nil {
		return nil, err
	}
	for _, c := range []struct {
		src engine.Tensor
		cp  engine.Copy2D
	}{{tokens, engine.Copy2D{Rows: 1, Cols: D}},
		{good, engine.Copy2D{Rows: 4, Cols: 1, DstOffset: D, DstPitch: 1, SrcPitch: T}},
		{score, engine.Copy2D{Rows: 1, Cols: 1, DstOffset: D + 4}}} {
		if err := s.Copy2D(sc, c.src, c.cp); err != nil {
			return nil, err
		}
	}
	scalars, err := engine.NewHostTensor(engine.Float32, sc.Shape())
	if err != nil {
		return nil, err
	}
	if err := s.Download(scalars, sc); err != nil {
		return nil, err
	}
	cls := scalars.F32[:D]
	rep.Perceptual = map[string]float32{}
	for i, n := range pq.Dimensions {
		rep.Perceptual[n] = scalars.F32[D+int64(i)]
	}
	rep.P = scalars.F32[D+4]
	lap("pq", t0)

	if aligned {
		t0 = time.Now()
		res, err := aq.Compute(a.cfg.AQ, cls, plain, parts, feats)
		if err != nil {
			return nil, err
		}
		rep.A, rep.PromptScore, rep.Parts = &res.Score, &res.PromptScore, res.Parts
		if !hasNoun(parts) {
			rep.Notes = append(rep.Notes, "no noun in the prompt: empty alignment map, a = s(prompt)")
		}
		if maps.Mask, err = plane(2, engine.Shape{H, W}); err != nil {
			return nil, err
		}
		if maps.AMap, err = plane(3, engine.Shape{H, W}); err != nil {
			return nil, err
		}
		if maps.AlignMask, err = plane(4, engine.Shape{H, W}); err != nil {
			return nil, err
		}
		if err := a.alignMaps(maps, tokens, aq.MapFeatures(parts, res.Maps, feats), H, W, alloc); err != nil {
			return nil, err
		}
		lap("aq", t0)
	}

	// The mask fraction and the mask's bounding box (for a cropped repair): one read back.
	t0 = time.Now()
	cnt, err := alloc(engine.Int64, engine.Shape{5})
	if err != nil {
		return nil, err
	}
	c0, err := s.Device().View(cnt, 0, engine.Shape{1})
	if err != nil {
		return nil, err
	}
	defer c0.Close()
	c1, err := s.Device().View(cnt, 1, engine.Shape{4})
	if err != nil {
		return nil, err
	}
	defer c1.Close()
	if err := s.CountAtLeast(maps.Mask, 0.5, c0); err != nil {
		return nil, err
	}
	if err := s.BoundingBox(maps.Mask, 0.5, c1); err != nil {
		return nil, err
	}
	n, err := engine.NewHostTensor(engine.Int64, engine.Shape{5})
	if err != nil {
		return nil, err
	}
	if err := s.Download(n, cnt); err != nil {
		return nil, err
	}
	rep.MaskPixels = n.I64[0]
	rep.MaskBox = [4]int{int(n.I64[1]), int(n.I64[2]), int(n.I64[3]), int(n.I64[4])}
	rep.MaskFraction = float32(float64(n.I64[0]) / float64(H*W))
	if rep.A != nil {
		rep.Q = (rep.P + *rep.A) / 2
	} else {
		rep.Q = rep.P
	}
	if req.Maps {
		if err := rep.readMaps(s, maps); err != nil {
			return nil, err
		}
	}
	lap("fuse", t0)
	lap("total", total)
	rep.Device = maps
	return rep, nil
}

// alignMaps makes A from the features of the merged parts' texts (K rows), the alignment
// mask Dilate(A > AlignBound) and the repair mask, its union with the perceptual mask.
func (a *Assessor) alignMaps(maps *Maps, tokens engine.Tensor, feats []float32, H, W int64,
	alloc func(engine.DType, engine.Shape) (engine.Tensor, error)) error {
	s, D := a.s, int64(a.clip.EmbedDim)
	if K := int64(len(feats)) / D; K == 0 {
		if err := s.Zero(maps.AMap); err != nil {
			return err
		}
	} else {
		h, err := engine.FromFloat32(engine.Shape{K, D}, feats)
		if err != nil {
			return err
		}
		ft, err := alloc(engine.Float32, h.Shape())
		if err != nil {
			return err
		}
		if err := s.Upload(ft, h); err != nil {
			return err
		}
		if err := s.TextMaps(tokens, ft, a.clip.Grid, a.clip.Grid, maps.AMap); err != nil {
			return err
		}
	}
	raw, err := alloc(engine.Float32, engine.Shape{H, W})
	if err != nil {
		return err
	}
	if err := s.Pointwise(engine.Pointwise{Op: engine.PointGreater, Src: maps.AMap, Dst: raw, A: a.cfg.AlignBound}); err != nil {
		return err
	}
	if err := s.Dilate(raw, maps.AlignMask, a.cfg.DilateRadius); err != nil {
		return err
	}
	return s.Pointwise(engine.Pointwise{Op: engine.PointMaximum, Src: maps.PerceptualMask, Src2: maps.AlignMask, Dst: maps.Mask})
}

// readMaps copies the maps block into host memory (one copy) and points the report's
// map slices at it.
func (rep *Report) readMaps(s engine.Stream, m *Maps) error {
	h, err := engine.NewHostTensor(engine.Float32, m.block.Shape())
	if err != nil {
		return err
	}
	if err := s.Download(h, m.block); err != nil {
		return err
	}
	n := rep.Width * rep.Height
	p := func(i int) []float32 { return h.F32[i*n : (i+1)*n : (i+1)*n] }
	rep.PMap, rep.PerceptualMask, rep.Mask = p(0), p(1), p(1)
	if m.planes == 5 {
		rep.Mask, rep.AMap, rep.AlignMask = p(2), p(3), p(4)
	}
	return nil
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
