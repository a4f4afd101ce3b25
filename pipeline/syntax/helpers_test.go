package syntax

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	sharedOnce   sync.Once
	sharedParser *Parser
	sharedErr    error
)

// testParser returns one Parser for the whole test binary (loading the model takes
// about 0.3 s).
func testParser(tb testing.TB) *Parser {
	tb.Helper()
	sharedOnce.Do(func() { sharedParser, sharedErr = New(Options{}) })
	require.NoError(tb, sharedErr)
	return sharedParser
}

// corpusCase is one hand-checked prompt of testdata/corpus.json.
type corpusCase struct {
	Name   string         `json:"name"`
	Prompt string         `json:"prompt"`
	Parts  []expectedPart `json:"parts"`
	// Note explains a known failure: Parts holds the correct answer and the code
	// does not produce it yet. The test reports such cases by name instead of failing.
	Note string `json:"note,omitempty"`
}

type expectedPart struct {
	Text     string `json:"text"`
	Noun     string `json:"noun"`
	Ancestor int    `json:"ancestor"`
}

func loadCorpus(tb testing.TB) []corpusCase {
	tb.Helper()
	b, err := os.ReadFile("testdata/corpus.json")
	require.NoError(tb, err)
	var doc struct {
		Cases []corpusCase `json:"cases"`
	}
	require.NoError(tb, json.Unmarshal(b, &doc))
	require.NotEmpty(tb, doc.Cases)
	return doc.Cases
}

func gotParts(r *Result) []expectedPart {
	out := make([]expectedPart, len(r.Parts))
	for i, p := range r.Parts {
		out[i] = expectedPart{Text: p.Text, Noun: p.Noun, Ancestor: p.Ancestor}
	}
	return out
}

