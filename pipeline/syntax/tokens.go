package syntax

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jdkato/prose/v2"
)

// Token is one word or punctuation mark of the prompt.
type Token struct {
	// Text is the token as written: prompt[Start:End].
	Text string
	// Tag is the Penn Treebank part-of-speech tag (prose's tagger, then the
	// corrections listed in doc.go).
	Tag string
	// Start and End are byte offsets into the original prompt (End exclusive).
	Start, End int
	// Weight is the user's emphasis weight for this token (1 when none; see doc.go).
	Weight float64
	// Part is the index of the part holding this token, or -1 when there are no parts.
	Part int

	word string // what the tagger saw (curly quotes and "|" normalised)
}

// IsNoun reports whether the token is a noun (NN, NNS, NNP, NNPS).
func (t Token) IsNoun() bool { return isNounTag(t.Tag) }

// IsPunct reports whether the token is punctuation (every rune is ASCII punctuation
// or Unicode punctuation); such tokens are dropped from a part's text.
func (t Token) IsPunct() bool {
	if t.word != "" {
		return isPunctText(t.word)
	}
	return isPunctText(t.Text)
}

// IsStopword reports whether the token is an NLTK English stopword (see stopwords.go);
// such tokens are dropped from a part's text.
func (t Token) IsStopword() bool {
	if t.word != "" {
		return isStopword(t.word)
	}
	return isStopword(t.Text)
}

// tokenize runs prose's tokenizer over the cleaned text and maps every token back to
// the original prompt.
func tokenize(prompt string, c cleaned) ([]Token, []string, error) {
	// prose lower-cases a span before looking for "'s" and then slices the original
	// with the index it found: a rune whose lower case has another UTF-8 length
	// ("ẞ", "İ") shifts that index. Give prose an ASCII stand-in of the same length.
	pt := proseSafe(c.text)
	doc, err := prose.NewDocument(pt,
		prose.WithTagging(false), prose.WithExtraction(false), prose.WithSegmentation(false))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: prose tokenizer: %v", ErrInternal, err)
	}
	type span struct{ a, b int }
	var spans []span
	pos := 0
	for _, ptok := range doc.Tokens() {
		w := ptok.Text
		if w == "" {
			continue
		}
		off := strings.Index(pt[pos:], w)
		if off < 0 {
			return nil, nil, fmt.Errorf("%w: token %q not found after byte %d of the cleaned prompt",
				ErrInternal, w, pos)
		}
		a, b := pos+off, pos+off+len(w)
		pos = b
		for a > 0 && !utf8.RuneStart(pt[a]) { // never split a rune
			a--
		}
		for b < len(pt) && !utf8.RuneStart(pt[b]) {
			b++
		}
		if k := len(spans) - 1; k >= 0 && a < spans[k].b {
			spans[k].b = max(spans[k].b, b)
			continue
		}
		spans = append(spans, span{a, b})
	}
	toks := make([]Token, 0, len(spans))
	words := make([]string, 0, len(spans))
	for _, s := range spans {
		start, end := c.lo[s.a], c.hi[s.b-1]
		if start >= end { // only inserted bytes: nothing of the prompt (cannot happen)
			continue
		}
		w := c.text[s.a:s.b]
		toks = append(toks, Token{
			Text:   prompt[start:end],
			Start:  start,
			End:    end,
			Weight: c.weight[s.a],
			Part:   -1,
			word:   w,
		})
		words = append(words, w)
	}
	return toks, words, nil
}

// proseSafe replaces every rune whose lower case has a different UTF-8 length with
// as many 'x' as it has bytes (same length, same token boundaries).
func proseSafe(s string) string {
	var b []byte
	for i, r := range s {
		n := utf8.RuneLen(r)
		if r < utf8.RuneSelf || utf8.RuneLen(unicode.ToLower(r)) == n {
			continue
		}
		if b == nil {
			b = []byte(s)
		}
		for k := 0; k < n; k++ {
			b[i+k] = 'x'
		}
	}
	if b == nil {
		return s
	}
	return string(b)
}

