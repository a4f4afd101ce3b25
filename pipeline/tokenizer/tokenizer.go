package tokenizer

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// Fixed CLIP constants.
const (
	// ContextLength is the number of token positions CLIP's text encoders take.
	ContextLength = 77
	// VocabSize is the number of tokens: 256 bytes, 256 bytes with "</w>", 48894 merges
	// and the two special tokens.
	VocabSize = 49408
	// SOT is the id of <start_of_text>, the first position of every encoding.
	SOT int32 = 49406
	// EOT is the id of <end_of_text>, the last non-padding position of every encoding.
	EOT int32 = 49407
	// Pad is the id written after EOT.
	Pad int32 = 0
)

// numMerges is how many merge lines open_clip reads: lines[1 : 49152-256-2+1].
const numMerges = 49152 - 256 - 2

// defaultCacheWords bounds the per-tokenizer BPE word cache.
const defaultCacheWords = 1 << 16

// Tokenizer is CLIP's byte-level BPE tokenizer. It is immutable after New except for its
// word cache, and safe for concurrent use.
type Tokenizer struct {
	vocab     []string // id -> token text as in the vocabulary (byte-encoded, maybe "</w>")
	raw       [][]byte // id -> the bytes Decode emits for it ("</w>" kept, replaced later)
	nbytes    []int32  // id -> number of input bytes the token covers
	byteID    [256]int32
	byteEndID [256]int32
	ranks     map[uint64]merge
	ordered   bool // merge ranks allow bpeLong (see mergesOrdered)
	cache     *wordCache
}

// Info describes one encoding.
type Info struct {
	// Truncated is true when the text had more than ContextLength-2 tokens.
	Truncated bool
	// Dropped is how many text tokens were cut (0 unless Truncated).
	Dropped int
	// NumTokens is how many positions hold tokens, SOT and EOT included; the EOT sits
	// at NumTokens-1 and Pad fills the rest.
	NumTokens int
}

// Token is one BPE token of a cleaned text.
type Token struct {
	// ID is the vocabulary id.
	ID int32
	// Word is the index of the pre-tokenised word the token came from (0-based).
	Word int
	// Start and End are byte offsets of the token in the cleaned text (see Clean). A
	// token may start or end inside a multi-byte character.
	Start, End int
}

// Load reads the gzipped merges file (bpe_simple_vocab_16e6.txt.gz) at path.
func Load(path string) (*Tokenizer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVocab, err)
	}
	defer f.Close()
	return New(f)
}

// New reads a gzipped merges file in open_clip's layout: a header line, then one merge
// ("a b") per line, of which the first 48894 are used.
func New(vocabGz io.Reader) (*Tokenizer, error) {
	zr, err := gzip.NewReader(vocabGz)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVocab, err)
	}
	defer zr.Close()
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var merges [][2]string
	for line := 0; sc.Scan() && len(merges) < numMerges; line++ {
		if line == 0 {
			continue // header
		}
		if !utf8.Valid(sc.Bytes()) {
			return nil, fmt.Errorf("%w: line %d is not utf-8", ErrVocab, line+1)
		}
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: line %d has %d fields, want 2", ErrVocab, line+1, len(f))
		}
		merges = append(merges, [2]string{f[0], f[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVocab, err)
	}
	if len(merges) != numMerges {
		return nil, fmt.Errorf("%w: %d merges, want %d", ErrVocab, len(merges), numMerges)
	}
	return build(merges)
}

