package aq

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/grefine/grefine/engine/cpu"
)

// Defaults of DESIGN §1.3.
const (
	DefaultTemperature = 10
	DefaultNounBound   = 0.5
	DefaultBeta        = 0.5
)

// Config holds the AQ constants.
type Config struct {
	Temperature float64 // sigmoid temperature (10)
	NounBound   float64 // a_pn below it: the noun is missing (0.5)
	Beta        float64 // score bound of eq. 8 (0.5)
}

// DefaultConfig returns DESIGN's constants.
func DefaultConfig() Config {
	return Config{Temperature: DefaultTemperature, NounBound: DefaultNounBound, Beta: DefaultBeta}
}

// Part is one prompt part as the syntax parser gives it.
type Part struct {
	Text     string `json:"text"`     // filtered part text (stopwords removed)
	Noun     string `json:"noun"`     // head noun, "" if none
	Ancestor int    `json:"ancestor"` // index of the ancestor part, -1 if none
}

// Defect kinds of a part.
const (
	KindNone      = "none"
	KindMissing   = "missing"   // a_pn < NounBound: the object is not in the image
	KindAttribute = "attribute" // a_pn > a_ph: the object is there, its attributes are not
)

// PartResult is one part's outcome.
type PartResult struct {
	Part
	NounScore   float32 `json:"noun_score"`   // a_pn
	PhraseScore float32 `json:"phrase_score"` // a_ph
	Kind        string  `json:"defect"`
	// MapFrom is the part whose map was merged into A (-1 if none).
	MapFrom int `json:"map_from"`
}

// Result is the alignment assessment of one image.
type Result struct {
	Score       float32      // a (eq. 8)
	PromptScore float32      // s(prompt)
	Parts       []PartResult // in prompt order
	Map         []float32    // A [H*W] in [0,1]
}

// Geometry describes the token grid and the output map size.
type Geometry struct {
	GridH, GridW int // patches (14×14)
	Dim          int // feature size D
	H, W         int // output map size
}

// Texts lists the texts whose features Compute needs: the prompt, then for each part
// with a noun its noun and its text, then the texts of noun-less parts that are the
// ancestor of a part with a noun (their map may be merged). Duplicates are kept once.
func Texts(prompt string, parts []Part) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	add(prompt)
	for _, p := range parts {
		if p.Noun != "" {
			add(p.Noun)
			add(p.Text)
		}
	}
	for _, p := range parts {
		if p.Noun != "" && p.Ancestor >= 0 && p.Ancestor < len(parts) {
			add(parts[p.Ancestor].Text)
		}
	}
	return out
}

// Compute runs the AQ maths for one image. tokens is [1+GridH*GridW, Dim]; feats maps
// each of Texts(prompt, parts) to its feature.
func Compute(cfg Config, g Geometry, tokens []float32, prompt string, parts []Part, feats map[string][]float32) (*Result, error) {
	T := 1 + g.GridH*g.GridW
	if g.GridH < 1 || g.GridW < 1 || g.Dim < 1 || g.H < 1 || g.W < 1 || len(tokens) != T*g.Dim {
		return nil, fmt.Errorf("%w: %d token values for grid %dx%d, dim %d, map %dx%d", ErrShape, len(tokens), g.GridH, g.GridW, g.Dim, g.H, g.W)
	}
	for _, p := range parts {
		if p.Ancestor < -1 || p.Ancestor >= len(parts) {
			return nil, fmt.Errorf("%w: part %q has ancestor %d of %d parts", ErrShape, p.Text, p.Ancestor, len(parts))
		}
	}
	for _, t := range Texts(prompt, parts) {
		if f, ok := feats[t]; !ok || len(f) != g.Dim {
			return nil, fmt.Errorf("%w: no %d-d feature for text %q", ErrShape, g.Dim, t)
		}
	}
	score := func(f []float32) float32 {
		return float32(sigmoid(cfg.Temperature * dot(tokens[:g.Dim], f)))
	}
	res := &Result{PromptScore: score(feats[prompt]), Map: make([]float32, g.H*g.W)}
	a := float64(res.PromptScore)
	for i, p := range parts {
		pr := PartResult{Part: p, Kind: KindNone, MapFrom: -1}
		if p.Noun != "" {
			pr.NounScore, pr.PhraseScore = score(feats[p.Noun]), score(feats[p.Text])
			a *= math.Min(float64(pr.PhraseScore)/cfg.Beta, 1)
			switch {
			case float64(pr.NounScore) < cfg.NounBound:
				pr.Kind, pr.MapFrom = KindMissing, i
				if p.Ancestor >= 0 {
					pr.MapFrom = p.Ancestor
				}
			case pr.NounScore > pr.PhraseScore:
				pr.Kind, pr.MapFrom = KindAttribute, i
			}
		}
		res.Parts = append(res.Parts, pr)
	}
	res.Score = float32(a)
	merged := map[int]bool{}
	for _, pr := range res.Parts {
		if pr.MapFrom < 0 || merged[pr.MapFrom] {
			continue
		}
		merged[pr.MapFrom] = true
		m, err := TextMap(g, tokens, feats[parts[pr.MapFrom].Text])
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			res.Map[k] = max(res.Map[k], v)
		}
	}
	return res, nil
}

// TextMap is m(x): patch similarities with f, min-maxed over the patches and bilinearly
// upsampled to H×W.
func TextMap(g Geometry, tokens, f []float32) ([]float32, error) {
	n := g.GridH * g.GridW
	v := make([]float32, n)
	for t := 0; t < n; t++ {
		v[t] = float32(dot(tokens[(1+t)*g.Dim:(2+t)*g.Dim], f))
	}
	if err := cpu.MinMaxNormalize(v, v); err != nil {
		return nil, err
	}
	out := make([]float32, g.H*g.W)
	if err := cpu.ResizeBilinear(v, 1, g.GridH, g.GridW, out, g.H, g.W); err != nil {
		return nil, err
	}
	return out, nil
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func dot(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// MarshalJSON writes noun_score as null for a part without a noun (there is no noun
// score, and 0 would read as "missing").
func (r PartResult) MarshalJSON() ([]byte, error) {
	type plain PartResult
	out := struct {
		plain
		NounScore *float32 `json:"noun_score"`
	}{plain: plain(r)}
	if r.Noun != "" {
		ns := r.NounScore
		out.NounScore = &ns
	}
	return json.Marshal(out)
}
