package syntax

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jdkato/prose/v2"
	"github.com/mingrammer/commonregex"
)

// tagger is prose/v2's averaged-perceptron POS tagger (a port of TextBlob's
// "fast and accurate" tagger), run over prose's own embedded weights.
//
// Why not call prose for the tags: prose's tokenizer caches the tokens of a
// repeated whitespace-separated span and hands out the same *Token pointers for
// every occurrence, so the tagger's write of occurrence k overwrites the tag of
// every earlier occurrence ("the light is light and ..." tags both "light" JJ).
// The tagging algorithm itself is correct; only its storage is shared. This type
// repeats prose's tag loop exactly, one output slot per position, and breaks score
// ties by class name (prose breaks them by map order). tagger_test.go checks that
// it agrees with prose wherever prose is not affected by the sharing bug.
//
// A tagger is read-only after newTagger and safe for concurrent use.
type tagger struct {
	weights map[string][]classWeight // feature -> its non-zero class weights
	tagMap  map[string]string        // words with a fixed tag
	classes []string                 // sorted, indexed by classWeight.class
}

type classWeight struct {
	class  int
	weight float64
}

// proseAsset is where prose/v2 v2.0.0 embeds its tagger model.
const proseAsset = "model/AveragedPerceptron/"

// newTagger decodes prose's embedded perceptron model (about 0.3 s).
func newTagger() (*tagger, error) {
	t := &tagger{}
	var weights map[string]map[string]float64
	for _, a := range []struct {
		name string
		dst  any
	}{
		{"classes.gob", &t.classes},
		{"tags.gob", &t.tagMap},
		{"weights.gob", &weights},
	} {
		b, err := prose.Asset(proseAsset + a.name)
		if err != nil {
			return nil, fmt.Errorf("%w: prose asset %s: %v", ErrModel, a.name, err)
		}
		if err := gob.NewDecoder(bytes.NewReader(b)).Decode(a.dst); err != nil {
			return nil, fmt.Errorf("%w: decode prose asset %s: %v", ErrModel, a.name, err)
		}
	}
	if len(weights) == 0 || len(t.classes) == 0 {
		return nil, fmt.Errorf("%w: prose tagger model is empty", ErrModel)
	}
	// index the classes (sorted, so that ties go to the smaller name)
	index := map[string]int{}
	for _, ws := range weights {
		for c := range ws {
			index[c] = 0
		}
	}
	for _, c := range t.classes {
		index[c] = 0
	}
	t.classes = t.classes[:0]
	for c := range index {
		t.classes = append(t.classes, c)
	}
	sort.Strings(t.classes)
	for i, c := range t.classes {
		index[c] = i
	}
	t.weights = make(map[string][]classWeight, len(weights))
	for f, ws := range weights {
		cw := make([]classWeight, 0, len(ws))
		for c, w := range ws {
			cw = append(cw, classWeight{index[c], w})
		}
		t.weights[f] = cw
	}
	return t, nil
}

// Regular expressions of prose's tagger, kept verbatim.
var (
	tagNoneRE = regexp.MustCompile(`^(?:0|\*[\w?]\*|\*\-\d{1,3}|\*[A-Z]+\*\-\d{1,3}|\*)$`)
	tagKeepRE = regexp.MustCompile(`^\-[A-Z]{3}\-$`)
)

// tag returns one Penn Treebank tag per word, exactly as prose/v2 computes them.
func (t *tagger) tag(words []string) []string {
	tags := make([]string, len(words))
	ctx := make([]string, len(words)+4)
	ctx[0], ctx[1] = "-START-", "-START2-"
	for i, w := range words {
		ctx[i+2] = normalizeWord(w)
	}
	ctx[len(ctx)-2], ctx[len(ctx)-1] = "-END-", "-END2-"
	p1, p2 := "-START-", "-START2-"
	for i, w := range words {
		var tag string
		switch {
		case w == "-":
			tag = "-"
		case isEmoticon(w):
			tag = "SYM"
		case commonregex.LinkRegex.MatchString(w) || commonregex.EmailRegex.MatchString(w) ||
			strings.HasPrefix(w, "@"):
			tag = "NN"
		case tagNoneRE.MatchString(w):
			tag = "-NONE-"
		case tagKeepRE.MatchString(w):
			tag = w
		default:
			var ok bool
			if tag, ok = t.tagMap[w]; !ok {
				tag = t.predict(featurize(i, ctx, w, p1, p2))
			}
		}
		tags[i] = tag
		p2, p1 = p1, tag
	}
	return tags
}

