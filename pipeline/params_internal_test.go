package pipeline

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/pipeline/assess"
	"github.com/grefine/grefine/pipeline/refine"
	"github.com/grefine/grefine/pipeline/tile"
)

// TestParamTableCoversParams: every Params field has exactly one row, under its JSON
// tag, with a target field of the engine configurations of the same kind; names,
// flags and C fields are unique.
func TestParamTableCoversParams(t *testing.T) {
	typ := reflect.TypeOf(Params{})
	require.Equal(t, typ.NumField(), len(paramTable), "one row per Params field")
	seen := map[string]map[string]bool{"name": {}, "flag": {}, "c": {}, "target": {}}
	for i, r := range paramTable {
		f := typ.Field(i)
		assert.Equal(t, f.Name, r.Field, "rows in Params' field order")
		assert.Equal(t, strings.Split(f.Tag.Get("json"), ",")[0], r.Name, "the JSON name is the json tag")
		want := map[reflect.Kind]Kind{reflect.Int: KindInt, reflect.Uint64: KindUint, reflect.Float64: KindFloat, reflect.Bool: KindBool}[f.Type.Kind()]
		assert.Equal(t, want, r.Kind, r.Name)
		rc, ac := refine.DefaultConfig(), assess.DefaultConfig()
		tv := r.target(&rc, &ac)
		require.True(t, tv.IsValid(), "%s: target %s exists", r.Name, r.Target)
		assert.True(t, tv.CanSet(), r.Target)
		assert.True(t, f.Type.ConvertibleTo(tv.Type()), "%s: %s converts to %s", r.Name, f.Type, tv.Type())
		for k, v := range map[string]string{"name": r.Name, "flag": r.Flag, "c": r.CField, "target": r.Target} {
			assert.False(t, seen[k][v], "%s %q twice", k, v)
			seen[k][v] = true
		}
		assert.NotEmpty(t, r.Usage, r.Name)
		assert.Equal(t, strings.ToLower(r.Flag), r.Flag)
	}
}

// TestDefaultsRoundTrip: the defaults read through the table and written back through
// it give the engines' default configurations (the table's targets are right, and
// DefaultParams is DESIGN's constants).
func TestDefaultsRoundTrip(t *testing.T) {
	d := DefaultParams()
	rc, ac := d.configs(refine.DefaultConfig(), assess.DefaultConfig())
	assert.Equal(t, refine.DefaultConfig(), rc)
	assert.Equal(t, assess.DefaultConfig(), ac)
	// The values DESIGN fixes (before the table, DefaultParams was written by hand).
	assert.Equal(t, Params{Seed: 0, Steps1: 10, Steps2: 10, StrengthMax: 0.9, StrengthMin: 0.5, Strength2: 0.15, Guidance1: 7.5, Guidance2: 9,
		Emphasis: 1.1, MaskedBlend: true, PastePixels: true, LongSide: 1024, ProcessSize: 768,
		PerceptualBound: float64(float32(100.0 / 255)), PerceptualGate: 0.5, AlignBound: float64(float32(170.0 / 255)), Dilate: 0,
		Tile: 128, TileOverlap: 16, TileBatch: 0, VAETile: 1024, VAETileOverlap: 0.25, Crop: true, CropPadding: 32}, d)
	// Each row reaches its own target and no other.
	for _, r := range paramTable {
		p := DefaultParams()
		f := r.get(&p)
		switch r.Kind {
		case KindBool:
			f.SetBool(!f.Bool())
		case KindInt:
			f.SetInt(f.Int() + 8)
		case KindUint:
			f.SetUint(f.Uint() + 1)
		case KindFloat:
			f.SetFloat(f.Float() + 0.125)
		}
		rc2, ac2 := p.configs(refine.DefaultConfig(), assess.DefaultConfig())
		diff := 0
		for _, pair := range [][2]any{{rc, rc2}, {ac, ac2}} {
			a, b := reflect.ValueOf(pair[0]), reflect.ValueOf(pair[1])
			for i := 0; i < a.NumField(); i++ {
				if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
					diff++
				}
			}
		}
		assert.Equal(t, 1, diff, "%s changes exactly its target %s", r.Name, r.Target)
	}
}

