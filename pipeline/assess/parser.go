package assess

import (
	"github.com/grefine/grefine/pipeline/aq"
	"github.com/grefine/grefine/pipeline/syntax"
)

// SyntaxParser adapts a syntax.Parser to Parser.
type SyntaxParser struct{ P *syntax.Parser }

// Parts parses prompt and returns its parts for the AQ maths.
func (s SyntaxParser) Parts(prompt string) ([]aq.Part, error) {
	r, err := s.P.Parse(prompt)
	if err != nil {
		return nil, err
	}
	parts := make([]aq.Part, len(r.Parts))
	for i, p := range r.Parts {
		parts[i] = aq.Part{Text: p.Text, Noun: p.Noun, Ancestor: p.Ancestor}
	}
	return parts, nil
}
