package aq

import (
	"container/list"
	"context"
	"errors"
	"fmt"
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

// TextEncoder computes template-ensemble text features (see the package doc) on a
// device: the text engine and the ensemble run on one stream, and only the features come
// back to host memory, where the LRU cache keeps them. NewTextEncoder builds the shared
// part (the cache, the template-prefix table and R on the device); With gives each
// pipeline slot its own engine and stream over it. It is safe for concurrent use.
type TextEncoder struct {
	*textShared
	eng engine.Engine // clip_text, or clip_text_kv (prefix table set)
	s   engine.Stream
	// MaxBatch bounds rows per engine call (0: unbounded).
	MaxBatch int
	// CallCost is what one engine call costs, in positions, when the rows are planned
	// into length buckets (0: BucketOverhead). A huge value gives one call for all rows,
	// cut after the longest EOT (grefine's behaviour before the buckets).
	CallCost int
}

// textShared is what the slots' encoders share: the tokenizer and templates, R (host and
// on the device), the prefix table (on the device) and the feature cache (host memory).
// The device tensors are written once, by NewTextEncoder, which synchronises its stream
// before returning, so every stream of the device may read them afterwards.
type textShared struct {
	tok       *tokenizer.Tokenizer
	templates []string
	empty     []float32     // R, [D]
	emptyT    engine.Tensor // R on the device
	dim       int
	dynamic   bool         // the sequence axis is dynamic: rows may be cut
	prefix    *prefixTable // the kv engine's cached template prefixes, nil for clip_text
	idsName   string
	embName   string
	device    string

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

// NewTextEncoder builds an encoder over a text engine whose tensors live on s's device:
// the model set's clip_text (input_ids int32 [B,S] -> text_embeds [B,D]) or, when the set
// has it, clip_text_kv (KVEngine; recognised by its past_keys input), in which case the
// hidden states of each template's tokens before "{}" are computed here, once, on s, and
// every text only runs the tokens from "{}" to EOT. templates must each hold one "{}";
// empty is R (the ensemble of the empty string, length D); cacheSize bounds the LRU (0
// disables caching). Close releases its device tensors.
func NewTextEncoder(tok *tokenizer.Tokenizer, eng engine.Engine, s engine.Stream, templates []string, empty []float32, cacheSize int) (enc *TextEncoder, err error) {
	if len(templates) == 0 {
		return nil, fmt.Errorf("%w: no templates", ErrConfig)
	}
	for i, t := range templates {
		if strings.Count(t, "{}") != 1 {
			return nil, fmt.Errorf("%w: template %d %q must contain one {}", ErrConfig, i, t)
		}
	}
	sh := &textShared{tok: tok, templates: templates, empty: empty, dim: len(empty), device: s.Device().Name(),
		cache: map[string]*list.Element{}, lru: list.New(), cap: cacheSize}
	e := &TextEncoder{textShared: sh, eng: eng, s: s}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if sh.emptyT, err = upload(s, engine.Shape{int64(len(empty))}, empty); err != nil {
		return nil, err
	}
	ins, outs := eng.Inputs(), eng.Outputs()
	if isKV(ins) {
		sh.idsName, sh.embName, sh.dynamic = idsName, embedsName, true
		emb, ok := findDesc(outs, embedsName)
		if !ok || len(emb.Shape) != 2 || emb.Shape[1] != int64(len(empty)) {
			return nil, fmt.Errorf("%w: %s outputs %v do not match the %d-d empty feature", ErrConfig, KVEngine, outs, len(empty))
		}
		if sh.prefix, err = newPrefixTable(context.Background(), tok, eng, s, templates); err != nil {
			return nil, err
		}
	} else {
		if len(ins) != 1 || len(ins[0].Shape) != 2 || len(outs) != 1 || len(outs[0].Shape) != 2 || outs[0].Shape[1] != int64(len(empty)) {
			return nil, fmt.Errorf("%w: clip_text I/O %v -> %v does not match the %d-d empty feature", ErrConfig, ins, outs, len(empty))
		}
		sh.idsName, sh.embName, sh.dynamic = ins[0].Name, outs[0].Name, ins[0].Shape[1] == engine.Dynamic
	}
	// The shared device tensors are read from other streams later: finish writing them.
	if err := s.Sync(); err != nil {
		return nil, err
	}
	return e, nil
}

// With returns an encoder that runs eng on s and shares e's cache, templates and device
// tensors (s must be a stream of the same device). Its Close does nothing.
func (e *TextEncoder) With(eng engine.Engine, s engine.Stream) (*TextEncoder, error) {
	if s.Device().Name() != e.device {
		return nil, fmt.Errorf("%w: aq: the encoder's tensors are on %s, the stream runs on %s", engine.ErrDevice, e.device, s.Device().Name())
	}
	return &TextEncoder{textShared: e.textShared, eng: eng, s: s, MaxBatch: e.MaxBatch, CallCost: e.CallCost}, nil
}

// Close releases the shared device tensors (on the encoder NewTextEncoder returned; the
// encoders of With must not be used afterwards).
func (e *TextEncoder) Close() error {
	if e == nil || e.textShared == nil {
		return nil
	}
	var first error
	for _, t := range []*engine.Tensor{&e.emptyT} {
		if *t != nil {
			if err := (*t).Close(); err != nil && first == nil {
				first = err
			}
			*t = nil
		}
	}
	if e.prefix != nil {
		if err := e.prefix.close(); err != nil && first == nil {
			first = err
		}
		e.prefix = nil
	}
	return first
}

// upload puts host values on s's device as a new float32 tensor.
func upload(s engine.Stream, shape engine.Shape, data []float32) (engine.Tensor, error) {
	h, err := engine.FromFloat32(shape, data)
	if err != nil {
		return nil, err
	}
	return engine.Upload(s, h)
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
//
// On the device: the token ids of every bucket (and the kv engine's row slots) go up in
// one copy; each bucket's embeddings are scattered to their text's rows; the ensemble
// runs on the device; the features come back in one copy.
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
	cost := e.CallCost
	if cost <= 0 {
		cost = BucketOverhead
	}
	buckets := planBuckets(widths, cost, e.MaxBatch)
	// One int32 block: per bucket ids [n,seq], out rows [n], and (kv) slots and lengths.
	var block []int32
	offs := make([][4]int64, len(buckets))
	maxRows := 0
	for bi, b := range buckets {
		rs := rows[b[0]:b[1]]
		seq := rs[len(rs)-1].width()
		maxRows = max(maxRows, len(rs))
		offs[bi][0] = int64(len(block))
		for i := range rs {
			r := &rs[i]
			ids := make([]int32, seq)
			copy(ids, r.ids[r.cut:min(r.cut+seq, tokenizer.ContextLength)])
			block = append(block, ids...)
		}
		offs[bi][1] = int64(len(block))
		for i := range rs {
			block = append(block, int32(rs[i].out))
		}
		if e.prefix != nil {
			offs[bi][2] = int64(len(block))
			for i := range rs {
				block = append(block, int32(rs[i].slot))
			}
			offs[bi][3] = int64(len(block))
			for i := range rs {
				block = append(block, int32(rs[i].cut))
			}
		}
	}
	dev := e.s.Device()
	var tensors []engine.Tensor
	defer func() { closeTensors(tensors) }()
	alloc := func(dt engine.DType, shape engine.Shape) (engine.Tensor, error) {
		t, err := dev.Alloc(dt, shape)
		if err == nil {
			tensors = append(tensors, t)
		}
		return t, err
	}
	hb, err := engine.FromInt32(engine.Shape{int64(len(block))}, block)
	if err != nil {
		return nil, err
	}
	blockT, err := alloc(engine.Int32, hb.Shape())
	if err != nil {
		return nil, err
	}
	if err := e.s.Upload(blockT, hb); err != nil {
		return nil, err
	}
	D := int64(e.dim)
	emb, err := alloc(engine.Float32, engine.Shape{int64(len(rows)), D})
	if err != nil {
		return nil, err
	}
	scratch, err := alloc(engine.Float32, engine.Shape{int64(maxRows), D})
	if err != nil {
		return nil, err
	}
	var work WorkStats
	for bi, b := range buckets {
		n, seq := int64(b[1]-b[0]), int64(widths[b[1]-1])
		if err := e.run(ctx, dev, blockT, offs[bi], n, seq, scratch, emb); err != nil {
			return nil, err
		}
		work.Calls++
		work.Rows += int(n)
		work.Positions += int(n * seq)
	}
	e.mu.Lock()
	e.work.Calls += work.Calls
	e.work.Rows += work.Rows
	e.work.Positions += work.Positions
	e.mu.Unlock()
	featsT, err := alloc(engine.Float32, engine.Shape{int64(len(texts)), D})
	if err != nil {
		return nil, err
	}
	if err := e.s.Ensemble(emb, e.emptyT, featsT); err != nil {
		return nil, err
	}
	host, err := engine.NewHostTensor(engine.Float32, featsT.Shape())
	if err != nil {
		return nil, err
	}
	if err := e.s.Download(host, featsT); err != nil {
		return nil, err
	}
	feats := make([][]float32, len(texts))
	for i := range texts {
		feats[i] = host.F32[i*e.dim : (i+1)*e.dim : (i+1)*e.dim]
	}
	return feats, nil
}

// run encodes one bucket of n rows of seq positions (ids and rows at off in the block)
// into scratch and scatters the embeddings to their rows of emb.
func (e *TextEncoder) run(ctx context.Context, dev engine.Device, block engine.Tensor, off [4]int64, n, seq int64, scratch, emb engine.Tensor) error {
	var views []engine.Tensor
	defer func() { closeTensors(views) }()
	view := func(t engine.Tensor, at int64, shape engine.Shape) (engine.Tensor, error) {
		v, err := dev.View(t, at, shape)
		if err == nil {
			views = append(views, v)
		}
		return v, err
	}
	ids, err := view(block, off[0], engine.Shape{n, seq})
	if err != nil {
		return err
	}
	out, err := view(block, off[1], engine.Shape{n})
	if err != nil {
		return err
	}
	res, err := view(scratch, 0, engine.Shape{n, int64(e.dim)})
	if err != nil {
		return err
	}
	in := map[string]engine.Tensor{e.idsName: ids}
	if e.prefix != nil {
		slots, err := view(block, off[2], engine.Shape{n})
		if err != nil {
			return err
		}
		lengths, err := view(block, off[3], engine.Shape{n})
		if err != nil {
			return err
		}
		in["past_keys"], in["past_values"], in["past_index"], in["past_length"] = e.prefix.keys, e.prefix.values, slots, lengths
	}
	if err := engine.RunInto(ctx, e.eng, e.s, in, map[string]engine.Tensor{e.embName: res}); err != nil {
		return fmt.Errorf("aq: text encoder: %w", err)
	}
	return e.s.ScatterRows(res, out, emb)
}

func closeTensors(ts []engine.Tensor) {
	for _, t := range ts {
		if t != nil {
			t.Close()
		}
	}
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
