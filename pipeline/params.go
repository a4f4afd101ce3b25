package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/grefine/grefine/internal/strictjson"
	"github.com/grefine/grefine/pipeline/assess"
	"github.com/grefine/grefine/pipeline/refine"
	"github.com/grefine/grefine/pipeline/tile"
)

// Params are the per-request settings. Start from Pipeline.DefaultParams (DESIGN's
// constants, with working sizes suited to the loaded model set) and change fields.
// ParamTable describes every field: its names in each front end, its range and where it
// goes; Validate checks a Params against that table.
type Params struct {
	// Seed makes a refinement reproducible: the same image, prompt, params and seed give
	// the same bytes.
	Seed uint64 `json:"seed"`
	// Steps1, Steps2: denoising steps that run in stage 1 and stage 2.
	Steps1 int `json:"steps1"`
	Steps2 int `json:"steps2"`
	// StrengthMax, StrengthMin bound stage 1's quality-driven strength
	// s1 = max − (max − min)·q (min <= max).
	StrengthMax float64 `json:"strength_max"`
	StrengthMin float64 `json:"strength_min"`
	// Strength1, if > 0, fixes stage 1's strength instead.
	Strength1 float64 `json:"strength1"`
	// Strength2 is stage 2's strength δ.
	Strength2 float64 `json:"strength2"`
	// Guidance1, Guidance2: classifier-free guidance scales.
	Guidance1 float64 `json:"guidance1"`
	Guidance2 float64 `json:"guidance2"`
	// Emphasis is the prompt weight of defective parts' tokens.
	Emphasis float64 `json:"emphasis"`
	// MaskedBlend resets the latents outside the mask after every stage-1 step;
	// PastePixels takes the pixels outside the mask from the input after stage 1.
	MaskedBlend bool `json:"masked_blend"`
	PastePixels bool `json:"paste_pixels"`
	// SkipStage1, SkipStage2 turn a stage off.
	SkipStage1 bool `json:"skip_stage1"`
	SkipStage2 bool `json:"skip_stage2"`
	// LongSide is stage 1's working long side; ProcessSize is stage 2's minimum short
	// side (0: off).
	LongSide    int `json:"long_side"`
	ProcessSize int `json:"process_size"`
	// PerceptualBound, PerceptualGate, AlignBound are the defect thresholds of DESIGN
	// §1.2-1.4 (100/255, 0.5, 170/255); Dilate is the mask dilation radius in pixels.
	PerceptualBound float64 `json:"perceptual_bound"`
	PerceptualGate  float64 `json:"perceptual_gate"`
	AlignBound      float64 `json:"align_bound"`
	Dilate          int     `json:"dilate"`
	// Tile, TileOverlap and TileBatch tile the denoising of a large latent (latent pixels;
	// TileBatch 0: as memory allows); VAETile and VAETileOverlap are diffusers' tiled VAE
	// (pixels, overlap factor); Crop and CropPadding let stage 1 repair the padded box
	// around the mask (README, Large images).
	Tile           int     `json:"tile"`
	TileOverlap    int     `json:"tile_overlap"`
	TileBatch      int     `json:"tile_batch"`
	VAETile        int     `json:"vae_tile"`
	VAETileOverlap float64 `json:"vae_tile_overlap"`
	Crop           bool    `json:"crop"`
	CropPadding    int     `json:"crop_padding"`
}

// Kind is a parameter's type.
type Kind string

// Kinds of parameters: their Go type in Params, their C type in grefine_params.
const (
	KindInt   Kind = "integer" // int; C int
	KindUint  Kind = "uint64"  // uint64; C uint64_t
	KindFloat Kind = "number"  // float64; C double
	KindBool  Kind = "boolean" // bool; C int (non-zero: true)
)