// fixTags applies the corrections documented in doc.go to the tagger's output.
func fixTags(toks []Token, words []string, tags []string) {
	for i := range toks {
		w, tag := words[i], tags[i]
		lw := strings.ToLower(w)
		switch {
		case isPunctText(w):
			if !isPunctTag(tag) && tag != "POS" {
				tag = "SYM"
			}
			if w == "," { // "|" and BREAK are list separators too
				tag = ","
			}
		case isEmoji(w):
			tag = "NN"
		case tag == "-NONE-" && isNumeric(w):
			tag = "CD"
		case tag == "-NONE-" || tag == "":
			tag = "SYM"
		case countNounRE.MatchString(lw):
			tag = "NN"
		}
		toks[i].Tag = tag
	}
	contextFixes(toks)
}

// contextFixes are a few transformation rules (Brill-style) for the tagger's most
// common mistakes on prompts, which are mostly lower-case noun phrases without a
// verb. Each rule looks at the neighbours' tags; R1 runs over the prompt first, then
// R2 to R6, left to right, the first matching rule winning:
//
//	R1 NN  -> VBG  an "-ing" word after a noun or adjective and before IN/DT/PRP$/TO/RP
//	               ("a boy playing with"), unless it is an "-ing" noun (ingNouns)
//	R2 JJ  -> NN   after DT/PRP$/CD/JJ and before a verb form, IN, DT, TO, the end, or a
//	               comma not followed by another modifier ("a little girl holding")
//	R3 JJ  -> NN   after a noun and before the end or a comma/full stop ("times square")
//	R4 RB  -> JJ   right before a noun ("long hair"), except true adverbs (adverbs)
//	R5 VB* -> NN   (VB/VBP/VBZ/VBD) alone between list separators ("warm light, snow")
//	   RB  -> JJ   alone between list separators ("..., ugly")
//	R6 VB/VBD/VBP -> NN, VBZ -> NNS  right after a determiner ("a rose")
//	R7 NN  -> VBN  after a noun and before IN/RP/TO, for "-ed" words and irregular
//	               participles ("a temple hidden in the jungle")
//	R8 NN  -> IN   "front"/"top" in "in front of", "on top of"
//	R9 CD  -> NN/NNS after DT/PRP$ when no noun follows ("in his 30s")
func contextFixes(toks []Token) {
	tagAt := func(i int) string {
		if i < 0 || i >= len(toks) {
			return ""
		}
		return toks[i].Tag
	}
	boundary := func(i int) bool {
		if i < 0 || i >= len(toks) {
			return true
		}
		switch toks[i].Tag {
		case ",", ".", ":":
			return true
		}
		return false
	}
	for i := range toks { // R1 first: R2 looks at its result
		tag, w := toks[i].Tag, strings.ToLower(toks[i].word)
		prev, next := tagAt(i-1), tagAt(i+1)
		if tag == "NN" && len(w) > 4 && strings.HasSuffix(w, "ing") && !ingNouns[w] &&
			(isNounTag(prev) || prev == "JJ") &&
			(next == "IN" || next == "DT" || next == "PRP$" || next == "TO" || next == "RP") {
			toks[i].Tag = "VBG"
		}
	}
	for i := range toks {
		tag, w := toks[i].Tag, strings.ToLower(toks[i].word)
		prev, next := tagAt(i-1), tagAt(i+1)
		switch {
		case tag == "JJ" && (prev == "DT" || prev == "PRP$" || prev == "CD" || prev == "JJ") &&
			(i+1 == len(toks) || isVerbTag(next) || next == "IN" || next == "DT" || next == "TO" ||
				next == "." || next == ":" ||
				(next == "," && !(premodifiable(tagAt(i+2)) || isNounTag(tagAt(i+2))))):
			toks[i].Tag = "NN"
		case tag == "JJ" && isNounTag(prev) && (i+1 == len(toks) || next == "," || next == "."):
			toks[i].Tag = "NN"
		case isAdvTag(tag) && isNounTag(next) && !adverbs[w] && !isVerbTag(prev) && prev != "MD":
			toks[i].Tag = "JJ"
		case boundary(i-1) && boundary(i+1) && (tag == "VB" || tag == "VBP" || tag == "VBZ" || tag == "VBD"):
			toks[i].Tag = "NN"
		case boundary(i-1) && boundary(i+1) && isAdvTag(tag) && !adverbs[w]:
			toks[i].Tag = "JJ"
		case (tag == "VB" || tag == "VBD" || tag == "VBP") && (prev == "DT" || prev == "PRP$" || prev == "PDT"):
			toks[i].Tag = "NN"
		case tag == "VBZ" && (prev == "DT" || prev == "PRP$" || prev == "PDT"):
			toks[i].Tag = "NNS"
		case tag == "NN" && isNounTag(prev) && (next == "IN" || next == "RP" || next == "TO") &&
			(participles[w] || (len(w) > 4 && strings.HasSuffix(w, "ed") && !edNouns[w])):
			toks[i].Tag = "VBN" // "a temple hidden in the jungle"
		case (w == "front" || w == "top") && i > 0 && i+1 < len(toks) && prev == "IN" &&
			strings.EqualFold(toks[i+1].word, "of"):
			toks[i].Tag = "IN" // "in front of", "on top of": one preposition
		case tag == "CD" && (prev == "DT" || prev == "PRP$") &&
			!(isNounTag(next) || isAdjTag(next) || next == "CD"):
			if strings.HasSuffix(w, "s") {
				toks[i].Tag = "NNS"
			} else {
				toks[i].Tag = "NN"
			}
		}
	}
}

