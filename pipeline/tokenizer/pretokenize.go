package tokenizer

import (
	"unicode/utf8"
)

// charClass is how open_clip's pre-tokenisation pattern sees one code point.
type charClass uint8

const (
	classOther  charClass = iota // in a run of [^\s\p{L}\p{N}]
	classLetter                  // in a run of [\p{L}]
	classDigit                   // a word of its own ([\p{N}])
	classSpace                   // \s: separates words, never part of one
	classNone                    // matched by no alternative (U+0345 under IGNORECASE): skipped
)

// classRange is one entry of the generated classRanges table.
type classRange struct {
	lo, hi rune
	class  charClass
}

// asciiClass is classRanges for the first 128 code points.
var asciiClass = func() (t [utf8.RuneSelf]charClass) {
	for r := rune(0); r < utf8.RuneSelf; r++ {
		t[r] = lookupClass(r)
	}
	return t
}()

func lookupClass(r rune) charClass {
	lo, hi := 0, len(classRanges)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case r < classRanges[m].lo:
			hi = m
		case r > classRanges[m].hi:
			lo = m + 1
		default:
			return classRanges[m].class
		}
	}
	return classOther
}

func charClassOf(r rune) charClass {
	if r < utf8.RuneSelf {
		return asciiClass[r]
	}
	return lookupClass(r)
}

// literals are the pattern's leading alternatives, tried in order.
var literals = []string{"<start_of_text>", "<end_of_text>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}

// words returns the [start, end) byte ranges of the words of cleaned text s. It is the
// hand-written equivalent of Python's
//
//	re.findall(r"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+", s, re.IGNORECASE)
//
// with the regex module: at each position the first alternative that matches wins (the
// literals compared with simple case folding), letter and other runs are greedy, and a
// position no alternative matches is skipped. Character classes come from the generated
// classRanges, i.e. from the regex module's own Unicode data.
func words(dst [][2]int, s string) [][2]int {
	for i := 0; i < len(s); {
		if s[i] == '<' || s[i] == '\'' {
			if n := matchLiteral(s[i:]); n > 0 {
				dst = append(dst, [2]int{i, i + n})
				i += n
				continue
			}
		}
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		switch c := charClassOf(r); c {
		case classLetter, classOther:
			j := i + size
			for j < len(s) {
				r, n := rune(s[j]), 1
				if r >= utf8.RuneSelf {
					r, n = utf8.DecodeRuneInString(s[j:])
				}
				if charClassOf(r) != c {
					break
				}
				j += n
			}
			dst = append(dst, [2]int{i, j})
			i = j
		case classDigit:
			dst = append(dst, [2]int{i, i + size})
			i += size
		default:
			i += size
		}
	}
	return dst
}

// matchLiteral returns the byte length of the first literal s starts with, or 0.
func matchLiteral(s string) int {
	for _, lit := range literals {
		if n := foldPrefix(s, lit); n > 0 {
			return n
		}
	}
	return 0
}

// foldPrefix returns the byte length of the prefix of s that equals the ASCII literal lit
// under simple case folding, or 0. Besides ASCII case, the only folding that can reach
// these literals' letters is U+017F LATIN SMALL LETTER LONG S to 's'.
func foldPrefix(s, lit string) int {
	i := 0
	for k := 0; k < len(lit); k++ {
		if i >= len(s) {
			return 0
		}
		c := lit[k]
		b := s[i]
		switch {
		case b == c, 'a' <= c && c <= 'z' && b == c-'a'+'A':
			i++
		case c == 's' && b == 0xc5 && i+1 < len(s) && s[i+1] == 0xbf: // U+017F
			i += 2
		default:
			return 0
		}
	}
	return i
}
