package syntax

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode"
)

// Result is a parsed prompt.
type Result struct {
	// Prompt is the input, unchanged.
	Prompt string
	// Tokens are the prompt's tokens in order (weight syntax removed).
	Tokens []Token
	// Parts partition the tokens in order (see doc.go); empty when the prompt has no
	// word (only punctuation or syntax).
	Parts []Part
	// Tree is the dependency tree over Tokens (Root -1 when there are no tokens).
	Tree Tree
}

// Part is one phrase of the prompt: the tokens from one noun chunk's start to the
// next chunk's start.
type Part struct {
	// Text is the part without stopwords and punctuation, tokens joined as written
	// (no space where the prompt had none: "girl's" stays "girl's" unless dropped).
	Text string
	// Noun is the head noun: the last noun of the part that survives the filtering,
	// "" if none.
	Noun string
	// NounToken is the index of that noun in Result.Tokens, or -1.
	NounToken int
	// Start and End are token indices (End exclusive): the part is Tokens[Start:End].
	Start, End int
	// Ancestor is the index of the ancestor part (Algorithm 1), or -1 for none.
	Ancestor int
	// Tokens are the indices of the tokens that make up Text (what prompt emphasis,
	// eq. 7, weighs). The byte span of the part in the prompt is
	// Tokens[Start].Start .. Tokens[End-1].End.
	Tokens []int
}

// partJSON fixes the contract's field order.
type partJSON struct {
	Text     string `json:"text"`
	Noun     string `json:"noun"`
	Start    int    `json:"start"`
	End      int    `json:"end"`
	Ancestor int    `json:"ancestor"`
}

type resultJSON struct {
	Parts []partJSON `json:"parts"`
}

func (r Result) contract() resultJSON {
	out := resultJSON{Parts: make([]partJSON, len(r.Parts))}
	for i, p := range r.Parts {
		out.Parts[i] = partJSON{Text: p.Text, Noun: p.Noun, Start: p.Start, End: p.End, Ancestor: p.Ancestor}
	}
	return out
}

// MarshalJSON encodes the contract shape
//
//	{"parts":[{"text":"sun glasses","noun":"glasses","start":3,"end":5,"ancestor":0}]}
//
// ("parts" is [] when there are none). Through json.Marshal, <, > and & come out
// escaped as usual; JSON does not escape them.
func (r Result) MarshalJSON() ([]byte, error) { return r.JSON() }

// JSON returns the contract JSON, compact, without HTML escaping and without a
// trailing newline. It is what `grefine parse PROMPT --json` prints.
func (r *Result) JSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r.contract()); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// PlainText returns the prompt without its emphasis syntax: every token as written,
// one space where the prompt had whitespace or removed syntax between two words
// ("((masterpiece)), (red hat:1.2)" gives "masterpiece, red hat"). It is what text
// encoders should see.
func (r *Result) PlainText() string {
	var b strings.Builder
	for i, t := range r.Tokens {
		if i > 0 {
			prev := r.Tokens[i-1]
			gap := r.Prompt[prev.End:t.Start]
			if strings.ContainsFunc(gap, unicode.IsSpace) ||
				(gap != "" && !prev.IsPunct() && !t.IsPunct()) {
				b.WriteByte(' ')
			}
		}
		b.WriteString(t.Text)
	}
	return b.String()
}

// PartTexts returns the text of every part (handy in logs and tests).
func (r *Result) PartTexts() []string {
	out := make([]string, len(r.Parts))
	for i, p := range r.Parts {
		out[i] = p.Text
	}
	return out
}

// makeParts cuts the tokens at every chunk start after the first (the first part
// starts at token 0 and the last runs to the end). With no chunk, the whole prompt is
// one part unless it has no word at all.
func makeParts(toks []Token, chunks []chunk) []Part {
	var starts []int
	switch {
	case len(chunks) > 0:
		starts = append(starts, 0)
		for _, c := range chunks[1:] {
			starts = append(starts, c.start)
		}
	default:
		for _, t := range toks {
			if !t.IsPunct() {
				starts = []int{0}
				break
			}
		}
	}
	parts := make([]Part, len(starts))
	for k, s := range starts {
		e := len(toks)
		if k+1 < len(starts) {
			e = starts[k+1]
		}
		p := Part{Start: s, End: e, Ancestor: -1, NounToken: -1}
		var text strings.Builder
		prev := -1
		for i := s; i < e; i++ {
			toks[i].Part = k
			t := toks[i]
			if t.IsPunct() || t.IsStopword() {
				continue
			}
			if prev >= 0 {
				if prev != i-1 || toks[prev].End != t.Start {
					text.WriteByte(' ')
				}
			}
			text.WriteString(t.Text)
			p.Tokens = append(p.Tokens, i)
			if t.IsNoun() {
				p.Noun, p.NounToken = t.Text, i
			}
			prev = i
		}
		p.Text = text.String()
		parts[k] = p
	}
	return parts
}

// assignAncestors is Algorithm 1 (get_phrase_ancestor) keyed by token positions:
// breadth-first from the root, children in token order; where a child's part differs
// from its head's part, the child's part gets as ancestor the part of the child's
// nearest noun ancestor. Later assignments overwrite earlier ones, as in the paper.
// An assignment that would make a part its own ancestor is skipped.
func assignAncestors(toks []Token, t Tree, parts []Part) {
	if len(parts) == 0 || t.Root < 0 {
		return
	}
	children := make([][]int, len(toks))
	for i, h := range t.Heads {
		if h >= 0 {
			children[h] = append(children[h], i)
		}
	}
	queue := []int{t.Root}
	for q := 0; q < len(queue); q++ {
		obj := queue[q]
		for _, c := range children[obj] {
			queue = append(queue, c)
			pc := toks[c].Part
			if pc == toks[obj].Part {
				continue
			}
			for a := obj; a >= 0; a = t.Heads[a] {
				if toks[a].IsNoun() {
					if pa := toks[a].Part; pa != pc {
						parts[pc].Ancestor = pa
					}
					break
				}
			}
		}
	}
}
