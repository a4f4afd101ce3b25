package aq

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/pipeline/tokenizer"
)

// Errors wrapped by this package.
var (
	ErrShape  = errors.New("aq: wrong shape")
	ErrConfig = errors.New("aq: bad configuration")
)

// TextEncoder computes template-ensemble text features (see the package doc). It is safe
// for concurrent use.
type TextEncoder struct {
	tok       *tokenizer.Tokenizer
	eng       engine.Engine // clip_text, or clip_text_kv (prefix table set)
	templates []string
	empty     []float32 // R, [D]
	dim       int
	dynamic   bool         // the sequence axis is dynamic: rows may be cut
	prefix    *prefixTable // the kv engine's cached template prefixes, nil for clip_text
	idsName   string
	embName   string
	// MaxBatch bounds rows per engine call (0: unbounded).
	MaxBatch int
	// CallCost is what one engine call costs, in positions, when the rows are planned
	// into length buckets (0: BucketOverhead). A huge value gives one call for all rows,
	// cut after the longest EOT (grefine's behaviour before the buckets).
	CallCost int

	mu    sync.Mutex
	cache map[string]*list.Element
	lru   *list.List
	cap   int
	stats CacheStats
	work  WorkStats
}

// CacheStats counts feature-cache lookups.
type CacheStats struct{ Hits, Misses int }

// WorkStats counts what the text engine was asked to compute: engine calls, template
// rows, and positions (rows × the width of their call, padding included; with the kv
// engine the cached prefixes are not counted: their one-off cost is PrefixPositions).
type WorkStats struct{ Calls, Rows, Positions int }

type cacheEntry struct {
	text string
	f    []float32
}

// Names of the text engines' tensors (DESIGN §2 and the clip_text_kv extension).
const (
	idsName    = "input_ids"
	embedsName = "text_embeds"
)

// NewTextEncoder builds an encoder over a text engine: the model set's clip_text
// (input_ids int32 [B,S] -> text_embeds [B,D]) or, when the set has it, clip_text_kv
// (KVEngine; recognised by its past_keys input), in which case the hidden states of each
// template's tokens before "{}" are computed here, once, and every text only runs the
// tokens from "{}" to EOT. templates must each hold one "{}"; empty is R (the ensemble of
// the empty string, length D); cacheSize bounds the LRU (0 disables caching).
func NewTextEncoder(tok *tokenizer.Tokenizer, eng engine.Engine, templates []string, empty []float32, cacheSize int) (*TextEncoder, error) {
	if len(templates) == 0 {
		return nil, fmt.Errorf("%w: no templates", ErrConfig)
	}
	for i, t := range templates {
		if strings.Count(t, "{}") != 1 {
			return nil, fmt.Errorf("%w: template %d %q must contain one {}", ErrConfig, i, t)
		}
	}
	e := &TextEncoder{tok: tok, eng: eng, templates: templates, empty: empty, dim: len(empty),
		cache: map[string]*list.Element{}, lru: list.New(), cap: cacheSize}
	ins, outs := eng.Inputs(), eng.Outputs()
	if isKV(ins) {
		e.idsName, e.embName, e.dynamic = idsName, embedsName, true
		emb, ok := findDesc(outs, embedsName)
		if !ok || len(emb.Shape) != 2 || emb.Shape[1] != int64(len(empty)) {
			return nil, fmt.Errorf("%w: %s outputs %v do not match the %d-d empty feature", ErrConfig, KVEngine, outs, len(empty))
		}
		p, err := newPrefixTable(context.Background(), tok, eng, templates)
		if err != nil {
			return nil, err
		}
		e.prefix = p
		return e, nil
	}
	if len(ins) != 1 || len(ins[0].Shape) != 2 || len(outs) != 1 || len(outs[0].Shape) != 2 || outs[0].Shape[1] != int64(len(empty)) {
		return nil, fmt.Errorf("%w: clip_text I/O %v -> %v does not match the %d-d empty feature", ErrConfig, ins, outs, len(empty))
	}
	e.idsName, e.embName, e.dynamic = ins[0].Name, outs[0].Name, ins[0].Shape[1] == engine.Dynamic
	return e, nil
}

func findDesc(ds []engine.TensorDesc, name string) (engine.TensorDesc, bool) {
	for _, d := range ds {
		if d.Name == name {
			return d, true
		}
	}
	return engine.TensorDesc{}, false
}

