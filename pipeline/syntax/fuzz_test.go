package syntax

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"unicode/utf8"
)

// FuzzParse: no panic, only the documented errors, and every invariant of a parse
// holds (parts tile the tokens, offsets are exact, the tree is a tree, the JSON is
// valid). Run: go test -fuzz=FuzzParse -fuzztime=10m -parallel=1 ./pipeline/syntax
func FuzzParse(f *testing.F) {
	seeds := []string{
		"Mr. Beans wearing sun glasses with blue doctor suit and stripe tie",
		"(red hat:1.2), ((masterpiece)), [word], {a|b}", "[a:b:0.5] cat", "((((((((x",
		"))]]}}", `\(literal\) cat`, "<lora:x:0.8> cat", "cat BREAK dog AND bird",
		", , ,", "", " ", "very beautiful", "🐱 cat 👩‍🚀", "ẞ's İ's n’t don’t", "1,000 cats 16:9",
		"red-haired girl's dress", "a\tcat\nwith\u00a0hat", "the the the", "that which who",
		"is are was", "on in at of", "a cat that the dog chased", "there is", ":)",
	}
	if b, err := os.ReadFile("testdata/corpus.json"); err == nil {
		var doc struct {
			Cases []corpusCase `json:"cases"`
		}
		if json.Unmarshal(b, &doc) == nil {
			for _, c := range doc.Cases {
				seeds = append(seeds, c.Prompt)
			}
		}
	}
	for _, s := range seeds {
		f.Add(s)
	}
	p := testParser(f)
	f.Fuzz(func(t *testing.T, prompt string) {
		r, err := p.Parse(prompt)
		if err != nil {
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrInvalidUTF8) && !errors.Is(err, ErrTooLong) {
				t.Fatalf("prompt %q: unexpected error %v", prompt, err)
			}
			return
		}
		r2, fixes, err := p.parse(prompt)
		if err != nil {
			t.Fatalf("prompt %q: parse after Parse: %v", prompt, err)
		}
		for _, e := range invariantErrors(r2, fixes) {
			t.Error(e)
		}
		if pt := r2.PlainText(); !utf8.ValidString(pt) || len(pt) > 2*len(prompt) {
			t.Errorf("prompt %q: bad plain text %q", prompt, pt)
		}
		a, _ := r.JSON()
		b, _ := r2.JSON()
		if string(a) != string(b) {
			t.Errorf("prompt %q: not deterministic: %s vs %s", prompt, a, b)
		}
	})
}
