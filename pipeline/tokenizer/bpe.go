package tokenizer

import (
	"sync"
)

// bytesToUnicode is CLIP's reversible byte -> rune mapping: printable Latin-1 bytes map
// to themselves, the other 68 bytes to U+0100 and up, in byte order. The returned order
// (printable bytes first) is also the order of the first 256 vocabulary entries.
func bytesToUnicode() (order [256]byte, enc [256]rune) {
	n := 0
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)
	}
	for b := 0; b < 256; b++ {
		if printable(b) {
			order[n] = byte(b)
			enc[b] = rune(b)
			n++
		}
	}
	extra := 0
	for b := 0; b < 256; b++ {
		if !printable(b) {
			order[n] = byte(b)
			enc[b] = rune(256 + extra)
			n++
			extra++
		}
	}
	return order, enc
}

// merge is one BPE rule: the rank of a symbol pair and the id of the merged symbol.
type merge struct {
	rank int32
	id   int32
}

// pairKey packs a symbol pair into one map key.
func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// bpe splits one pre-tokenised word (raw UTF-8 bytes, len > 0) into token ids. Long words
// go to bpeLong, which gives the same result faster; the loop below is the reference:
//
//	symbols = bytes of word, the last one carrying "</w>"
//	repeat: take the adjacent pair with the lowest merge rank (stop if none has one),
//	        merge every occurrence of it left to right
//
// exactly as open_clip's SimpleTokenizer.bpe does on strings.
func (t *Tokenizer) bpe(word string) []int32 {
	if len(word) >= longWord && t.ordered {
		return t.bpeLong(word)
	}
	return t.bpeNaive(word)
}

// bpeNaive is the reference loop of bpe.
func (t *Tokenizer) bpeNaive(word string) []int32 {
	n := len(word)
	syms := make([]int32, n)
	for i := 0; i < n-1; i++ {
		syms[i] = t.byteID[word[i]]
	}
	syms[n-1] = t.byteEndID[word[n-1]]
	for len(syms) > 1 {
		best := merge{rank: -1}
		var first, second int32
		for i := 0; i+1 < len(syms); i++ {
			m, ok := t.ranks[pairKey(syms[i], syms[i+1])]
			if ok && (best.rank < 0 || m.rank < best.rank) {
				best, first, second = m, syms[i], syms[i+1]
			}
		}
		if best.rank < 0 {
			break
		}
		out := syms[:0]
		for i := 0; i < len(syms); {
			if i+1 < len(syms) && syms[i] == first && syms[i+1] == second {
				out = append(out, best.id)
				i += 2
			} else {
				out = append(out, syms[i])
				i++
			}
		}
		syms = out
	}
	return syms
}

// wordCache memoises bpe per word. It is safe for concurrent use and holds at most max
// words; when full, an arbitrary entry is evicted for each new one.
type wordCache struct {
	mu    sync.RWMutex
	max   int
	words map[string][]int32
}

func newWordCache(max int) *wordCache {
	return &wordCache{max: max, words: make(map[string][]int32)}
}

func (c *wordCache) get(w string) ([]int32, bool) {
	c.mu.RLock()
	ids, ok := c.words[w]
	c.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(w string, ids []int32) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.words[w]; ok {
		return
	}
	for k := range c.words {
		if len(c.words) < c.max {
			break
		}
		delete(c.words, k)
	}
	c.words[w] = ids
}

func (c *wordCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.words)
}

// longWord is the word length (bytes) from which bpe uses the heap-based bpeLong.
const longWord = 48

// bpeLong computes exactly what bpe does in O(n log n) instead of O(n²), so that one huge
// word cannot stall a request. Every adjacent ranked pair sits in a min-heap keyed by
// (rank, position); popping in that order merges the occurrences of the lowest-ranked
// pair left to right, as bpe does. It relies on the vocabulary being "ordered": every
// pair containing a symbol ranks after every merge that creates that symbol, so merging
// never creates a pair that bpe would have merged earlier. New checks that property and
// leaves t.ordered false otherwise.
func (t *Tokenizer) bpeLong(word string) []int32 {
	n := len(word)
	id := make([]int32, n)
	next := make([]int32, n)
	prev := make([]int32, n)
	for i := 0; i < n; i++ {
		id[i] = t.byteID[word[i]]
		next[i] = int32(i + 1)
		prev[i] = int32(i - 1)
	}
	id[n-1] = t.byteEndID[word[n-1]]
	next[n-1] = -1
	h := make(pairHeap, 0, n)
	push := func(l int32) {
		if l < 0 || next[l] < 0 {
			return
		}
		r := next[l]
		if m, ok := t.ranks[pairKey(id[l], id[r])]; ok {
			h.push(candidate{rank: m.rank, pos: l, left: id[l], right: id[r]})
		}
	}
	for i := int32(0); i+1 < int32(n); i++ {
		push(i)
	}
	dead := make([]bool, n)
	for len(h) > 0 {
		c := h.pop()
		r := next[c.pos]
		if dead[c.pos] || r < 0 || id[c.pos] != c.left || id[r] != c.right {
			continue // stale: a neighbour was merged since this pair was pushed
		}
		id[c.pos] = t.ranks[pairKey(c.left, c.right)].id
		dead[r] = true
		next[c.pos] = next[r]
		if next[r] >= 0 {
			prev[next[r]] = c.pos
		}
		push(prev[c.pos])
		push(c.pos)
	}
	out := make([]int32, 0, n)
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, id[i])
	}
	return out
}

// candidate is one ranked pair of adjacent symbols: the left one at index pos.
type candidate struct {
	rank, pos   int32
	left, right int32
}

// pairHeap is a binary min-heap of candidates ordered by (rank, pos).
type pairHeap []candidate

func (h pairHeap) less(i, j int) bool {
	return h[i].rank < h[j].rank || (h[i].rank == h[j].rank && h[i].pos < h[j].pos)
}

func (h *pairHeap) push(c candidate) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *pairHeap) pop() candidate {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s.less(l, m) {
			m = l
		}
		if r < len(s) && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// mergesOrdered reports whether every merge ranks after all merges that create its two
// symbols (the property bpeLong needs). created[id] is the highest rank creating id.
func mergesOrdered(ranks map[uint64]merge) bool {
	created := make(map[int32]int32, len(ranks))
	for _, m := range ranks {
		if r, ok := created[m.id]; !ok || m.rank > r {
			created[m.id] = m.rank
		}
	}
	for k, m := range ranks {
		a, b := int32(uint32(k>>32)), int32(uint32(k))
		if r, ok := created[a]; ok && r >= m.rank {
			return false
		}
		if r, ok := created[b]; ok && r >= m.rank {
			return false
		}
	}
	return true
}