// TestValidateFollowsTheTable: for every numeric row, the values at and just inside its
// bounds pass Validate and those just outside fail naming the row; NaN and ±Inf fail.
// The ranges are read from the table, so the table is where they are written.
func TestValidateFollowsTheTable(t *testing.T) {
	for _, r := range paramTable {
		if r.Kind == KindBool || r.Kind == KindUint {
			continue
		}
		set := func(v float64) error {
			p := DefaultParams()
			p.StrengthMin = math.Min(p.StrengthMin, 1e-3) // keep the cross-field rule out of the way
			if r.Name == "strength_max" {
				p.StrengthMin = math.Nextafter(0, 1)
			}
			if r.Name == "strength_min" {
				p.StrengthMax = 1
			}
			switch r.Name { // the tiles' cross-field rules, out of the way too
			case "tile":
				p.TileOverlap = 0
			case "tile_overlap":
				p.Tile = tile.MaxGridTile
			case "vae_tile":
				p.VAETileOverlap = 0
			}
			f := r.get(&p)
			if r.Kind == KindInt {
				f.SetInt(int64(v))
			} else {
				f.SetFloat(v)
			}
			return p.Validate()
		}
		step := 1e-9
		if r.Kind == KindInt {
			step = 1
			if r.Multiple > 0 {
				step = float64(r.Multiple)
			}
		}
		lo := r.Min
		if r.MinOpen {
			lo += step
		}
		for _, ok := range []float64{lo, r.Max} {
			assert.NoError(t, set(ok), "%s = %v is in %s", r.Name, ok, r.Range())
		}
		bad := []float64{r.Max + step}
		if !(r.ZeroOff && r.Min-step <= 0 && 0 <= r.Min) {
			bad = append(bad, r.Min-step)
		}
		if r.MinOpen {
			bad = append(bad, r.Min)
		}
		if r.Multiple > 0 {
			bad = append(bad, r.Min+1)
		}
		if r.Kind == KindFloat {
			bad = append(bad, math.NaN(), math.Inf(1), math.Inf(-1))
		}
		for _, b := range bad {
			err := set(b)
			if assert.Error(t, err, "%s = %v is outside %s", r.Name, b, r.Range()) {
				assert.ErrorIs(t, err, ErrInput)
				assert.True(t, strings.HasPrefix(err.Error(), r.Name+":"), "names the parameter: %v", err)
			}
		}
		if r.ZeroOff {
			assert.NoError(t, set(0), "%s: 0 is off", r.Name)
		}
	}
	p := DefaultParams()
	p.StrengthMin, p.StrengthMax = 0.9, 0.5
	assert.ErrorContains(t, p.Validate(), "strength_min 0.9 is above strength_max 0.5")
	p = DefaultParams()
	p.Tile, p.TileOverlap = 32, 17
	assert.ErrorContains(t, p.Validate(), "tile_overlap 17 is more than half the tile 32")
	p = DefaultParams()
	p.VAETile = 72 // 72 px with overlap 0.25 drifts against the latent grid
	assert.ErrorContains(t, p.Validate(), "does not line up")
}