// Param is one row of the parameter table: everything a front end needs to take the
// parameter, and the one place its range is written.
type Param struct {
	// Name is the parameter's name in JSON: Params' json tag, the REST params object,
	// multipart fields, KServe v2 request parameters and the batch JSONL "params".
	Name string `json:"name"`
	// Field is the Params field that holds it.
	Field string `json:"-"`
	// Target is the engine configuration field it sets: "refine.X" (refine.Config) or
	// "assess.X" (assess.Config). Its default is read from there.
	Target string `json:"target"`
	// Flag is the CLI flag (without dashes). Negate marks a boolean whose flag turns
	// the parameter off (--no-blend sets masked_blend to false).
	Flag   string `json:"flag"`
	Negate bool   `json:"negate,omitempty"`
	// CField is the grefine_params field (include/grefine.h).
	CField string `json:"c_field"`
	Kind   Kind   `json:"type"`
	// Min and Max bound a number (inclusive; MinOpen excludes Min). Multiple, if set,
	// must divide the value. ZeroOff also accepts 0 (the feature is off).
	Min      float64 `json:"minimum"`
	Max      float64 `json:"maximum"`
	MinOpen  bool    `json:"exclusive_minimum,omitempty"`
	Multiple int     `json:"multiple_of,omitempty"`
	ZeroOff  bool    `json:"zero_off,omitempty"`
	// ZeroMeans names what 0 does where it is not "off" ("auto").
	ZeroMeans string `json:"zero_means,omitempty"`
	// Refine marks a parameter only refine uses (assess takes the others).
	Refine bool `json:"refine"`
	// SetDefault marks a default that depends on the model set (the tiny set's working
	// sizes); in C its "default" value is GREFINE_SIZE_DEFAULT (-1).
	SetDefault bool `json:"set_default,omitempty"`
	// Exact, if set, shows the default as a fraction ("100/255").
	Exact string `json:"exact,omitempty"`
	// Usage is one line for --help, the OpenAPI document and the README.
	Usage string `json:"description"`
}

// MaxDilate bounds Params.Dilate.
const MaxDilate = 64

// maxSide bounds the working sizes long_side and process_size.
const maxSide = 4096

