package tokenizer

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const vocabPath = "testdata/bpe_simple_vocab_16e6.txt.gz"

// goldens mirrors testdata/goldens.json (written by tools/export/tokenizer_goldens.py).
type goldens struct {
	OpenClipVersion string `json:"open_clip_version"`
	FtfyVersion     string `json:"ftfy_version"`
	UnicodeVersion  string `json:"unicode_version"`
	ContextLength   int    `json:"context_length"`
	SOT             int32  `json:"sot"`
	EOT             int32  `json:"eot"`
	VocabSize       int    `json:"vocab_size"`
	VocabSHA256     string `json:"vocab_sha256"`
	TablesSHA256    string `json:"tables_sha256"`
	Cases           []struct {
		Name      string  `json:"name"`
		Text      string  `json:"text"`
		Clean     string  `json:"clean"`
		Tokens    []int32 `json:"tokens"`
		IDs       []int32 `json:"ids"`
		Decoded   string  `json:"decoded"`
		MustMatch bool    `json:"must_match"`
		Reason    string  `json:"reason"`
	} `json:"cases"`
	Decode []struct {
		Name string  `json:"name"`
		IDs  []int32 `json:"ids"`
		Text string  `json:"text"`
	} `json:"decode"`
	CharClasses []charRange `json:"char_classes"`
}

// charRange is one [lo, hi, class] entry of goldens.char_classes.
type charRange struct {
	Lo, Hi rune
	Class  string
}

func (c *charRange) UnmarshalJSON(b []byte) error {
	var v [3]any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	lo, ok1 := v[0].(float64)
	hi, ok2 := v[1].(float64)
	cls, ok3 := v[2].(string)
	if !ok1 || !ok2 || !ok3 {
		return fmt.Errorf("bad char class range %s", b)
	}
	c.Lo, c.Hi, c.Class = rune(lo), rune(hi), cls
	return nil
}

var (
	sharedOnce sync.Once
	sharedTok  *Tokenizer
	sharedErr  error
	goldOnce   sync.Once
	gold       goldens
	goldErr    error
)

// testTokenizer loads the vocabulary from testdata once per test binary.
func testTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	sharedOnce.Do(func() { sharedTok, sharedErr = Load(vocabPath) })
	require.NoError(t, sharedErr)
	return sharedTok
}

