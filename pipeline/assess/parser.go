package assess

import (
	"github.com/grefine/grefine/pipeline/aq"
	"github.com/grefine/grefine/pipeline/syntax"
)

// SyntaxParser adapts a syntax.Parser to Parser.
type SyntaxParser struct{ P *syntax.Parser }

// Parts parses prompt and returns its text without weight syntax and its parts.
func (s SyntaxParser) Parts(prompt string) (string, []aq.Part, error) {
	r, err := s.P.Parse(prompt)
	if err != nil {
		return "", nil, err
	}
	p := ParsedFrom(r)
	return p.Plain, p.Parts, nil
}

// ParsedFrom is a syntax parse as the indicators read it: the plain text (weight syntax
// removed) and the parts with their head nouns and ancestors.
func ParsedFrom(r *syntax.Result) *Parsed {
	p := &Parsed{Plain: r.PlainText(), Parts: make([]aq.Part, len(r.Parts))}
	for i, pt := range r.Parts {
		p.Parts[i] = aq.Part{Text: pt.Text, Noun: pt.Noun, Ancestor: pt.Ancestor}
	}
	return p
}