// ParseTemplates splits templates.txt content into templates (blank lines skipped).
func ParseTemplates(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, "\r"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// Dim is the feature size D.
func (e *TextEncoder) Dim() int { return e.dim }

// Stats returns the cache counters.
func (e *TextEncoder) Stats() CacheStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Work returns the engine work done so far by Features (cache misses only).
func (e *TextEncoder) Work() WorkStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.work
}

// Prefixed reports whether the encoder runs the kv engine with cached template prefixes.
func (e *TextEncoder) Prefixed() bool { return e.prefix != nil }

// PrefixPositions is what building the prefix table computed once, at NewTextEncoder
// (table rows × the longest prefix; 0 without the kv engine).
func (e *TextEncoder) PrefixPositions() int {
	if e.prefix == nil {
		return 0
	}
	return e.prefix.Positions
}

// Features returns f(x) for each text, in order. Texts not in the cache are encoded
// together: their len(missing)·len(templates) rows are run in length buckets (see
// encode).
func (e *TextEncoder) Features(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	var missing []string
	seen := map[string]bool{}
	e.mu.Lock()
	for i, t := range texts {
		if el, ok := e.cache[t]; ok {
			e.lru.MoveToFront(el)
			out[i] = el.Value.(*cacheEntry).f
			e.stats.Hits++
		} else if !seen[t] {
			seen[t] = true
			missing = append(missing, t)
			e.stats.Misses++
		}
	}
	e.mu.Unlock()
	if len(missing) > 0 {
		feats, err := e.encode(ctx, missing)
		if err != nil {
			return nil, err
		}
		byText := make(map[string][]float32, len(missing))
		e.mu.Lock()
		for i, t := range missing {
			byText[t] = feats[i]
			e.put(t, feats[i])
		}
		e.mu.Unlock()
		for i, t := range texts {
			if out[i] == nil {
				out[i] = byText[t]
			}
		}
	}
	return out, nil
}

func (e *TextEncoder) put(t string, f []float32) {
	if e.cap <= 0 {
		return
	}
	if el, ok := e.cache[t]; ok {
		e.lru.MoveToFront(el)
		return
	}
	e.cache[t] = e.lru.PushFront(&cacheEntry{text: t, f: f})
	for e.lru.Len() > e.cap {
		old := e.lru.Back()
		e.lru.Remove(old)
		delete(e.cache, old.Value.(*cacheEntry).text)
	}
}

// row is one templated text of an encode call.
type row struct {
	ids  [tokenizer.ContextLength]int32
	n    int // positions holding tokens, SOT and EOT included
	cut  int // positions taken from the prefix table (kv engine), else 0
	slot int // prefix table row (kv engine)
	out  int // index of its embedding (text i, template k: i*K+k)
}

// width is how many positions the engine computes for r.
func (r *row) width() int { return r.n - r.cut }

// encode runs the template ensemble for texts (no cache).
//
// Each of the len(texts)·K rows is tokenised; with the kv engine its cached template
// prefix is cut off (see prefixTable.assign). The rows are sorted by the positions left
// and run in length buckets (planBuckets), each cut after its longest EOT: CLIP's text
// transformer is causal and reads its output at EOT, so the padding after EOT cannot
// change a row's result, and the work approaches the per-row minimum.
func (e *TextEncoder) encode(ctx context.Context, texts []string) ([][]float32, error) {
	K := len(e.templates)
	rows := make([]row, 0, len(texts)*K)
	for i, t := range texts {
		for k, tpl := range e.templates {
			ids, info, err := e.tok.Encode(strings.Replace(tpl, "{}", t, 1))
			if err != nil {
				return nil, fmt.Errorf("aq: text %q: %w", t, err)
			}
			r := row{ids: ids, n: info.NumTokens, out: i*K + k}
			if e.prefix != nil {
				e.prefix.assign(&r, k)
			} else if !e.dynamic {
				r.n = tokenizer.ContextLength // fixed-length export: no cut
			}
			rows = append(rows, r)
		}
	}
	sort.SliceStable(rows, func(a, b int) bool { return rows[a].width() < rows[b].width() })
	widths := make([]int, len(rows))
	for i := range rows {
		widths[i] = rows[i].width()
	}
	emb := make([]float32, len(rows)*e.dim)
	var work WorkStats
	cost := e.CallCost
	if cost <= 0 {
		cost = BucketOverhead
	}
	for _, b := range planBuckets(widths, cost, e.MaxBatch) {
		if err := e.run(ctx, rows[b[0]:b[1]], emb); err != nil {
			return nil, err
		}
		work.Calls++
		work.Rows += b[1] - b[0]
		work.Positions += (b[1] - b[0]) * widths[b[1]-1]
	}
	e.mu.Lock()
	e.work.Calls += work.Calls
	e.work.Rows += work.Rows
	e.work.Positions += work.Positions
	e.mu.Unlock()
	feats := make([][]float32, len(texts))
	for i := range texts {
		feats[i] = Ensemble(emb[i*K*e.dim:(i+1)*K*e.dim], K, e.dim, e.empty)
	}
	return feats, nil
}

