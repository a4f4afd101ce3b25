package aq

import (
	"encoding/json"
	"fmt"
	"math"
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

// Result is the alignment assessment of one image. The map A itself is made on the
// device from the features of the parts Maps lists (engine.Ops.TextMaps).
type Result struct {
	Score       float32      // a (eq. 8)
	PromptScore float32      // s(prompt)
	Parts       []PartResult // in prompt order
	// Maps lists the parts whose text maps make A (A = max of their maps), in the order
	// they are merged, each once; empty: A is zero.
	Maps []int
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

// Compute scores one image from its CLS token cls [D] (the first CLIP-Surgery token)
// and the features of Texts(prompt, parts): the scores and defects of every part, the
// score a, and the parts whose maps make A.
func Compute(cfg Config, cls []float32, prompt string, parts []Part, feats map[string][]float32) (*Result, error) {
	D := len(cls)
	if D < 1 {
		return nil, fmt.Errorf("%w: empty CLS token", ErrShape)
	}
	for _, p := range parts {
		if p.Ancestor < -1 || p.Ancestor >= len(parts) {
			return nil, fmt.Errorf("%w: part %q has ancestor %d of %d parts", ErrShape, p.Text, p.Ancestor, len(parts))
		}
	}
	for _, t := range Texts(prompt, parts) {
		if f, ok := feats[t]; !ok || len(f) != D {
			return nil, fmt.Errorf("%w: no %d-d feature for text %q", ErrShape, D, t)
		}
	}
	score := func(f []float32) float32 {
		return float32(sigmoid(cfg.Temperature * dot(cls, f)))
	}
	res := &Result{PromptScore: score(feats[prompt])}
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
		res.Maps = append(res.Maps, pr.MapFrom)
	}
	return res, nil
}

// MapFeatures is the features of the texts of the parts in maps, one row each ([K*D]),
// for engine.Ops.TextMaps.
func MapFeatures(parts []Part, maps []int, feats map[string][]float32) []float32 {
	var out []float32
	for _, i := range maps {
		out = append(out, feats[parts[i].Text]...)
	}
	return out
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
