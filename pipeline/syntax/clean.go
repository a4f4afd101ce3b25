package syntax

import (
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Weights of the emphasis syntax (AUTOMATIC1111 conventions).
const (
	// ParenWeight multiplies the weight of the words inside "( )".
	ParenWeight = 1.1
	// BracketWeight multiplies the weight of the words inside "[ ]".
	BracketWeight = 1 / 1.1
	// MaxWeight bounds the magnitude of a token's weight (deep nesting or a huge
	// ":number" would otherwise overflow).
	MaxWeight = 100.0
)

// cleaned is the prompt with the weight syntax removed: the text prose's tokenizer
// sees, with, for every byte of it, the original bytes it came from and the weight
// in force there.
type cleaned struct {
	text   string
	lo, hi []int     // text[i] came from prompt[lo[i]:hi[i]] (empty for inserted spaces)
	weight []float64 // the user's weight at text[i]
}

// byte roles of the bracket pre-pass.
const (
	roleCopy  = iota
	roleBlank // syntax: becomes a space
	roleEsc   // the backslash of an escape: dropped, the next byte is copied
	roleOpen  // opening bracket: becomes a space, pushes a weight
	roleClose // matched closing bracket: becomes a space, pops the weight
)

// clean strips the emphasis syntax from prompt (which must be valid UTF-8).
//
//   - "(x)" weighs x by 1.1, "[x]" by 1/1.1, "(x:1.3)" by 1.3; groups nest and multiply;
//     an unclosed group runs to the end of the prompt; an unmatched closer is dropped.
//   - "[x:n]" and "[a:b:n]" (prompt editing) keep their words, drop the number and do
//     not change the weight. "{x}" is a plain group (weight 1).
//   - "|" (alternation) and the keyword "BREAK" become list separators (a comma);
//     the keyword "AND" becomes "and".
//   - "<lora:name:0.8>" and other "<kind:...>" extra-network tags are removed.
//   - "\(" "\)" "\[" "\]" "\{" "\}" "\\" are literal characters.
//   - Curly quotes and "&rsquo;" become ASCII (prose's own substitutions), and a space
//     is inserted after a comma or colon glued to the next word ("cat,dog"), except
//     between digits ("1,000", "16:9").
func clean(p string) cleaned {
	n := len(p)
	role := make([]byte, n)
	openW := make(map[int]float64)
	var stack []int
	for i := 0; i < n; i++ {
		c := p[i]
		switch c {
		case '\\':
			if i+1 < n && strings.IndexByte(`()[]{}\`, p[i+1]) >= 0 {
				role[i] = roleEsc
				i++
			}
		case '<':
			if j := extraNetworkEnd(p, i); j > 0 {
				for k := i; k < j; k++ {
					role[k] = roleBlank
				}
				i = j - 1
			}
		case '(', '[', '{':
			stack = append(stack, i)
		case ')', ']', '}':
			if len(stack) == 0 || p[stack[len(stack)-1]] != opener(c) {
				role[i] = roleBlank
				continue
			}
			o := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			w := groupWeight(c)
			if c != '}' {
				if ns, v, ok := weightSuffix(p, o+1, i); ok {
					for k := ns; k < i; k++ {
						role[k] = roleBlank
					}
					if c == ')' {
						w = v
					} else {
						w = 1 // prompt editing, not de-emphasis
					}
				}
			}
			role[o], role[i] = roleOpen, roleClose
			openW[o] = w
		}
	}
	for _, o := range stack { // unclosed groups apply to the rest of the prompt
		role[o] = roleOpen
		openW[o] = groupWeight(closer(p[o]))
	}

	out := make([]byte, 0, n+8)
	c := cleaned{lo: make([]int, 0, n+8), hi: make([]int, 0, n+8), weight: make([]float64, 0, n+8)}
	cur := 1.0
	var saved []float64
	emit := func(s string, lo, hi int) {
		for k := 0; k < len(s); k++ {
			out = append(out, s[k])
			c.lo = append(c.lo, lo)
			c.hi = append(c.hi, hi)
			c.weight = append(c.weight, cur)
		}
	}
	for i := 0; i < n; {
		switch role[i] {
		case roleEsc:
			emit(p[i+1:i+2], i, i+2)
			i += 2
			continue
		case roleBlank:
			emit(" ", i, i)
			i++
			continue
		case roleOpen:
			saved = append(saved, cur)
			cur = clampWeight(cur * openW[i])
			emit(" ", i, i)
			i++
			continue
		case roleClose:
			if len(saved) > 0 {
				cur = saved[len(saved)-1]
				saved = saved[:len(saved)-1]
			}
			emit(" ", i, i)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(p[i:])
		switch {
		case r == '|':
			emit(",", i, i+1)
			emit(" ", i+1, i+1)
		case r == ',' || r == ':':
			emit(p[i:i+1], i, i+1)
			if gluedSeparator(p, i) {
				emit(" ", i+1, i+1)
			}
		case r == '\u201c' || r == '\u201d':
			emit(`"`, i, i+size)
		case r == '\u2018' || r == '\u2019':
			emit("'", i, i+size)
		case r == '&' && strings.HasPrefix(p[i:], "&rsquo;"):
			emit("'", i, i+len("&rsquo;"))
			size = len("&rsquo;")
		case r == 'B' && isKeyword(p, i, "BREAK"):
			emit(" , ", i, i+5)
			size = 5
		case r == 'A' && isKeyword(p, i, "AND"):
			for k := 0; k < 3; k++ {
				emit(string("and"[k]), i+k, i+k+1)
			}
			size = 3
		default:
			for k := 0; k < size; k++ {
				emit(p[i+k:i+k+1], i+k, i+k+1)
			}
		}
		i += size
	}
	c.text = string(out)
	return c
}

func opener(c byte) byte {
	switch c {
	case ')':
		return '('
	case ']':
		return '['
	}
	return '{'
}

func closer(c byte) byte {
	switch c {
	case '(':
		return ')'
	case '[':
		return ']'
	}
	return '}'
}

func groupWeight(close byte) float64 {
	switch close {
	case ')':
		return ParenWeight
	case ']':
		return BracketWeight
	}
	return 1
}

func clampWeight(w float64) float64 {
	if math.IsNaN(w) {
		return 1
	}
	return math.Max(-MaxWeight, math.Min(MaxWeight, w))
}

// weightSuffix finds ":number" (spaces allowed around the number) ending right before
// p[end], inside the group that starts at p[from]. It returns where the suffix starts.
func weightSuffix(p string, from, end int) (start int, w float64, ok bool) {
	j := end
	for j > from && isSpaceByte(p[j-1]) {
		j--
	}
	e := j
	digits := false
	for j > from && (isDigit(p[j-1]) || p[j-1] == '.') {
		digits = digits || isDigit(p[j-1])
		j--
	}
	if !digits {
		return 0, 0, false
	}
	if j > from && (p[j-1] == '+' || p[j-1] == '-') {
		j--
	}
	num := p[j:e]
	for j > from && isSpaceByte(p[j-1]) {
		j--
	}
	if j <= from || p[j-1] != ':' {
		return 0, 0, false
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, 0, false
	}
	return j - 1, v, true
}

// extraNetworkEnd returns the end of an A1111 extra-network tag ("<lora:name:0.8>")
// starting at p[i], or 0 if there is none.
func extraNetworkEnd(p string, i int) int {
	j := i + 1
	for j < len(p) && (isDigit(p[j]) || isASCIILetter(p[j]) || p[j] == '_' || p[j] == '-') {
		j++
	}
	if j == i+1 || j >= len(p) || p[j] != ':' {
		return 0
	}
	for ; j < len(p); j++ {
		switch p[j] {
		case '>':
			return j + 1
		case '<', '\n':
			return 0
		}
	}
	return 0
}

// gluedSeparator reports whether the comma or colon at p[i] is glued to the next word
// (so a space must be inserted for prose's tokenizer), digits on both sides excepted.
func gluedSeparator(p string, i int) bool {
	if i+1 >= len(p) {
		return false
	}
	next, _ := utf8.DecodeRuneInString(p[i+1:])
	if unicode.IsSpace(next) {
		return false
	}
	if i > 0 && isDigit(p[i-1]) && isDigit(p[i+1]) {
		return false
	}
	return true
}

// isKeyword reports whether p[i:] starts with the whole word kw.
func isKeyword(p string, i int, kw string) bool {
	if !strings.HasPrefix(p[i:], kw) {
		return false
	}
	if i > 0 {
		r, _ := utf8.DecodeLastRuneInString(p[:i])
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return false
		}
	}
	if j := i + len(kw); j < len(p) {
		r, _ := utf8.DecodeRuneInString(p[j:])
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool       { return c >= '0' && c <= '9' }
func isASCIILetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isSpaceByte(c byte) bool   { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