// invariantErrors lists every violation of what must hold for any successful parse
// (nil when all hold).
func invariantErrors(r *Result, fixes int) (errs []string) {
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Sprintf("prompt %q: "+format, append([]any{r.Prompt}, args...)...))
	}
	if fixes != 0 {
		fail("the tree builder had to repair %d cycles", fixes)
	}
	// tokens
	prevEnd := 0
	allPunct := true
	for i, tk := range r.Tokens {
		if tk.Start < prevEnd || tk.End <= tk.Start || tk.End > len(r.Prompt) {
			fail("token %d has bad offsets [%d,%d) after %d", i, tk.Start, tk.End, prevEnd)
			return errs
		}
		prevEnd = tk.End
		if r.Prompt[tk.Start:tk.End] != tk.Text {
			fail("token %d text %q != prompt[%d:%d]", i, tk.Text, tk.Start, tk.End)
		}
		if !utf8.ValidString(tk.Text) {
			fail("token %d text %q is not utf-8", i, tk.Text)
		}
		if tk.Tag == "" {
			fail("token %d %q has no tag", i, tk.Text)
		}
		if math.IsNaN(tk.Weight) || math.Abs(tk.Weight) > MaxWeight {
			fail("token %d weight %v", i, tk.Weight)
		}
		if !tk.IsPunct() {
			allPunct = false
		}
	}
	// parts tile the tokens in order
	if len(r.Parts) == 0 {
		if !allPunct {
			fail("no parts although some token is a word")
		}
		for i, tk := range r.Tokens {
			if tk.Part != -1 {
				fail("token %d has part %d but there are no parts", i, tk.Part)
			}
		}
	} else {
		if r.Parts[0].Start != 0 || r.Parts[len(r.Parts)-1].End != len(r.Tokens) {
			fail("parts span [%d,%d) of %d tokens", r.Parts[0].Start, r.Parts[len(r.Parts)-1].End, len(r.Tokens))
		}
		for k, p := range r.Parts {
			if p.Start >= p.End {
				fail("part %d is empty [%d,%d)", k, p.Start, p.End)
			}
			if k > 0 && r.Parts[k-1].End != p.Start {
				fail("part %d starts at %d, part %d ends at %d", k, p.Start, k-1, r.Parts[k-1].End)
			}
			if p.Ancestor < -1 || p.Ancestor >= len(r.Parts) || p.Ancestor == k {
				fail("part %d has ancestor %d", k, p.Ancestor)
			}
			var words []string
			prev := p.Start - 1
			for _, ti := range p.Tokens {
				if ti <= prev || ti >= p.End {
					fail("part %d token list %v is not inside [%d,%d) in order", k, p.Tokens, p.Start, p.End)
					break
				}
				prev = ti
				tk := r.Tokens[ti]
				if tk.IsPunct() || tk.IsStopword() {
					fail("part %d keeps punctuation/stopword %q", k, tk.Text)
				}
				words = append(words, tk.Text)
			}
			if got := strings.Join(strings.Fields(p.Text), ""); got != strings.Join(words, "") {
				fail("part %d text %q does not match its tokens %q", k, p.Text, words)
			}
			if (p.NounToken < 0) != (p.Noun == "") {
				fail("part %d noun %q vs noun token %d", k, p.Noun, p.NounToken)
			}
			if p.NounToken >= 0 {
				tk := r.Tokens[p.NounToken]
				if !tk.IsNoun() || tk.Text != p.Noun || tk.Part != k {
					fail("part %d noun %q is token %d %q/%s", k, p.Noun, p.NounToken, tk.Text, tk.Tag)
				}
			}
			hasNoun := false
			for i := p.Start; i < p.End; i++ {
				if r.Tokens[i].Part != k {
					fail("token %d says part %d, is in part %d", i, r.Tokens[i].Part, k)
				}
				hasNoun = hasNoun || r.Tokens[i].IsNoun()
			}
			if len(r.Parts) > 1 && !hasNoun {
				fail("part %d of %d has no noun", k, len(r.Parts))
			}
		}
	}
	// the tree
	n := len(r.Tokens)
	if len(r.Tree.Heads) != n || len(r.Tree.Labels) != n {
		fail("tree has %d heads, %d labels for %d tokens", len(r.Tree.Heads), len(r.Tree.Labels), n)
		return errs
	}
	if n > 0 {
		if r.Tree.Root < 0 || r.Tree.Root >= n || r.Tree.Heads[r.Tree.Root] != -1 {
			fail("bad root %d", r.Tree.Root)
			return errs
		}
		for i, h := range r.Tree.Heads {
			if i != r.Tree.Root && (h < 0 || h >= n || h == i) {
				fail("token %d has head %d", i, h)
				return errs
			}
			if r.Tree.Labels[i] == "" {
				fail("token %d has no label", i)
			}
			x, steps := i, 0
			for x != r.Tree.Root && steps <= n {
				x, steps = r.Tree.Heads[x], steps+1
			}
			if x != r.Tree.Root {
				fail("token %d does not reach the root", i)
				return errs
			}
		}
	} else if r.Tree.Root != -1 {
		fail("root %d without tokens", r.Tree.Root)
	}
	// the contract JSON
	js, err := r.JSON()
	if err != nil {
		fail("JSON: %v", err)
		return errs
	}
	if !json.Valid(js) {
		fail("invalid JSON %s", js)
		return errs
	}
	var back struct {
		Parts []map[string]json.RawMessage `json:"parts"`
	}
	if err := json.Unmarshal(js, &back); err != nil || back.Parts == nil || len(back.Parts) != len(r.Parts) {
		fail("JSON %s does not round-trip (%v)", js, err)
	}
	return errs
}

func TestInvariantsCatchBreakage(t *testing.T) {
	// the checker itself must be able to fail
	p := testParser(t)
	r, fixes, err := p.parse("a cat on a mat")
	require.NoError(t, err)
	require.Empty(t, invariantErrors(r, fixes))
	r.Parts[1].Ancestor = 1
	assert.NotEmpty(t, invariantErrors(r, fixes), "a self-ancestor must be reported")
	r.Parts[1].Ancestor = 0
	r.Tokens[0].End++
	assert.NotEmpty(t, invariantErrors(r, fixes), "bad offsets must be reported")
	r.Tokens[0].End--
	r.Tree.Heads[r.Tree.Root] = 1
	assert.NotEmpty(t, invariantErrors(r, fixes), "a cycle must be reported")
}
