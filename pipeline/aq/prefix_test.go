package aq

import (
	"context"
	"math/rand"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cpu"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/pipeline/tokenizer"
)

// exactTol is the bar for "exact": cutting, bucketing and prefix caching change only the
// float32 rounding of the tower, and the features (unit-norm ensembles minus R) must
// agree with the uncut 77-position computation to 1e-6.
const exactTol = 1e-6

// encoderTexts covers short and long texts, an empty one, one that is truncated at 77
// tokens, one that starts with punctuation and one that merges with "photo{}".
var encoderTexts = []string{"", "tie", "graph", "blue doctor suit",
	"Mr. Beans wearing sun glasses with blue doctor suit and stripe tie", ", leading comma",
	"a very long prompt, " + strings.Repeat("word and colour ", 30)}

type tinyText struct {
	set       *modelset.Set
	tok       *tokenizer.Tokenizer
	empty     []float32
	templates []string
}

func loadTinyText(t *testing.T) tinyText {
	set := testenv.TinySet(t)
	vocab, err := set.FilePath("bpe_vocab")
	require.NoError(t, err)
	tok, err := tokenizer.Load(vocab)
	require.NoError(t, err)
	empty, err := set.Constant("aq_empty")
	require.NoError(t, err)
	tpl, err := set.FilePath("templates")
	require.NoError(t, err)
	b, err := os.ReadFile(tpl)
	require.NoError(t, err)
	templates := ParseTemplates(string(b))
	require.Len(t, templates, 85)
	// two more: one whose prefix merges with a text ("photo{}" + "graph" = "photograph"),
	// one with the text first (nothing but SOT to share)
	templates = append(templates, "photo{}", "{} in the scene.")
	return tinyText{set: set, tok: tok, empty: empty.F32, templates: templates}
}

func (tt tinyText) open(t *testing.T, name string) engine.Engine {
	e, err := tt.set.OpenEngine(testenv.ORT(t), name, engine.OpenOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

// uncut is the reference: every row at 77 positions, one engine call per text.
func (tt tinyText) uncut(t *testing.T, e engine.Engine, text string) []float32 {
	K := len(tt.templates)
	ids := make([]int32, 0, K*tokenizer.ContextLength)
	for _, tpl := range tt.templates {
		enc, _, err := tt.tok.Encode(strings.Replace(tpl, "{}", text, 1))
		require.NoError(t, err)
		ids = append(ids, enc[:]...)
	}
	x, err := engine.FromInt32(engine.Shape{int64(K), tokenizer.ContextLength}, ids)
	require.NoError(t, err)
	out, err := e.Run(context.Background(), map[string]engine.Tensor{"input_ids": x})
	require.NoError(t, err)
	f := make([]float32, len(tt.empty))
	require.NoError(t, cpu.Ensemble(out["text_embeds"].(*engine.HostTensor).F32, 1, K, len(tt.empty), tt.empty, f))
	return f
}

func (tt tinyText) assertExact(t *testing.T, enc *TextEncoder, plain engine.Engine) {
	got, err := enc.Features(context.Background(), encoderTexts)
	require.NoError(t, err)
	worst := 0.0
	for i, text := range encoderTexts {
		want := tt.uncut(t, plain, text)
		d := testenv.MaxAbs(t, want, got[i])
		worst = max(worst, d)
		assert.LessOrEqual(t, d, exactTol, "text %q", text)
	}
	t.Logf("max abs difference to the uncut computation over %d texts × %d templates: %.3g (%+v)", len(encoderTexts), len(tt.templates), worst, enc.Work())
}

// TestBucketsExact: the plain clip_text path, rows sorted by length and run in length
// buckets (several, small MaxBatch too), equals the uncut computation.
func TestBucketsExact(t *testing.T) {
	tt := loadTinyText(t)
	plain := tt.open(t, "clip_text")
	for _, maxBatch := range []int{0, 7} {
		enc, err := NewTextEncoder(tt.tok, plain, cpuStream(t), tt.templates, tt.empty, 0)
		require.NoError(t, err)
		enc.MaxBatch = maxBatch
		require.False(t, enc.Prefixed())
		tt.assertExact(t, enc, plain)
		w := enc.Work()
		assert.Greater(t, w.Calls, 1, "rows of different lengths go to different buckets")
		assert.Equal(t, len(encoderTexts)*len(tt.templates), w.Rows)
	}
}

// TestPrefixCacheExact: clip_text_kv with the template prefixes computed once equals the
// uncut clip_text computation, for every template (including one whose prefix a text
// merges with, which falls back to SOT) and every kind of text.
func TestPrefixCacheExact(t *testing.T) {
	tt := loadTinyText(t)
	plain := tt.open(t, "clip_text")
	kv := tt.open(t, KVEngine)
	enc, err := NewTextEncoder(tt.tok, kv, cpuStream(t), tt.templates, tt.empty, 0)
	require.NoError(t, err)
	require.True(t, enc.Prefixed())
	tt.assertExact(t, enc, plain)
	// The positions computed are those after each row's prefix: fewer than the plain path.
	ref, err := NewTextEncoder(tt.tok, plain, cpuStream(t), tt.templates, tt.empty, 0)
	require.NoError(t, err)
	_, err = ref.Features(context.Background(), encoderTexts)
	require.NoError(t, err)
	assert.Less(t, enc.Work().Positions, ref.Work().Positions)
	// "photo{}" + "graph" cannot use its prefix: the SOT slot serves it.
	r := row{out: 0}
	ids, info, err := tt.tok.Encode("photograph")
	require.NoError(t, err)
	r.ids, r.n = ids, info.NumTokens
	enc.prefix.assign(&r, 85)
	assert.Equal(t, enc.prefix.sot, r.slot)
	assert.Equal(t, 1, r.cut)
}

// TestPlanBuckets checks the bucket plan against every split of small inputs.
func TestPlanBuckets(t *testing.T) {
	cost := func(w []int, runs [][2]int, overhead int) int {
		c := 0
		for _, r := range runs {
			c += (r[1]-r[0])*w[r[1]-1] + overhead
		}
		return c
	}
	rng := rand.New(rand.NewSource(1))
	for trial := 0; trial < 200; trial++ {
		n := 1 + rng.Intn(9)
		w := make([]int, n)
		for i := range w {
			w[i] = 1 + rng.Intn(20)
		}
		sort.Ints(w)
		overhead := rng.Intn(30)
		runs := planBuckets(w, overhead, 0)
		// runs cover [0,n) in order
		at := 0
		for _, r := range runs {
			require.Equal(t, at, r[0])
			require.Greater(t, r[1], r[0])
			at = r[1]
		}
		require.Equal(t, n, at)
		// brute force over the 2^(n-1) ways to cut the sorted list
		best := -1
		for mask := 0; mask < 1<<(n-1); mask++ {
			var rs [][2]int
			lo := 0
			for i := 1; i < n; i++ {
				if mask&(1<<(i-1)) != 0 {
					rs = append(rs, [2]int{lo, i})
					lo = i
				}
			}
			rs = append(rs, [2]int{lo, n})
			if c := cost(w, rs, overhead); best < 0 || c < best {
				best = c
			}
		}
		assert.Equal(t, best, cost(w, runs, overhead), "widths %v overhead %d", w, overhead)
	}
	// maxRows splits runs
	runs := planBuckets([]int{3, 3, 3, 3, 3}, 100, 2)
	assert.Equal(t, [][2]int{{0, 2}, {2, 4}, {4, 5}}, runs)
	assert.Empty(t, planBuckets(nil, 16, 0))
}
