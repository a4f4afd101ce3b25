package aq

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
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
	eng       engine.Engine // clip_text: input_ids int32 [B,77] -> text_embeds [B,D]
	templates []string
	empty     []float32 // R, [D]
	dim       int
	// MaxBatch bounds rows per engine call (0: unbounded).
	MaxBatch int

	mu    sync.Mutex
	cache map[string]*list.Element
	lru   *list.List
	cap   int
	stats CacheStats
}

// CacheStats counts feature-cache lookups.
type CacheStats struct{ Hits, Misses int }

type cacheEntry struct {
	text string
	f    []float32
}

// NewTextEncoder builds an encoder over the clip_text engine. templates must each hold
// one "{}"; empty is R (the ensemble of the empty string, length D); cacheSize bounds the
// LRU (0 disables caching).
func NewTextEncoder(tok *tokenizer.Tokenizer, eng engine.Engine, templates []string, empty []float32, cacheSize int) (*TextEncoder, error) {
	if len(templates) == 0 {
		return nil, fmt.Errorf("%w: no templates", ErrConfig)
	}
	for i, t := range templates {
		if strings.Count(t, "{}") != 1 {
			return nil, fmt.Errorf("%w: template %d %q must contain one {}", ErrConfig, i, t)
		}
	}
	outs := eng.Outputs()
	if len(outs) != 1 || len(outs[0].Shape) != 2 || outs[0].Shape[1] != int64(len(empty)) {
		return nil, fmt.Errorf("%w: clip_text outputs %v do not match the %d-d empty feature", ErrConfig, outs, len(empty))
	}
	return &TextEncoder{tok: tok, eng: eng, templates: templates, empty: empty, dim: len(empty),
		cache: map[string]*list.Element{}, lru: list.New(), cap: cacheSize}, nil
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

// Features returns f(x) for each text, in order. Texts not in the cache are encoded in
// one batched engine call (len(missing)·len(templates) rows).
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

// encode runs the template ensemble for texts (no cache). When the engine's sequence
// axis is dynamic, rows are cut to the longest tokenised row of the call (EOT included):
// CLIP's text transformer is causal and reads its output at EOT, so the padding after it
// cannot change the result, and the work shrinks from 77 positions to ~10-20.
func (e *TextEncoder) encode(ctx context.Context, texts []string) ([][]float32, error) {
	K := len(e.templates)
	rows := len(texts) * K
	const L = tokenizer.ContextLength
	full := make([]int32, rows*L)
	seq := 1
	for i, t := range texts {
		for k, tpl := range e.templates {
			enc, info, err := e.tok.Encode(strings.Replace(tpl, "{}", t, 1))
			if err != nil {
				return nil, fmt.Errorf("aq: text %q: %w", t, err)
			}
			copy(full[(i*K+k)*L:], enc[:])
			seq = max(seq, info.NumTokens)
		}
	}
	if in := e.eng.Inputs()[0].Shape; len(in) != 2 || in[1] != engine.Dynamic {
		seq = L // fixed-length export
	}
	ids := full
	if seq < L {
		ids = make([]int32, rows*seq)
		for r := 0; r < rows; r++ {
			copy(ids[r*seq:(r+1)*seq], full[r*L:r*L+seq])
		}
	}
	emb := make([]float32, 0, rows*e.dim)
	step := rows
	if e.MaxBatch > 0 && e.MaxBatch < rows {
		step = e.MaxBatch
	}
	for lo := 0; lo < rows; lo += step {
		hi := min(lo+step, rows)
		x, err := engine.FromInt32(engine.Shape{int64(hi - lo), int64(seq)}, ids[lo*seq:hi*seq])
		if err != nil {
			return nil, err
		}
		res, err := e.eng.Run(ctx, map[string]engine.Tensor{e.eng.Inputs()[0].Name: x})
		if err != nil {
			return nil, fmt.Errorf("aq: text encoder: %w", err)
		}
		out, ok := res[e.eng.Outputs()[0].Name].(*engine.HostTensor)
		if !ok || out.Len() != (hi-lo)*e.dim {
			return nil, fmt.Errorf("%w: text encoder returned %v", ErrShape, res)
		}
		emb = append(emb, out.F32...)
	}
	feats := make([][]float32, len(texts))
	for i := range texts {
		feats[i] = Ensemble(emb[i*K*e.dim:(i+1)*K*e.dim], K, e.dim, e.empty)
	}
	return feats, nil
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