// run encodes one bucket of rows (sorted by width, so the last is the widest) and writes
// each row's embedding to emb[r.out·D:].
func (e *TextEncoder) run(ctx context.Context, rows []row, emb []float32) error {
	n, seq := len(rows), rows[len(rows)-1].width()
	ids := make([]int32, n*seq)
	for i := range rows {
		r := &rows[i]
		copy(ids[i*seq:(i+1)*seq], r.ids[r.cut:min(r.cut+seq, tokenizer.ContextLength)])
	}
	x, err := engine.FromInt32(engine.Shape{int64(n), int64(seq)}, ids)
	if err != nil {
		return err
	}
	in := map[string]engine.Tensor{e.idsName: x}
	if e.prefix != nil {
		if err := e.prefix.bind(in, rows); err != nil {
			return err
		}
	}
	res, err := e.eng.Run(ctx, in)
	if err != nil {
		return fmt.Errorf("aq: text encoder: %w", err)
	}
	defer engine.CloseAll(res)
	out, ok := res[e.embName].(*engine.HostTensor)
	if !ok || out.Len() != n*e.dim {
		return fmt.Errorf("%w: text encoder returned %v for %d rows", ErrShape, res[e.embName], n)
	}
	for i := range rows {
		copy(emb[rows[i].out*e.dim:(rows[i].out+1)*e.dim], out.F32[i*e.dim:(i+1)*e.dim])
	}
	return nil
}

// BucketOverhead is the fixed cost of one engine call, in positions, that planBuckets
// weighs against padding (measured on the full-size ViT-B/16 text tower, bench/RESULTS.md).
const BucketOverhead = 16

// planBuckets splits widths (sorted ascending) into consecutive runs [lo, hi), each run
// padded to its widest row, so that Σ rows·widest + overhead·runs is smallest (dynamic
// programming over the distinct widths). Runs longer than maxRows (0: unbounded) are
// split into calls of at most maxRows rows.
func planBuckets(widths []int, overhead, maxRows int) [][2]int {
	// starts of the groups of equal width, plus len(widths)
	var edge []int
	for i := range widths {
		if i == 0 || widths[i] != widths[i-1] {
			edge = append(edge, i)
		}
	}
	edge = append(edge, len(widths))
	m := len(edge) - 1
	cost := make([]int, m+1) // cost[j]: best plan of widths[:edge[j]]
	from := make([]int, m+1)
	for j := 1; j <= m; j++ {
		cost[j] = -1
		for i := 0; i < j; i++ {
			c := cost[i] + (edge[j]-edge[i])*widths[edge[j]-1] + overhead
			if cost[j] < 0 || c < cost[j] {
				cost[j], from[j] = c, i
			}
		}
	}
	var runs [][2]int
	for j := m; j > 0; j = from[j] {
		runs = append(runs, [2]int{edge[from[j]], edge[j]})
	}
	var out [][2]int
	for i := len(runs) - 1; i >= 0; i-- {
		lo, hi := runs[i][0], runs[i][1]
		step := hi - lo
		if maxRows > 0 && maxRows < step {
			step = maxRows
		}
		for ; lo < hi; lo += step {
			out = append(out, [2]int{lo, min(lo+step, hi)})
		}
	}
	return out
}

// Ensemble is f = normalize(mean_k normalize(emb[k])) − R for emb [K, D] (float64
// accumulation). R may be nil (no subtraction).
func Ensemble(emb []float32, K, D int, R []float32) []float32 {
	acc := make([]float64, D)
	for k := 0; k < K; k++ {
		row := emb[k*D : (k+1)*D]
		n := 0.0
		for _, v := range row {
			n += float64(v) * float64(v)
		}
		n = math.Sqrt(n)
		if n == 0 {
			n = 1
		}
		for d, v := range row {
			acc[d] += float64(v) / n
		}
	}
	n := 0.0
	for d := range acc {
		acc[d] /= float64(K)
		n += acc[d] * acc[d]
	}
	n = math.Sqrt(n)
	if n == 0 {
		n = 1
	}
	f := make([]float32, D)
	for d := range f {
		v := acc[d] / n
		if R != nil {
			v -= float64(R[d])
		}
		f[d] = float32(v)
	}
	return f
}