var paramTable = []Param{
	{Name: "seed", Field: "Seed", Target: "refine.Seed", Flag: "seed", CField: "seed", Kind: KindUint, Min: 0, Max: math.MaxUint64, Refine: true,
		Usage: "noise seed: the same image, prompt, parameters and seed give the same bytes"},
	{Name: "steps1", Field: "Steps1", Target: "refine.Steps1", Flag: "steps1", CField: "steps1", Kind: KindInt, Min: 1, Max: refine.MaxSteps, Refine: true,
		Usage: "stage-1 denoising steps that run"},
	{Name: "steps2", Field: "Steps2", Target: "refine.Steps2", Flag: "steps2", CField: "steps2", Kind: KindInt, Min: 1, Max: refine.MaxSteps, Refine: true,
		Usage: "stage-2 denoising steps that run"},
	{Name: "strength_max", Field: "StrengthMax", Target: "refine.StrengthMax", Flag: "strength-max", CField: "strength_max", Kind: KindFloat, Min: 0, MinOpen: true, Max: 1, Refine: true,
		Usage: "stage-1 strength for quality q = 0 (s1 = max - (max - min)·q)"},
	{Name: "strength_min", Field: "StrengthMin", Target: "refine.StrengthMin", Flag: "strength-min", CField: "strength_min", Kind: KindFloat, Min: 0, MinOpen: true, Max: 1, Refine: true,
		Usage: "stage-1 strength for quality q = 1 (at most strength_max)"},
	{Name: "strength1", Field: "Strength1", Target: "refine.Strength1", Flag: "strength1", CField: "strength1", Kind: KindFloat, Min: 0, Max: 1, Refine: true,
		Usage: "fixed stage-1 strength instead of the quality-driven one (0: quality-driven)"},
	{Name: "strength2", Field: "Strength2", Target: "refine.Strength2", Flag: "strength2", CField: "strength2", Kind: KindFloat, Min: 0, MinOpen: true, Max: 1, Refine: true,
		Usage: "stage-2 strength δ"},
	{Name: "guidance1", Field: "Guidance1", Target: "refine.Guidance1", Flag: "guidance1", CField: "guidance1", Kind: KindFloat, Min: 0, Max: 100, Refine: true,
		Usage: "stage-1 classifier-free guidance scale"},
	{Name: "guidance2", Field: "Guidance2", Target: "refine.Guidance2", Flag: "guidance2", CField: "guidance2", Kind: KindFloat, Min: 0, Max: 100, Refine: true,
		Usage: "stage-2 classifier-free guidance scale"},
	{Name: "emphasis", Field: "Emphasis", Target: "refine.Emphasis", Flag: "emphasis", CField: "emphasis", Kind: KindFloat, Min: 0, MinOpen: true, Max: 10, Refine: true,
		Usage: "prompt weight of the defective parts' tokens"},
	{Name: "masked_blend", Field: "MaskedBlend", Target: "refine.MaskedBlend", Flag: "no-blend", Negate: true, CField: "masked_blend", Kind: KindBool, Refine: true,
		Usage: "reset the latents outside the mask after every stage-1 step"},
	{Name: "paste_pixels", Field: "PastePixels", Target: "refine.PastePixels", Flag: "no-paste", Negate: true, CField: "paste_pixels", Kind: KindBool, Refine: true,
		Usage: "take the pixels outside the mask from the input after stage 1"},
	{Name: "skip_stage1", Field: "SkipStage1", Target: "refine.SkipStage1", Flag: "skip-stage1", CField: "skip_stage1", Kind: KindBool, Refine: true,
		Usage: "do not run stage 1 (SDXL-Inpainting under the mask)"},
	{Name: "skip_stage2", Field: "SkipStage2", Target: "refine.SkipStage2", Flag: "skip-stage2", CField: "skip_stage2", Kind: KindBool, Refine: true,
		Usage: "do not run stage 2 (PASD over the whole image)"},
	{Name: "long_side", Field: "LongSide", Target: "refine.LongSide", Flag: "long-side", CField: "long_side", Kind: KindInt, Min: refine.MinLongSide, Max: maxSide, Multiple: refine.SizeMultiple, Refine: true, SetDefault: true,
		Usage: "stage-1 working long side (tiny model sets: at most 512)"},
	{Name: "process_size", Field: "ProcessSize", Target: "refine.ProcessSize", Flag: "process-size", CField: "process_size", Kind: KindInt, Min: refine.MinLongSide, Max: maxSide, ZeroOff: true, Refine: true, SetDefault: true,
		Usage: "stage-2 minimum short side (tiny model sets: at most 512)"},
	{Name: "perceptual_bound", Field: "PerceptualBound", Target: "assess.PerceptualBound", Flag: "perceptual-bound", CField: "perceptual_bound", Kind: KindFloat, Min: 0, Max: 1, Exact: "100/255",
		Usage: "P below this is a perceptual defect"},
	{Name: "perceptual_gate", Field: "PerceptualGate", Target: "assess.PerceptualGate", Flag: "perceptual-gate", CField: "perceptual_gate", Kind: KindFloat, Min: 0, Max: 1,
		Usage: "... and the raw cask map below this too (τ_p)"},
	{Name: "align_bound", Field: "AlignBound", Target: "assess.AlignBound", Flag: "align-bound", CField: "align_bound", Kind: KindFloat, Min: 0, Max: 1, Exact: "170/255",
		Usage: "A above this is an alignment defect"},
	{Name: "dilate", Field: "Dilate", Target: "assess.DilateRadius", Flag: "dilate", CField: "dilate", Kind: KindInt, Min: 0, Max: MaxDilate,
		Usage: "mask dilation radius in pixels"},
	{Name: "tile", Field: "Tile", Target: "refine.Tile", Flag: "tile", CField: "tile", Kind: KindInt, Min: tile.MinGridTile, Max: tile.MaxGridTile, Refine: true, SetDefault: true,
		Usage: "denoising tile in latent pixels (8 px each): a larger latent is denoised in overlapping tiles (tiny model sets: at most 64)"},
	{Name: "tile_overlap", Field: "TileOverlap", Target: "refine.TileOverlap", Flag: "tile-overlap", CField: "tile_overlap", Kind: KindInt, Min: 0, Max: tile.MaxGridTile / 2, Refine: true,
		Usage: "latent pixels neighbouring denoising tiles share at least (at most half the tile)"},
	{Name: "tile_batch", Field: "TileBatch", Target: "refine.TileBatch", Flag: "tile-batch", CField: "tile_batch", Kind: KindInt, Min: 1, Max: refine.MaxTileBatch, ZeroOff: true, ZeroMeans: "as memory allows", Refine: true,
		Usage: "denoising tiles per UNet call"},
	{Name: "vae_tile", Field: "VAETile", Target: "refine.VAETile", Flag: "vae-tile", CField: "vae_tile", Kind: KindInt, Min: 64, Max: maxSide, Multiple: refine.SizeMultiple, Refine: true, SetDefault: true,
		Usage: "VAE tile in pixels: a working size with a longer side runs the VAE in overlapping tiles, as diffusers' enable_tiling (tiny model sets: at most 512)"},
	{Name: "vae_tile_overlap", Field: "VAETileOverlap", Target: "refine.VAETileOverlap", Flag: "vae-tile-overlap", CField: "vae_tile_overlap", Kind: KindFloat, Min: 0, Max: tile.MaxOverlap, Refine: true,
		Usage: "share of a VAE tile its neighbours overlap (diffusers' tile_overlap_factor; it must line up with the latent grid)"},
	{Name: "crop", Field: "Crop", Target: "refine.Crop", Flag: "no-crop", Negate: true, CField: "crop", Kind: KindBool, Refine: true,
		Usage: "stage 1 repairs only the padded box around the mask when the image is larger than its working size and the box covers at most half of it"},
	{Name: "crop_padding", Field: "CropPadding", Target: "refine.CropPadding", Flag: "crop-padding", CField: "crop_padding", Kind: KindInt, Min: 0, Max: refine.MaxCropPadding, Refine: true,
		Usage: "pixels of context around the mask's box when stage 1 crops"},
}

