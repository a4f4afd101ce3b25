package tokenizer

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Clean returns text as open_clip's "lower" clean function leaves it before
// pre-tokenisation:
//
//	whitespace_clean(basic_clean(text)).lower()
//	basic_clean(t)      = html.unescape(html.unescape(ftfy.fix_text(t))).strip()
//	whitespace_clean(t) = " ".join(t.split())
//
// ftfy.fix_text is ported without its mojibake repair (fix_encoding); see the package
// documentation. Offsets reported by Tokens refer to the string Clean returns.
func Clean(text string) (string, error) {
	if !utf8.ValidString(text) {
		return "", fmt.Errorf("%w: text of %d bytes", ErrInvalidUTF8, len(text))
	}
	return clean(text), nil
}

// clean is Clean for text already known to be valid UTF-8.
func clean(s string) string {
	if !plainASCII(s) {
		s = fixText(s)
		s = htmlUnescape(htmlUnescape(s))
	}
	s = collapseSpace(s)
	return pyLower(s)
}

// plainASCII reports whether s is printable ASCII (plus tab, newline, form feed and
// carriage return) without '&': on such text ftfy and html.unescape change nothing.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\f' && c != '\r') || c > 0x7e || c == '&' {
			return false
		}
	}
	return true
}

// fixText ports ftfy.fix_text with its default configuration minus fix_encoding. The text
// is fixed line by line (each segment ends after a '\n'); HTML entities are unescaped
// until the first segment that contains '<', and from then on not at all, as ftfy does.
func fixText(s string) string {
	var b strings.Builder
	unescape := true
	for len(s) > 0 {
		end := strings.IndexByte(s, '\n') + 1
		if end == 0 {
			end = len(s)
		}
		seg := s[:end]
		s = s[end:]
		if unescape && strings.IndexByte(seg, '<') >= 0 {
			unescape = false
		}
		b.WriteString(fixSegment(seg, unescape))
	}
	return b.String()
}

// fixSegment ports ftfy.fix_and_explain: the fixers run in ftfy's order until the text
// stops changing.
func fixSegment(s string, unescape bool) string {
	for {
		orig := s
		if unescape {
			s = ftfyUnescape(s)
		}
		// fix_encoding (mojibake repair) is not ported.
		s = mapRunes(s, fixC1)
		s = mapRunes(s, func(r rune) (string, bool) { v, ok := ligatures[r]; return v, ok })
		s = mapRunes(s, func(r rune) (string, bool) { v, ok := widthMap[r]; return v, ok })
		s = mapRunes(s, uncurl)
		s = fixLineBreaks(s)
		// fix_surrogates: Go strings that pass utf8.ValidString hold no surrogates.
		s = removeTerminalEscapes(s)
		s = mapRunes(s, removeControl)
		s = norm.NFC.String(s)
		if s == orig {
			return s
		}
	}
}