// build lays out the vocabulary as open_clip does: bytes, bytes+"</w>", merges, specials.
func build(merges [][2]string) (*Tokenizer, error) {
	order, enc := bytesToUnicode()
	t := &Tokenizer{
		vocab:  make([]string, 0, VocabSize),
		nbytes: make([]int32, 0, VocabSize),
		ranks:  make(map[uint64]merge, len(merges)),
		cache:  newWordCache(defaultCacheWords),
	}
	ids := make(map[string]int32, VocabSize)
	add := func(s string, nb int32) {
		ids[s] = int32(len(t.vocab)) // a later duplicate wins, as in Python's dict(zip(...))
		t.vocab = append(t.vocab, s)
		t.nbytes = append(t.nbytes, nb)
	}
	for _, b := range order {
		add(string(enc[b]), 1)
	}
	for _, b := range order {
		add(string(enc[b])+"</w>", 1)
	}
	for _, m := range merges {
		a, aok := ids[m[0]]
		b, bok := ids[m[1]]
		if !aok || !bok {
			return nil, fmt.Errorf("%w: merge %q %q uses an unknown symbol", ErrVocab, m[0], m[1])
		}
		add(m[0]+m[1], t.nbytes[a]+t.nbytes[b])
	}
	add("<start_of_text>", int32(len("<start_of_text>")))
	add("<end_of_text>", int32(len("<end_of_text>")))
	if len(t.vocab) != VocabSize || ids["<start_of_text>"] != SOT || ids["<end_of_text>"] != EOT {
		return nil, fmt.Errorf("%w: %d tokens, want %d", ErrVocab, len(t.vocab), VocabSize)
	}
	for r, m := range merges {
		key := pairKey(ids[m[0]], ids[m[1]])
		t.ranks[key] = merge{rank: int32(r), id: ids[m[0]+m[1]]} // later duplicate wins
	}
	t.ordered = mergesOrdered(t.ranks)
	for b := 0; b < 256; b++ {
		t.byteID[b] = ids[string(enc[b])]
		t.byteEndID[b] = ids[string(enc[b])+"</w>"]
	}
	var dec [0x200]byte // rune -> byte for the byte-encoder's runes
	var known [0x200]bool
	for b := 0; b < 256; b++ {
		dec[enc[b]] = byte(b)
		known[enc[b]] = true
	}
	t.raw = make([][]byte, len(t.vocab))
	for id, s := range t.vocab {
		out := make([]byte, 0, len(s))
		for _, r := range s {
			if r >= 0x200 || !known[r] {
				return nil, fmt.Errorf("%w: token %d (%q) has a rune outside the byte alphabet", ErrVocab, id, s)
			}
			out = append(out, dec[r])
		}
		t.raw[id] = out
	}
	return t, nil
}

// VocabSize returns the number of tokens (always VocabSize for a loaded tokenizer).
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// TokenText returns the vocabulary entry of id (byte-encoded, "</w>" marking a word end).
func (t *Tokenizer) TokenText(id int32) (string, error) {
	if id < 0 || int(id) >= len(t.vocab) {
		return "", fmt.Errorf("%w: %d", ErrTokenID, id)
	}
	return t.vocab[id], nil
}

// wordIDs returns the token ids of one pre-tokenised word, through the cache.
func (t *Tokenizer) wordIDs(w string) []int32 {
	switch w {
	case "<start_of_text>":
		return []int32{SOT}
	case "<end_of_text>":
		return []int32{EOT}
	}
	if ids, ok := t.cache.get(w); ok {
		return ids
	}
	ids := t.bpe(w)
	t.cache.put(w, ids)
	return ids
}

// encodeClean appends the ids of an already cleaned text to dst.
func (t *Tokenizer) encodeClean(dst []int32, s string) []int32 {
	var buf [64][2]int
	for _, w := range words(buf[:0], s) {
		dst = append(dst, t.wordIDs(s[w[0]:w[1]])...)
	}
	return dst
}

// EncodeTokens returns the ids of text without SOT, EOT, padding or truncation, like
// open_clip's SimpleTokenizer.encode.
func (t *Tokenizer) EncodeTokens(text string) ([]int32, error) {
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("%w: text of %d bytes", ErrInvalidUTF8, len(text))
	}
	return t.encodeClean(nil, clean(text)), nil
}