// ParamTable returns the parameter table (a copy), in Params' field order.
func ParamTable() []Param { return append([]Param(nil), paramTable...) }

// ParamByName returns the table row of a JSON name.
func ParamByName(name string) (Param, bool) {
	for _, p := range paramTable {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Range is the row's range in interval notation: "[1, 1000]", "(0, 1]", "0 (off) or
// [64, 4096]", "a multiple of 8 in [64, 4096]"; "" for a boolean.
func (r Param) Range() string {
	if r.Kind == KindBool {
		return ""
	}
	lo := "["
	if r.MinOpen {
		lo = "("
	}
	s := fmt.Sprintf("%s%s, %s]", lo, num(r.Min), num(r.Max))
	if r.Kind == KindUint && r.Max == math.MaxUint64 {
		s = fmt.Sprintf("[%s, 2^64-1]", num(r.Min))
	}
	if r.Multiple > 0 {
		s = fmt.Sprintf("a multiple of %d in %s", r.Multiple, s)
	}
	if r.ZeroOff {
		z := "off"
		if r.ZeroMeans != "" {
			z = r.ZeroMeans
		}
		s = "0 (" + z + ") or " + s
	}
	return s
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Default is the row's default in Params d, as text ("10", "0.15", "100/255 ≈ 0.392").
func (r Param) Default(d Params) string {
	v := r.get(&d).Interface()
	if r.Exact != "" {
		return fmt.Sprintf("%s ≈ %.3f", r.Exact, v)
	}
	return fmt.Sprint(v)
}

// Schema is the row's JSON Schema (OpenAPI 3.1): type, range, multipleOf, description.
func (r Param) Schema() map[string]any {
	s := map[string]any{"description": r.Usage}
	switch r.Kind {
	case KindBool:
		s["type"] = "boolean"
		return s
	case KindFloat:
		s["type"] = "number"
	default:
		s["type"] = "integer"
	}
	rng := map[string]any{"maximum": jsonNum(r.Kind, r.Max)}
	if r.MinOpen {
		rng["exclusiveMinimum"] = jsonNum(r.Kind, r.Min)
	} else {
		rng["minimum"] = jsonNum(r.Kind, r.Min)
	}
	if r.Multiple > 0 {
		rng["multipleOf"] = r.Multiple
	}
	if r.ZeroOff {
		s["anyOf"] = []any{map[string]any{"const": 0}, rng}
		return s
	}
	for k, v := range rng {
		s[k] = v
	}
	return s
}

// jsonNum writes integers as integers (2^64-1 exactly) and numbers as numbers.
func jsonNum(k Kind, v float64) any {
	switch {
	case k == KindUint && v == math.MaxUint64:
		return json.Number(strconv.FormatUint(math.MaxUint64, 10))
	case k != KindFloat:
		return int64(v)
	}
	return v
}

// get is the row's field in *p.
func (r Param) get(p *Params) reflect.Value { return reflect.ValueOf(p).Elem().FieldByName(r.Field) }

// check refuses a value outside the row's range (the value is the field's).
func (r Param) check(v reflect.Value) error {
	var x float64
	switch r.Kind {
	case KindBool:
		return nil
	case KindInt:
		x = float64(v.Int())
	case KindUint:
		return nil // [0, 2^64-1]: every uint64
	case KindFloat:
		x = v.Float()
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return inputf("%s: %v is not a finite number", r.Name, x)
		}
	}
	if r.ZeroOff && x == 0 {
		return nil
	}
	if x < r.Min || x > r.Max || (r.MinOpen && x == r.Min) || (r.Multiple > 0 && math.Mod(x, float64(r.Multiple)) != 0) {
		if r.Multiple > 0 || r.ZeroOff {
			return inputf("%s: %s must be %s", r.Name, num(x), r.Range())
		}
		return inputf("%s: %s is out of range %s", r.Name, num(x), r.Range())
	}
	return nil
}

// Validate checks every field against the table, then the relations between fields;
// the error wraps ErrInput and names the field by its JSON name.
func (p Params) Validate() error {
	for _, r := range paramTable {
		if err := r.check(r.get(&p)); err != nil {
			return err
		}
	}
	if p.StrengthMin > p.StrengthMax {
		return inputf("strength_min %g is above strength_max %g", p.StrengthMin, p.StrengthMax)
	}
	if 2*p.TileOverlap > p.Tile {
		return inputf("tile_overlap %d is more than half the tile %d", p.TileOverlap, p.Tile)
	}
	if err := (tile.VAE{Tile: p.VAETile, Overlap: p.VAETileOverlap, Factor: 8}).Validate(); err != nil {
		return inputf("vae_tile %d with vae_tile_overlap %g: %v (a multiple of 32 lines up with 0.25)", p.VAETile, p.VAETileOverlap, err)
	}
	return nil
}

// DefaultParams are DESIGN's constants at the production working sizes (LongSide 1024,
// ProcessSize 768), read from the engines' default configurations through the table.
// Pipeline.DefaultParams adjusts the sizes to the loaded model set.
func DefaultParams() Params {
	var p Params
	r, a := refine.DefaultConfig(), assess.DefaultConfig()
	for _, row := range paramTable {
		f := row.get(&p)
		f.Set(row.target(&r, &a).Convert(f.Type()))
	}
	return p
}

// target is the row's field in the engine configurations.
func (r Param) target(rc *refine.Config, ac *assess.Config) reflect.Value {
	pkg, field, _ := strings.Cut(r.Target, ".")
	if pkg == "assess" {
		return reflect.ValueOf(ac).Elem().FieldByName(field)
	}
	return reflect.ValueOf(rc).Elem().FieldByName(field)
}

// configs are base's engine configurations with p's values, through the table.
func (p Params) configs(rc refine.Config, ac assess.Config) (refine.Config, assess.Config) {
	for _, row := range paramTable {
		t := row.target(&rc, &ac)
		t.Set(row.get(&p).Convert(t.Type()))
	}
	return rc, ac
}

// assessConfig is base with p's thresholds.
func (p Params) assessConfig(base assess.Config) assess.Config {
	_, a := p.configs(refine.DefaultConfig(), base)
	return a
}

// refineConfig is base with p's settings.
func (p Params) refineConfig(base refine.Config) refine.Config {
	r, _ := p.configs(base, assess.DefaultConfig())
	return r
}

// Set sets the parameter named name (a JSON name) from a text value as a flag or a
// multipart field gives it: "7", "0.5", "true". The value is not range-checked
// (Validate does that).
func (p *Params) Set(name, text string) error {
	r, ok := ParamByName(name)
	if !ok {
		return inputf("unknown parameter %q (known: %s)", name, strings.Join(paramNames(), ", "))
	}
	text = strings.TrimSpace(text)
	f := r.get(p)
	bad := func() error { return inputf("%s: %q is not %s", name, text, r.Kind.article()) }
	switch r.Kind {
	case KindBool:
		if text != "true" && text != "false" {
			return inputf("%s: %q is not a boolean (true or false)", name, text)
		}
		f.SetBool(text == "true")
	case KindInt:
		v, err := strconv.ParseInt(text, 10, 64)
		if err != nil || v < math.MinInt32 || v > math.MaxInt32 {
			return bad()
		}
		f.SetInt(v)
	case KindUint:
		v, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return bad()
		}
		f.SetUint(v)
	case KindFloat:
		v, err := strconv.ParseFloat(text, 64)
		if err != nil || strings.ContainsAny(text, "xX_") { // no hex floats
			return bad()
		}
		f.SetFloat(v)
	}
	return nil
}

func (k Kind) article() string {
	switch k {
	case KindInt:
		return "an integer"
	case KindUint:
		return "an unsigned 64-bit integer"
	case KindBool:
		return "a boolean"
	}
	return "a number"
}

// ParseParams applies a JSON object of parameters onto base: the keys are the table's
// JSON names, each at most once; null keeps the base's value; anything after the object
// is refused. It does not validate the values (Validate does).
func ParseParams(raw []byte, base Params) (Params, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return base, nil
	}
	if err := strictjson.Check(raw); err != nil {
		return base, inputf("params: %v", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return base, inputf("params: want a JSON object of parameters, got %s", jsonKind(raw))
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	sort.Strings(names)
	p := base
	for _, k := range names {
		v := obj[k]
		r, ok := ParamByName(k)
		if !ok {
			return base, inputf("params: unknown parameter %q (known: %s)", k, strings.Join(paramNames(), ", "))
		}
		if string(v) == "null" {
			continue
		}
		x := reflect.New(jsonTypes[r.Kind]) // int32: a JSON integer that fits Params' int on every platform
		if err := json.Unmarshal(v, x.Interface()); err != nil {
			return base, inputf("params: %s: want %s, got %s", k, r.Kind.article(), jsonKind(v))
		}
		f := r.get(&p)
		f.Set(x.Elem().Convert(f.Type()))
	}
	return p, nil
}

// jsonTypes are the Go types ParseParams decodes each kind's JSON values into.
var jsonTypes = map[Kind]reflect.Type{KindBool: reflect.TypeFor[bool](), KindInt: reflect.TypeFor[int32](),
	KindUint: reflect.TypeFor[uint64](), KindFloat: reflect.TypeFor[float64]()}

// jsonKind names what a JSON value is, for messages ("the string \"7\"").
func jsonKind(v []byte) string {
	s := string(bytes.TrimSpace(v))
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	switch {
	case s == "":
		return "nothing"
	case s[0] == '"':
		return "the string " + s
	case s[0] == '{':
		return "an object"
	case s[0] == '[':
		return "an array"
	}
	return s
}

func paramNames() []string {
	n := make([]string, len(paramTable))
	for i, r := range paramTable {
		n[i] = r.Name
	}
	return n
}

// String is a compact form for logs.
func (p Params) String() string {
	return fmt.Sprintf("seed=%d steps=%d/%d strength=[%g,%g] s1=%g s2=%g guidance=%g/%g", p.Seed, p.Steps1, p.Steps2,
		p.StrengthMin, p.StrengthMax, p.Strength1, p.Strength2, p.Guidance1, p.Guidance2)
}