func loadGoldens(t testing.TB) *goldens {
	t.Helper()
	goldOnce.Do(func() {
		b, err := os.ReadFile("testdata/goldens.json")
		if err != nil {
			goldErr = err
			return
		}
		goldErr = json.Unmarshal(b, &gold)
	})
	require.NoError(t, goldErr, "run tools/export/tokenizer_goldens.py")
	return &gold
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestGeneratedFilesFresh fails when the vocabulary or tables_gen.go no longer match the
// goldens they were generated with.
func TestGeneratedFilesFresh(t *testing.T) {
	g := loadGoldens(t)
	assert.Equal(t, g.VocabSHA256, fileSHA256(t, vocabPath), "vocabulary differs from the goldens' one")
	assert.Equal(t, g.TablesSHA256, fileSHA256(t, "tables_gen.go"),
		"tables_gen.go is stale or hand-edited: rerun tools/export/tokenizer_goldens.py")
	assert.Equal(t, ContextLength, g.ContextLength)
	assert.Equal(t, SOT, g.SOT)
	assert.Equal(t, EOT, g.EOT)
	assert.Equal(t, VocabSize, g.VocabSize)
	assert.Equal(t, VocabSize, testTokenizer(t).VocabSize())
	assert.Equal(t, g.UnicodeVersion, unicodeDataVersion)
}

func TestGoldens(t *testing.T) {
	tok := testTokenizer(t)
	g := loadGoldens(t)
	must := 0
	for _, c := range g.Cases {
		if !c.MustMatch {
			continue
		}
		must++
		t.Run(c.Name, func(t *testing.T) {
			cl, err := Clean(c.Text)
			require.NoError(t, err)
			assert.Equal(t, c.Clean, cl, "clean")

			toks, err := tok.EncodeTokens(c.Text)
			require.NoError(t, err)
			assert.Equal(t, c.Tokens, nonNil(toks), "tokens")

			ids, info, err := tok.Encode(c.Text)
			require.NoError(t, err)
			assert.Equal(t, c.IDs, ids[:], "ids")
			wantDropped := max(0, len(c.Tokens)-(ContextLength-2))
			assert.Equal(t, wantDropped, info.Dropped, "dropped")
			assert.Equal(t, wantDropped > 0, info.Truncated, "truncated")
			assert.Equal(t, min(len(c.Tokens)+2, ContextLength), info.NumTokens, "num tokens")
			assert.Equal(t, EOT, ids[info.NumTokens-1])

			dec, err := tok.Decode(c.Tokens)
			require.NoError(t, err)
			assert.Equal(t, c.Decoded, dec, "decode")
		})
	}
	require.GreaterOrEqual(t, must, 300, "too few must-match goldens")
}

// TestGoldensNotPorted reports the strings whose reference relies on ftfy's mojibake
// repair. They are not required to match; the log says which do anyway.
func TestGoldensNotPorted(t *testing.T) {
	tok := testTokenizer(t)
	g := loadGoldens(t)
	for _, c := range g.Cases {
		if c.MustMatch {
			continue
		}
		ids, _, err := tok.Encode(c.Text)
		require.NoError(t, err)
		cl, _ := Clean(c.Text)
		t.Logf("%s: not ported (%s); reference clean %q, ours %q, ids match: %v",
			c.Name, c.Reason, c.Clean, cl, assert.ObjectsAreEqual(c.IDs, ids[:]))
	}
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

func TestDecodeGoldens(t *testing.T) {
	tok := testTokenizer(t)
	g := loadGoldens(t)
	require.NotEmpty(t, g.Decode)
	for _, c := range g.Decode {
		t.Run(c.Name, func(t *testing.T) {
			got, err := tok.Decode(c.IDs)
			require.NoError(t, err)
			assert.Equal(t, c.Text, got)
		})
	}
}

// TestTokensOffsets checks Tokens against the goldens and checks that every token's
// offsets cut exactly its bytes out of the cleaned text.
func TestTokensOffsets(t *testing.T) {
	tok := testTokenizer(t)
	g := loadGoldens(t)
	for _, c := range g.Cases {
		if !c.MustMatch {
			continue
		}
		cl, toks, err := tok.Tokens(c.Text)
		require.NoError(t, err)
		require.Equal(t, c.Clean, cl, c.Name)
		ids := []int32{}
		prevWord, prevEnd := -1, 0
		for i, tk := range toks {
			ids = append(ids, tk.ID)
			require.True(t, tk.Start >= 0 && tk.Start < tk.End && tk.End <= len(cl), "%s token %d: %+v", c.Name, i, tk)
			if tk.Word == prevWord {
				assert.Equal(t, prevEnd, tk.Start, "%s token %d not contiguous", c.Name, i)
			} else {
				assert.Equal(t, prevWord+1, tk.Word, "%s token %d word index", c.Name, i)
				assert.GreaterOrEqual(t, tk.Start, prevEnd, "%s token %d overlaps", c.Name, i)
			}
			want := tok.raw[tk.ID]
			if tk.ID != SOT && tk.ID != EOT {
				want = bytes.TrimSuffix(want, []byte("</w>"))
			}
			assert.Equal(t, string(want), cl[tk.Start:tk.End], "%s token %d bytes", c.Name, i)
			prevWord, prevEnd = tk.Word, tk.End
		}
		assert.Equal(t, c.Tokens, ids, c.Name)
	}
}

func TestTokensWords(t *testing.T) {
	tok := testTokenizer(t)
	cl, toks, err := tok.Tokens("A (Best Quality:1.2), it's  CAFÉ")
	require.NoError(t, err)
	require.Equal(t, "a (best quality:1.2), it's café", cl)
	var words []string
	for _, tk := range toks {
		for len(words) <= tk.Word {
			words = append(words, "")
		}
		words[tk.Word] += cl[tk.Start:tk.End]
	}
	assert.Equal(t, []string{"a", "(", "best", "quality", ":", "1", ".", "2", "),", "it", "'s", "café"}, words)
}

func TestEncodeTruncation(t *testing.T) {
	tok := testTokenizer(t)
	for _, tc := range []struct {
		name    string
		words   int
		dropped int
	}{
		{name: "empty", words: 0},
		{name: "one", words: 1},
		{name: "fits", words: ContextLength - 2},
		{name: "one_over", words: ContextLength - 1, dropped: 1},
		{name: "far_over", words: 500, dropped: 500 - (ContextLength - 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.TrimSpace(strings.Repeat("cat ", tc.words))
			ids, info, err := tok.Encode(text)
			require.NoError(t, err)
			assert.Equal(t, tc.dropped, info.Dropped)
			assert.Equal(t, tc.dropped > 0, info.Truncated)
			assert.Equal(t, min(tc.words+2, ContextLength), info.NumTokens)
			assert.Equal(t, SOT, ids[0])
			assert.Equal(t, EOT, ids[info.NumTokens-1])
			for i := 1; i < info.NumTokens-1; i++ {
				assert.Equal(t, ids[1], ids[i], "position %d", i)
			}
			for i := info.NumTokens; i < ContextLength; i++ {
				assert.Equal(t, Pad, ids[i], "padding at %d", i)
			}
		})
	}
}

func TestInvalidUTF8(t *testing.T) {
	tok := testTokenizer(t)
	for _, s := range []string{"\xff", "abc\xc3", "\xed\xa0\x80", "ok \xe2\x82 ok"} {
		_, _, err := tok.Encode(s)
		assert.ErrorIs(t, err, ErrInvalidUTF8, "%q", s)
		_, err = tok.EncodeTokens(s)
		assert.ErrorIs(t, err, ErrInvalidUTF8, "%q", s)
		_, _, err = tok.Tokens(s)
		assert.ErrorIs(t, err, ErrInvalidUTF8, "%q", s)
		_, err = Clean(s)
		assert.ErrorIs(t, err, ErrInvalidUTF8, "%q", s)
	}
	_, _, err := tok.EncodeBatch([]string{"fine", "bad\xff"})
	assert.ErrorIs(t, err, ErrInvalidUTF8)
	assert.Contains(t, err.Error(), "text 1")
}

func TestEncodeBatch(t *testing.T) {
	tok := testTokenizer(t)
	texts := []string{"a photo of a cat", "", strings.Repeat("dog ", 100)}
	ids, infos, err := tok.EncodeBatch(texts)
	require.NoError(t, err)
	require.Len(t, ids, len(texts))
	require.Len(t, infos, len(texts))
	for i, s := range texts {
		want, wantInfo, err := tok.Encode(s)
		require.NoError(t, err)
		assert.Equal(t, want, ids[i])
		assert.Equal(t, wantInfo, infos[i])
	}
	assert.True(t, infos[2].Truncated)
}

func TestDecodeErrors(t *testing.T) {
	tok := testTokenizer(t)
	for _, id := range []int32{-1, VocabSize, 1 << 30} {
		_, err := tok.Decode([]int32{320, id})
		assert.ErrorIs(t, err, ErrTokenID, "%d", id)
		_, err = tok.TokenText(id)
		assert.ErrorIs(t, err, ErrTokenID, "%d", id)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	tok := testTokenizer(t)
	ids, info, err := tok.Encode("A Photo of a CAT, 4k!")
	require.NoError(t, err)
	got, err := tok.Decode(ids[1 : info.NumTokens-1])
	require.NoError(t, err)
	assert.Equal(t, "a photo of a cat , 4 k ! ", got)
}

func gz(t *testing.T, s string) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, err := w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return &b
}

func TestNewErrors(t *testing.T) {
	_, err := New(strings.NewReader("not gzip"))
	assert.ErrorIs(t, err, ErrVocab)
	_, err = New(gz(t, "#version\nh e\n"))
	assert.ErrorIs(t, err, ErrVocab, "too few merges")
	_, err = New(gz(t, "#version\nh e x\n"))
	assert.ErrorIs(t, err, ErrVocab, "three fields")
	_, err = New(gz(t, "#version\n\u4e00 e\n"))
	assert.ErrorIs(t, err, ErrVocab, "unknown symbol")
	_, err = Load(filepath.Join(t.TempDir(), "missing.txt.gz"))
	assert.ErrorIs(t, err, ErrVocab)
}

func TestNewIgnoresExtraLines(t *testing.T) {
	// open_clip reads the first 48894 merges only; anything after must not matter.
	raw, err := os.ReadFile(vocabPath)
	require.NoError(t, err)
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	require.NoError(t, err)
	var plain bytes.Buffer
	_, err = plain.ReadFrom(zr)
	require.NoError(t, err)
	lines := strings.Split(plain.String(), "\n")
	require.Greater(t, len(lines), numMerges+1)
	text := strings.Join(lines[:numMerges+1], "\n") + "\nthis line has three\n"
	tok2, err := New(gz(t, text))
	require.NoError(t, err)
	a, _, err := tok2.Encode("a photo of a cat")
	require.NoError(t, err)
	b, _, err := testTokenizer(t).Encode("a photo of a cat")
	require.NoError(t, err)
	assert.Equal(t, b, a)
}

// TestConcurrent encodes the goldens from many goroutines with a cache small enough to
// evict all the time; results must not change.
func TestConcurrent(t *testing.T) {
	base := testTokenizer(t)
	tok := *base
	tok.cache = newWordCache(8)
	g := loadGoldens(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := range g.Cases {
				c := g.Cases[(i+w*37)%len(g.Cases)]
				if !c.MustMatch {
					continue
				}
				ids, _, err := tok.Encode(c.Text)
				if err != nil {
					errs <- err
					return
				}
				if !assert.ObjectsAreEqual(c.IDs, ids[:]) {
					errs <- fmt.Errorf("%s: ids differ under concurrency", c.Name)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.LessOrEqual(t, tok.cache.len(), 8)
}

func TestWordCacheBound(t *testing.T) {
	c := newWordCache(3)
	for i := 0; i < 10; i++ {
		c.put(fmt.Sprint(i), []int32{int32(i)})
		assert.LessOrEqual(t, c.len(), 3)
	}
	ids, ok := c.get("9")
	require.True(t, ok, "the newest entry survives")
	assert.Equal(t, []int32{9}, ids)
	off := newWordCache(0)
	off.put("x", []int32{1})
	_, ok = off.get("x")
	assert.False(t, ok, "a zero-size cache stores nothing")
}

func TestDecodeReplace(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string
	}{
		{name: "valid", in: "caf\u00e9 \U0001f600", want: "caf\u00e9 \U0001f600"},
		{name: "truncated_3", in: "\xe2\x82", want: "\ufffd"},
		{name: "truncated_4", in: "\xf0\x9f\x98", want: "\ufffd"},
		{name: "surrogate", in: "\xed\xa0\x80", want: "\ufffd\ufffd\ufffd"},
		{name: "overlong", in: "\xc0\xaf", want: "\ufffd\ufffd"},
		{name: "lone_cont", in: "\x80a", want: "\ufffda"},
		{name: "f4_big", in: "\xf4\x90\x80\x80", want: "\ufffd\ufffd\ufffd\ufffd"},
		{name: "real_fffd", in: "\xef\xbf\xbd", want: "\ufffd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decodeReplace([]byte(tc.in))
			assert.Equal(t, tc.want, got)
			assert.True(t, utf8.ValidString(got))
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	tok := testTokenizer(b)
	g := loadGoldens(b)
	var texts []string
	for _, c := range g.Cases {
		if c.MustMatch {
			texts = append(texts, c.Text)
		}
	}
	prompts := []string{
		"masterpiece, (best quality:1.2), 1girl, solo, long hair, looking at viewer, smile",
		"A photo of a woman. Blurry face, distorted hands. Low quality background.",
		"RAW photo, 85mm portrait, f/1.4, bokeh, golden hour, Kodak Portra 400, film grain",
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var long strings.Builder
	for i := 0; i < 10000; i++ {
		long.WriteByte(byte('a' + rng.IntN(26)))
	}
	for _, bc := range []struct {
		name  string
		texts []string
	}{
		{name: "prompts", texts: prompts},
		{name: "goldens", texts: texts},
		{name: "random_word_10k", texts: []string{long.String()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			if bc.name == "random_word_10k" {
				tok := *tok
				tok.cache = newWordCache(0) // measure BPE, not the cache
				b.ResetTimer()
				for b.Loop() {
					if _, _, err := tok.Encode(bc.texts[0]); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			n := 0
			for b.Loop() {
				if _, _, err := tok.Encode(bc.texts[n%len(bc.texts)]); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "strings/s")
		})
	}
}

// TestCharClasses compares the class lookup for every code point with Python's regex
// module (goldens.char_classes).
func TestCharClasses(t *testing.T) {
	g := loadGoldens(t)
	require.NotEmpty(t, g.CharClasses)
	names := map[charClass]string{classLetter: "L", classDigit: "N", classOther: "O", classSpace: "S", classNone: "X"}
	checked, bad := 0, 0
	for _, rg := range g.CharClasses {
		if rg.Class == "U" { // surrogates are not runes
			continue
		}
		for r := rg.Lo; r <= rg.Hi; r++ {
			checked++
			if got := names[charClassOf(r)]; got != rg.Class {
				bad++
				if bad <= 20 {
					t.Errorf("U+%04X: python %s, go %s", r, rg.Class, got)
				}
			}
		}
	}
	assert.Zero(t, bad, "code points classified differently")
	assert.Equal(t, 0x110000-0x800, checked)
}

// regexpOracle is open_clip's pattern in Go's regexp syntax. Go's Unicode tables are
// older than the regex module's, so it is an oracle only for code points both know.
var regexpOracle = regexp.MustCompile(`(?i:<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d)` +
	`|[\p{L}]+|[\p{N}]|[^\s\v\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\p{L}\p{N}\x{345}]+`)

func oracleWords(s string) [][2]int {
	out := [][2]int{}
	for _, m := range regexpOracle.FindAllStringIndex(s, -1) {
		out = append(out, [2]int{m[0], m[1]})
	}
	return out
}

// TestWordsMatchRegexp checks the hand-written pre-tokeniser against Go's regexp on the
// cleaned goldens and on seeded random strings over an alphabet of awkward pieces.
func TestWordsMatchRegexp(t *testing.T) {
	g := loadGoldens(t)
	for _, c := range g.Cases {
		assert.Equal(t, oracleWords(c.Clean), append([][2]int{}, words(nil, c.Clean)...), c.Name)
	}
	pieces := []string{"'", "s", "S", "\u017f", "t", "re", "RE", "ve", "m", "ll", "d", "<", ">", "_",
		"<start_of_text>", "<end_of_text>", "<START_of_text>", "<\u017ftart_of_text>", "start", "of", "text",
		" ", "  ", "\t", "\u00a0", "\u3000", "a", "\u00e9", "\u0345", "\u0301", "1", "23", "\u0661", "\u2163",
		"!", "?!", ",", "\u732b", "\U0001f600", "\u200d", "\ufe0f", "\u03c3", "x\u0345y"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		var b strings.Builder
		for n := rng.IntN(12); n >= 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		s := b.String()
		if !assert.Equal(t, oracleWords(s), append([][2]int{}, words(nil, s)...), "%+q", s) {
			break
		}
	}
}

// TestBPELongMatchesNaive checks the heap-based BPE against the reference loop on every
// golden word and on seeded random words of many lengths.
func TestBPELongMatchesNaive(t *testing.T) {
	tok := testTokenizer(t)
	require.True(t, tok.ordered, "CLIP's merges are expected to be ordered")
	g := loadGoldens(t)
	var ws []string
	for _, c := range g.Cases {
		for _, w := range words(nil, c.Clean) {
			ws = append(ws, c.Clean[w[0]:w[1]])
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabets := []string{"abcdefghijklmnopqrstuvwxyz", "aab", "ing", "!?.,", "0123456789",
		"\u00e9\u732b\u043a\U0001f600"}
	for i := 0; i < 400; i++ {
		a := []rune(alphabets[i%len(alphabets)])
		var b strings.Builder
		for n := 1 + rng.IntN(300); n > 0; n-- {
			b.WriteRune(a[rng.IntN(len(a))])
		}
		ws = append(ws, b.String(), strings.Repeat("ab", 1+i), strings.Repeat("a", 1+i))
	}
	for _, w := range ws {
		want := tok.bpeNaive(w)
		got := tok.bpeLong(w)
		if !assert.Equal(t, want, got, "%+q", w) {
			break
		}
	}
}

func TestMergesOrdered(t *testing.T) {
	// Merge (a,b)->ab at rank 0 and (ab,c)->abc at rank 1 is ordered; swapping the ranks
	// is not.
	const a, b, c, ab, abc = 1, 2, 3, 10, 11
	assert.True(t, mergesOrdered(map[uint64]merge{
		pairKey(a, b): {rank: 0, id: ab}, pairKey(ab, c): {rank: 1, id: abc}}))
	assert.False(t, mergesOrdered(map[uint64]merge{
		pairKey(a, b): {rank: 1, id: ab}, pairKey(ab, c): {rank: 0, id: abc}}))
}
