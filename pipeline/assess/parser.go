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
	parts := make([]aq.Part, len(r.Parts))
	for i, p := range r.Parts {
		parts[i] = aq.Part{Text: p.Text, Noun: p.Noun, Ancestor: p.Ancestor}
	}
	return r.PlainText(), parts, nil
}
