package refine

import (
	"strings"

	"github.com/grefine/grefine/pipeline/syntax"
	"github.com/grefine/grefine/pipeline/tokenizer"
)

// Segment is a piece of prompt text with an emphasis weight (1 = none).
type Segment struct {
	Text   string
	Weight float64
}

// Weighted is a tokenised prompt: 77 ids (SOT, tokens, EOT, padding) and a weight per
// position (1 for SOT, EOT and padding).
type Weighted struct {
	IDs       [tokenizer.ContextLength]int32
	Weights   [tokenizer.ContextLength]float32
	Truncated int // text tokens dropped to fit 77 positions
}

// EncodeSegments tokenises each segment on its own (segments split at word boundaries
// tokenise as the whole prompt would: CLIP's BPE never crosses a word) and concatenates
// the ids, each carrying its segment's weight. Padding uses padID (49407 for SDXL's
// CLIP-L and SD-1.5's tokenizer, 0 for OpenCLIP bigG).
func EncodeSegments(tok *tokenizer.Tokenizer, segs []Segment, padID int32) (Weighted, error) {
	const L = tokenizer.ContextLength
	var w Weighted
	ids := []int32{tokenizer.SOT}
	ws := []float32{1}
	for _, s := range segs {
		t, err := tok.EncodeTokens(s.Text)
		if err != nil {
			return w, err
		}
		for _, id := range t {
			ids = append(ids, id)
			ws = append(ws, float32(s.Weight))
		}
	}
	if len(ids) > L-1 {
		w.Truncated = len(ids) - (L - 1)
		ids, ws = ids[:L-1], ws[:L-1]
	}
	ids = append(ids, tokenizer.EOT)
	ws = append(ws, 1)
	for i := range w.IDs {
		if i < len(ids) {
			w.IDs[i], w.Weights[i] = ids[i], ws[i]
		} else {
			w.IDs[i], w.Weights[i] = padID, 1
		}
	}
	return w, nil
}

// EmphasisSegments splits a parsed prompt into segments whose weight is the user's weight
// syntax times emphasis for the tokens of the parts listed in defective (prompt
// emphasis, paper eq. 7), then appends suffix with weight 1. Tokens are joined by a space
// where the prompt had a gap between them, and directly otherwise; weight syntax itself
// is not part of any token, so it disappears here.
func EmphasisSegments(r *syntax.Result, defective []int, emphasis float64, suffix string) []Segment {
	weight := make([]float64, len(r.Tokens))
	for i, t := range r.Tokens {
		weight[i] = t.Weight
		if weight[i] == 0 {
			weight[i] = 1
		}
	}
	for _, pi := range defective {
		if pi < 0 || pi >= len(r.Parts) {
			continue
		}
		for _, ti := range r.Parts[pi].Tokens {
			weight[ti] *= emphasis
		}
	}
	var segs []Segment
	var b strings.Builder
	cur := 1.0
	flush := func() {
		if b.Len() > 0 {
			segs = append(segs, Segment{Text: b.String(), Weight: cur})
			b.Reset()
		}
	}
	for i, t := range r.Tokens {
		if i == 0 || weight[i] != cur {
			flush()
			cur = weight[i]
		}
		if b.Len() > 0 && t.Start > r.Tokens[i-1].End {
			b.WriteByte(' ') // a gap at a segment boundary needs nothing: segments tokenise apart
		}
		b.WriteString(t.Text)
	}
	flush()
	if suffix != "" {
		segs = append(segs, Segment{Text: suffix, Weight: 1})
	}
	return segs
}