// predict scores every class and returns the best; ties go to the smaller name.
// Features are summed in template order so that the floating-point sums, and so the
// answer, never depend on map order (prose sums in map order, which makes near-ties
// non-deterministic).
func (t *tagger) predict(feats []string) string {
	n := len(t.classes)
	scores := make([]float64, n)
	touched := make([]bool, n) // like prose, only classes some feature scores compete
	for _, f := range feats {
		for _, cw := range t.weights[f] {
			scores[cw.class] += cw.weight
			touched[cw.class] = true
		}
	}
	best := -1
	for i, s := range scores {
		if touched[i] && (best < 0 || s > scores[best]) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return t.classes[best]
}

// featurize is prose's feature template (byte-based, like the original). Every
// feature has a distinct prefix, so each occurs once (value 1).
func featurize(i int, ctx []string, w, p1, p2 string) []string {
	suf := min(len(w), 3)
	i = min(len(ctx)-2, i+2)
	iminus := min(len(ctx[i-1]), 3)
	iplus := min(len(ctx[i+1]), 3)
	return []string{
		"bias",
		"i suffix " + w[len(w)-suf:],
		"i pref1 " + string(w[0]),
		"i-1 tag " + p1,
		"i-2 tag " + p2,
		"i tag+i-2 tag " + p1 + " " + p2,
		"i word " + ctx[i],
		"i-1 tag+i word " + p1 + " " + ctx[i],
		"i-1 word " + ctx[i-1],
		"i-1 suffix " + ctx[i-1][len(ctx[i-1])-iminus:],
		"i-2 word " + ctx[i-2],
		"i+1 word " + ctx[i+1],
		"i+1 suffix " + ctx[i+1][len(ctx[i+1])-iplus:],
		"i+2 word " + ctx[i+2],
	}
}

// normalizeWord is prose's word normalisation for the context window.
func normalizeWord(w string) string {
	if w == "" {
		return w
	}
	first := string(w[0])
	if strings.Contains(w, "-") && first != "-" {
		return "!HYPHEN"
	} else if _, err := strconv.Atoi(w); err == nil && len(w) == 4 {
		return "!YEAR"
	} else if _, err := strconv.Atoi(first); err == nil {
		return "!DIGITS"
	}
	return strings.ToLower(w)
}

// isEmoticon reports whether prose's tokenizer and tagger treat w as an emoticon
// (prose's list, copied because it is unexported).
func isEmoticon(w string) bool {
	_, ok := emoticons[w]
	return ok
}

var emoticons = map[string]struct{}{
	"(-8": {}, "(-;": {}, "(-_-)": {}, "(._.)": {}, "(:": {}, "(=": {}, "(o:": {},
	"(¬_¬)": {}, "(ಠ_ಠ)": {}, "(╯°□°）╯︵┻━┻": {}, "-__-": {}, "8-)": {}, "8-D": {},
	"8D": {}, ":(": {}, ":((": {}, ":(((": {}, ":()": {}, ":)))": {}, ":-)": {},
	":-))": {}, ":-)))": {}, ":-*": {}, ":-/": {}, ":-X": {}, ":-]": {}, ":-o": {},
	":-p": {}, ":-x": {}, ":-|": {}, ":-}": {}, ":0": {}, ":3": {}, ":P": {}, ":]": {},
	":`(": {}, ":`)": {}, ":`-(": {}, ":o": {}, ":o)": {}, "=(": {}, "=)": {}, "=D": {},
	"=|": {}, "@_@": {}, "O.o": {}, "O_o": {}, "V_V": {}, "XDD": {}, "[-:": {},
	"^___^": {}, "o_0": {}, "o_O": {}, "o_o": {}, "v_v": {}, "xD": {}, "xDD": {},
	"¯\\(ツ)/¯": {},
}