// mapRunes replaces every rune for which f reports true by f's string; it returns s
// itself when nothing is replaced.
func mapRunes(s string, f func(rune) (string, bool)) string {
	for i, r := range s {
		if _, ok := f(r); !ok {
			continue
		}
		var b strings.Builder
		b.Grow(len(s))
		b.WriteString(s[:i])
		for _, r := range s[i:] {
			if v, ok := f(r); ok {
				b.WriteString(v)
			} else {
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	return s
}

// fixC1 is ftfy's fix_c1_controls: U+0080..U+009F are decoded as sloppy Windows-1252.
func fixC1(r rune) (string, bool) {
	if r < 0x80 || r > 0x9f {
		return "", false
	}
	return string(sloppyWindows1252[r-0x80]), true
}

// uncurl is ftfy's uncurl_quotes: [\u02bc\u2018-\u201b] -> ' and [\u201c-\u201f] -> ".
func uncurl(r rune) (string, bool) {
	switch {
	case r == 0x02bc || (r >= 0x2018 && r <= 0x201b):
		return "'", true
	case r >= 0x201c && r <= 0x201f:
		return `"`, true
	}
	return "", false
}

// removeControl is ftfy's remove_control_chars.
func removeControl(r rune) (string, bool) {
	if inRanges(r, controlRanges) {
		return "", true
	}
	return "", false
}

// fixLineBreaks is ftfy's fix_line_breaks: \r\n, \r, U+2028, U+2029 and U+0085 become \n.
func fixLineBreaks(s string) string {
	if !strings.ContainsAny(s, "\r\u2028\u2029\u0085") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.NewReplacer("\r", "\n", "\u2028", "\n", "\u2029", "\n", "\u0085", "\n").Replace(s)
}

// removeTerminalEscapes is ftfy's remove_terminal_escapes: it deletes matches of
// "\x1b\[((?:\d|;)*)([a-zA-Z])" where \d is any Unicode decimal digit (Python's re).
func removeTerminalEscapes(s string) string {
	if strings.IndexByte(s, 0x1b) < 0 {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "\x1b[")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i + 2
		for j < len(s) {
			r, n := utf8.DecodeRuneInString(s[j:])
			if r != ';' && !unicode.Is(unicode.Nd, r) {
				break
			}
			j += n
		}
		if j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
			b.WriteString(s[:i])
			s = s[j+1:]
			continue
		}
		b.WriteString(s[:i+1])
		s = s[i+1:]
	}
}

// isPySpace reports whether Python's str.isspace is true for r.
func isPySpace(r rune) bool {
	if r < 0x80 {
		return r == ' ' || (r >= '\t' && r <= '\r') || (r >= 0x1c && r <= 0x1f)
	}
	return inRanges(r, pythonSpaceRanges)
}

// inRanges reports whether r lies in one of the sorted inclusive ranges.
func inRanges(r rune, ranges [][2]rune) bool {
	lo, hi := 0, len(ranges)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case r < ranges[m][0]:
			hi = m
		case r > ranges[m][1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// collapseSpace is " ".join(s.split()) with Python's whitespace (which also strips).
func collapseSpace(s string) string {
	simple := true
	prevSpace := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			simple = false
			break
		}
		sp := isPySpace(rune(c))
		if sp && (c != ' ' || prevSpace) {
			simple = false
			break
		}
		prevSpace = sp
	}
	if simple && !prevSpace {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, isPySpace), " ")
}

// pyLower is Python's str.lower: the full lower-case mapping (U+0130 becomes "i\u0307")
// plus the Final_Sigma rule for U+03A3.
func pyLower(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch {
		case r < 0x80:
			if r >= 'A' && r <= 'Z' {
				r += 'a' - 'A'
			}
			b.WriteByte(byte(r))
		case r == 0x3a3:
			if finalSigma(s, i) {
				b.WriteRune(0x3c2)
			} else {
				b.WriteRune(0x3c3)
			}
		default:
			if v, ok := pythonLower[r]; ok {
				b.WriteString(v)
			} else {
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// finalSigma reports whether the capital sigma at byte i of s is in the Final_Sigma
// context: \p{Cased}\p{Case_Ignorable}* before it and no \p{Case_Ignorable}*\p{Cased} after.
func finalSigma(s string, i int) bool {
	j := i
	before := false
	for j > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:j])
		j -= n
		if !caseIgnorable(r) {
			before = cased(r)
			break
		}
	}
	if !before {
		return false
	}
	for _, r := range s[i+utf8.RuneLen(0x3a3):] {
		if !caseIgnorable(r) {
			return !cased(r)
		}
	}
	return true
}

// cased is Unicode's Cased property: Lu, Ll, Lt, Other_Lowercase, Other_Uppercase.
func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// caseIgnorable is Unicode's Case_Ignorable property: Mn, Me, Cf, Lm, Sk and the
// Word_Break classes MidLetter, MidNumLet and Single_Quote.
func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0xb7, 0x387, 0x55f, 0x5f4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xfe13, 0xfe52, 0xfe55, 0xff07, 0xff0e, 0xff1a:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}