// TestParseParamsStrict: JSON names of the table only, each once, typed as the table
// says, nothing after the object; null keeps the default.
func TestParseParamsStrict(t *testing.T) {
	d := DefaultParams()
	p, err := ParseParams([]byte(`{"seed": 18446744073709551615, "steps1": 3, "masked_blend": false, "strength2": 0.5, "dilate": null}`), d)
	require.NoError(t, err)
	assert.Equal(t, uint64(math.MaxUint64), p.Seed)
	assert.Equal(t, 3, p.Steps1)
	assert.False(t, p.MaskedBlend)
	assert.Equal(t, 0.5, p.Strength2)
	assert.Equal(t, d.Dilate, p.Dilate)
	for in, msg := range map[string]string{
		`{"seed": 1, "seed": 2}`:   "duplicate key",
		`{"seed": 1} {"seed": 2}`:  "after the JSON value",
		`{"seed": 1} x`:            "after the JSON value",
		`{"Seed": 1}`:              `unknown parameter "Seed"`,
		`{"colour": 1}`:            `unknown parameter "colour"`,
		`{"steps1": 1.5}`:          "steps1: want an integer",
		`{"steps1": "3"}`:          `steps1: want an integer, got the string "3"`,
		`{"steps1": 3000000000}`:   "steps1: want an integer",
		`{"seed": -1}`:             "seed: want an unsigned",
		`{"masked_blend": 1}`:      "masked_blend: want a boolean",
		`[1]`:                      "want a JSON object",
		`{"strength2": "0.5"}`:     "strength2: want a number",
		`{"strength2": {"x": 1}}`:  "got an object",
		`{"params": {"seed": 1}}`:  `unknown parameter "params"`,
		`{"skip_stage1": "true"}`:  "want a boolean",
		`{"guidance1": [1, 2, 3]}`: "got an array",
	} {
		_, err := ParseParams([]byte(in), d)
		if assert.Error(t, err, in) {
			assert.ErrorIs(t, err, ErrInput, in)
			assert.ErrorContains(t, err, msg, in)
		}
	}
	for _, empty := range []string{"", "null", "  "} {
		p, err := ParseParams([]byte(empty), d)
		require.NoError(t, err)
		assert.Equal(t, d, p)
	}
}

// TestSetFromText: the text forms of flags and multipart fields, by the table's kinds.
func TestSetFromText(t *testing.T) {
	p := DefaultParams()
	for name, text := range map[string]string{"seed": "18446744073709551615", "steps2": " 7 ", "strength1": "0.25", "skip_stage2": "true", "masked_blend": "false"} {
		require.NoError(t, p.Set(name, text), name)
	}
	assert.Equal(t, uint64(math.MaxUint64), p.Seed)
	assert.Equal(t, 7, p.Steps2)
	assert.Equal(t, 0.25, p.Strength1)
	assert.True(t, p.SkipStage2)
	assert.False(t, p.MaskedBlend)
	for name, text := range map[string]string{"seed": "-1", "steps1": "1.5", "steps2": "seven", "strength1": "0x1p-2", "skip_stage1": "yes", "paste_pixels": "1", "bogus": "1", "dilate": "99999999999"} {
		err := p.Set(name, text)
		assert.ErrorIs(t, err, ErrInput, "%s=%s", name, text)
	}
}

// TestSchemaFromTable: the JSON Schema of a row is its range, exactly.
func TestSchemaFromTable(t *testing.T) {
	get := func(name string) map[string]any {
		r, ok := ParamByName(name)
		require.True(t, ok)
		b, err := json.Marshal(r.Schema())
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		return m
	}
	assert.Equal(t, map[string]any{"type": "number", "exclusiveMinimum": 0.0, "maximum": 1.0, "description": "stage-2 strength δ"}, get("strength2"))
	ls := get("long_side")
	assert.Equal(t, []any{"integer", 64.0, 4096.0, 8.0}, []any{ls["type"], ls["minimum"], ls["maximum"], ls["multipleOf"]})
	ps := get("process_size")
	assert.Equal(t, []any{map[string]any{"const": 0.0}, map[string]any{"minimum": 64.0, "maximum": 4096.0}}, ps["anyOf"])
	assert.Equal(t, "boolean", get("masked_blend")["type"])
	r, _ := ParamByName("seed")
	b, _ := json.Marshal(r.Schema())
	assert.Contains(t, string(b), `"maximum":18446744073709551615`, "2^64-1 exactly")
}
