package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// ftfyUnescape ports ftfy.fixes.unescape_html: every match of "&#?[0-9A-Za-z]{1,24};"
// that is one of ftfy's entity names is replaced by its text; a numeric reference is
// replaced by html.unescape's result unless that still contains ';'.
func ftfyUnescape(s string) string {
	if strings.IndexByte(s, '&') < 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '&' {
			continue
		}
		j := i + 1
		numeric := j < len(s) && s[j] == '#'
		if numeric {
			j++
		}
		k := j
		for k < len(s) && k-j < 25 && isASCIIAlnum(s[k]) {
			k++
		}
		if k == j || k-j > 24 || k >= len(s) || s[k] != ';' {
			continue
		}
		ref := s[i : k+1]
		repl, ok := ftfyEntities[ref]
		if !ok && numeric {
			if u := htmlUnescape(ref); !strings.Contains(u, ";") {
				repl, ok = u, true
			}
		}
		if !ok {
			i = k
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(repl)
		last = k + 1
		i = k
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// htmlUnescape ports Python's html.unescape: numeric references (decimal and hex, the
// ';' optional) and the HTML5 named references, including the longest-prefix rule for
// names written without ';'.
func htmlUnescape(s string) string {
	if strings.IndexByte(s, '&') < 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if s[i] != '&' {
			i++
			continue
		}
		repl, end, ok := charref(s, i+1)
		if !ok {
			i++
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(repl)
		last, i = end, end
	}
	b.WriteString(s[last:])
	return b.String()
}

// charref matches Python's "&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)"
// with the '&' just before s[i]. It returns the replacement and the end of the match.
func charref(s string, i int) (string, int, bool) {
	if i >= len(s) {
		return "", 0, false
	}
	if s[i] == '#' {
		j := i + 1
		base := 10
		if j < len(s) && (s[j] == 'x' || s[j] == 'X') {
			base = 16
			j++
		}
		k := j
		num := 0
		for k < len(s) && digitValue(s[k], base) >= 0 {
			if num <= 0x10ffff { // saturate: anything larger is out of range anyway
				num = num*base + digitValue(s[k], base)
			}
			k++
		}
		if k == j { // "&#" or "&#x" without digits; the named branch excludes '#'
			return "", 0, false
		}
		if k < len(s) && s[k] == ';' {
			k++
		}
		return numericRef(num), k, true
	}
	// Named: up to 32 code points that are not \t \n \f space < & # ;
	k := i
	n := 0
	for k < len(s) && n < 32 {
		r, size := utf8.DecodeRuneInString(s[k:])
		if r == '\t' || r == '\n' || r == '\f' || r == ' ' || r == '<' || r == '&' || r == '#' || r == ';' {
			break
		}
		k += size
		n++
	}
	if n == 0 {
		return "", 0, false
	}
	if k < len(s) && s[k] == ';' {
		k++
	}
	name := s[i:k]
	if v, ok := html5Entities[name]; ok {
		return v, k, true
	}
	// Longest prefix of at least two code points, shorter than the whole name.
	cut := len(name)
	for {
		_, size := utf8.DecodeLastRuneInString(name[:cut])
		cut -= size
		if utf8.RuneCountInString(name[:cut]) < 2 {
			break
		}
		if v, ok := html5Entities[name[:cut]]; ok {
			return v + name[cut:], k, true
		}
	}
	return "&" + name, k, true
}

// numericRef is the numeric branch of Python's html._replace_charref.
func numericRef(num int) string {
	if v, ok := invalidCharrefs[num]; ok {
		return v
	}
	if (num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff {
		return "\ufffd"
	}
	if invalidCodepoints[num] {
		return ""
	}
	return string(rune(num))
}

// digitValue is the value of the ASCII digit c in base 10 or 16, or -1.
func digitValue(c byte, base int) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case base == 16 && c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case base == 16 && c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func isASCIIAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