// ingNouns are nouns ending in "-ing" that R1 must not turn into verbs.
var ingNouns = wordSet(`painting building ceiling clothing lighting drawing wedding
morning evening ring king wing string spring thing swing ending rendering feeling
earring sibling pudding stocking awning icing dumpling railing setting opening
carving engraving bedding filling frosting herring sling viking duckling darling
offering clearing dwelling housing lining marking sapling seating shading siding
wording`)

// participles are irregular past participles R7 recognises.
var participles = wordSet(`hidden broken frozen fallen forgotten woven drawn made built
sunken stolen shaken beaten written torn worn sewn grown thrown blown shown known
driven ridden eaten bitten chosen spoken swollen carved cast set lit spun hung`)

// edNouns end in "-ed" but are nouns.
var edNouns = wordSet(`steed speed breed tweed creed greed bleed seaweed hundred
sacred tripod`)

// adverbs are adverbs R4/R5 leave alone even before a noun or alone in a segment.
var adverbs = wordSet(`very too so quite just only also even really not n't almost
nearly rather pretty always never ever still then now here there again yet maybe
perhaps else`)

func wordSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

// countNounRE matches booru-style count tags ("1girl", "2boys"): nouns.
var countNounRE = regexp.MustCompile(`^\d+(?:girls?|boys?|others?|koma)$`)

func isNounTag(tag string) bool {
	return tag == "NN" || tag == "NNS" || tag == "NNP" || tag == "NNPS"
}
func isAdjTag(tag string) bool  { return tag == "JJ" || tag == "JJR" || tag == "JJS" }
func isAdvTag(tag string) bool  { return tag == "RB" || tag == "RBR" || tag == "RBS" }
func isVerbTag(tag string) bool { return len(tag) >= 2 && tag[:2] == "VB" }
func isPartTag(tag string) bool { return tag == "VBN" || tag == "VBG" }

func isPunctTag(tag string) bool {
	switch tag {
	case ",", ".", ":", "(", ")", "``", "''", "#", "$", "SYM", "-":
		return true
	}
	return false
}

// isPunctText reports whether every rune of w is punctuation: ASCII punctuation
// (Python's string.punctuation, as in the reference) or a Unicode P* rune.
func isPunctText(w string) bool {
	if w == "" {
		return false
	}
	for _, r := range w {
		if r < utf8.RuneSelf {
			if !strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", r) {
				return false
			}
		} else if !unicode.IsPunct(r) {
			return false
		}
	}
	return true
}

// isEmoji reports whether w is made of pictographs (emoji blocks, misc symbols,
// dingbats) plus joiners and variation selectors: such a token names a thing.
func isEmoji(w string) bool {
	pict := false
	for _, r := range w {
		switch {
		case r >= 0x1F000 && r <= 0x1FAFF, r >= 0x2600 && r <= 0x27BF:
			pict = true
		case r == 0x200D, r >= 0xFE00 && r <= 0xFE0F, r >= 0x1F3FB && r <= 0x1F3FF,
			r >= 0xE0020 && r <= 0xE007F:
		default:
			return false
		}
	}
	return pict
}

func isNumeric(w string) bool {
	digits := false
	for _, r := range w {
		switch {
		case r >= '0' && r <= '9':
			digits = true
		case r == '.' || r == ',' || r == '-' || r == '+':
		default:
			return false
		}
	}
	return digits
}