// Encode returns the ContextLength ids open_clip's tokenizer produces for text: SOT, the
// text's tokens, EOT, then Pad. A text with more than ContextLength-2 tokens is cut so
// that EOT stays last; Info says whether and by how much.
func (t *Tokenizer) Encode(text string) ([ContextLength]int32, Info, error) {
	var ids [ContextLength]int32
	if !utf8.ValidString(text) {
		return ids, Info{}, fmt.Errorf("%w: text of %d bytes", ErrInvalidUTF8, len(text))
	}
	var buf [2 * ContextLength]int32
	toks := t.encodeClean(buf[:0], clean(text))
	info := Info{NumTokens: len(toks) + 2}
	if keep := ContextLength - 2; len(toks) > keep {
		info = Info{Truncated: true, Dropped: len(toks) - keep, NumTokens: ContextLength}
		toks = toks[:keep]
	}
	ids[0] = SOT
	copy(ids[1:], toks)
	ids[len(toks)+1] = EOT
	return ids, info, nil
}

// EncodeBatch encodes each text as Encode does. On an error it returns nothing and the
// error names the index of the offending text.
func (t *Tokenizer) EncodeBatch(texts []string) ([][ContextLength]int32, []Info, error) {
	ids := make([][ContextLength]int32, len(texts))
	infos := make([]Info, len(texts))
	for i, s := range texts {
		var err error
		if ids[i], infos[i], err = t.Encode(s); err != nil {
			return nil, nil, fmt.Errorf("text %d: %w", i, err)
		}
	}
	return ids, infos, nil
}

// Tokens returns the cleaned text (see Clean) and its BPE tokens, each with the index of
// the word it came from and its byte offsets in the cleaned text. The ids equal those of
// EncodeTokens; no truncation is applied.
func (t *Tokenizer) Tokens(text string) (string, []Token, error) {
	if !utf8.ValidString(text) {
		return "", nil, fmt.Errorf("%w: text of %d bytes", ErrInvalidUTF8, len(text))
	}
	s := clean(text)
	var toks []Token
	for w, m := range words(nil, s) {
		pos := m[0]
		for _, id := range t.wordIDs(s[m[0]:m[1]]) {
			end := pos + int(t.nbytes[id])
			toks = append(toks, Token{ID: id, Word: w, Start: pos, End: end})
			pos = end
		}
	}
	return s, toks, nil
}

// Decode turns ids back into text as open_clip's SimpleTokenizer.decode does: the
// tokens' bytes are concatenated, decoded as UTF-8 with U+FFFD for each maximal invalid
// sequence, and every "</w>" becomes a space. SOT, EOT and Pad (which is "!") are decoded
// like any other token, so pass ids[1:info.NumTokens-1] to get the prompt back.
func (t *Tokenizer) Decode(ids []int32) (string, error) {
	var b []byte
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.raw) {
			return "", fmt.Errorf("%w: %d", ErrTokenID, id)
		}
		b = append(b, t.raw[id]...)
	}
	return strings.ReplaceAll(decodeReplace(b), "</w>", " "), nil
}

// decodeReplace decodes b as UTF-8 the way Python's bytes.decode("utf-8", "replace")
// does: one U+FFFD per maximal subpart of an ill-formed sequence.
func decodeReplace(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			sb.WriteByte(c)
			i++
			continue
		}
		if r, size := utf8.DecodeRune(b[i:]); r != utf8.RuneError || size > 1 {
			sb.Write(b[i : i+size])
			i += size
			continue
		}
		need, lo, hi := 0, byte(0x80), byte(0xbf)
		switch {
		case c >= 0xc2 && c <= 0xdf:
			need = 1
		case c == 0xe0:
			need, lo = 2, 0xa0
		case c == 0xed:
			need, hi = 2, 0x9f
		case c >= 0xe1 && c <= 0xef:
			need = 2
		case c == 0xf0:
			need, lo = 3, 0x90
		case c == 0xf4:
			need, hi = 3, 0x8f
		case c >= 0xf1 && c <= 0xf3:
			need = 3
		}
		n := 1
		for k := 0; k < need && i+n < len(b) && b[i+n] >= lo && b[i+n] <= hi; k++ {
			n++
			lo, hi = 0x80, 0xbf
		}
		sb.WriteString("\ufffd")
		i += n
	}
	return sb.String()
}
