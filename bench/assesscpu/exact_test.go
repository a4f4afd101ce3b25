package assesscpu

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cpu"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/modelset"
	"github.com/grefine/grefine/pipeline/aq"
	"github.com/grefine/grefine/pipeline/tokenizer"
)

// TestExactFull is the by-hand exactness check on a full-size set (pipeline/aq's tests
// run the same comparison on the tiny set in CI): the 9 texts of Prompt through the
// length buckets (clip_text) and through the prefix cache (clip_text_kv) against every
// row at 77 positions through clip_text. It takes a few minutes on 2 cores.
//
//	GRF_BENCH_MODELS=.cache/models/full go test ./bench/assesscpu -run ExactFull -v -timeout 30m
func TestExactFull(t *testing.T) {
	if os.Getenv("GRF_BENCH_MODELS") == "" {
		t.Skip("skipping: set GRF_BENCH_MODELS to a full-size model set (pipeline/aq tests the tiny set)")
	}
	set, err := modelset.Load(modelDir(t), modelset.Options{})
	require.NoError(t, err)
	vocab, err := set.FilePath("bpe_vocab")
	require.NoError(t, err)
	tok, err := tokenizer.Load(vocab)
	require.NoError(t, err)
	empty, err := set.Constant("aq_empty")
	require.NoError(t, err)
	tplPath, err := set.FilePath("templates")
	require.NoError(t, err)
	tplBytes, err := os.ReadFile(tplPath)
	require.NoError(t, err)
	templates := aq.ParseTemplates(string(tplBytes))
	open := func(name string) engine.Engine {
		e, err := set.OpenEngine(testenv.ORT(t), name, engine.OpenOptions{Threads: threads(t)})
		require.NoError(t, err)
		t.Cleanup(func() { e.Close() })
		return e
	}
	plain, kv := open("clip_text"), open(aq.KVEngine)
	txt := texts(t)
	K, D := len(templates), len(empty.F32)
	want := make([][]float32, len(txt))
	for i, x := range txt {
		ids := make([]int32, 0, K*tokenizer.ContextLength)
		for _, tpl := range templates {
			enc, _, err := tok.Encode(strings.Replace(tpl, "{}", x, 1))
			require.NoError(t, err)
			ids = append(ids, enc[:]...)
		}
		in, err := engine.FromInt32(engine.Shape{int64(K), tokenizer.ContextLength}, ids)
		require.NoError(t, err)
		out, err := plain.Run(context.Background(), map[string]engine.Tensor{"input_ids": in})
		require.NoError(t, err)
		want[i] = make([]float32, D)
		require.NoError(t, cpu.Ensemble(out["text_embeds"].(*engine.HostTensor).F32, 1, K, D, empty.F32, want[i]))
	}
	for _, e := range []engine.Engine{plain, kv} {
		enc, err := aq.NewTextEncoder(tok, e, testenv.CPUStream(t), templates, empty.F32, 0)
		require.NoError(t, err)
		got, err := enc.Features(context.Background(), txt)
		require.NoError(t, err)
		worst := 0.0
		for i := range txt {
			worst = max(worst, testenv.MaxAbs(t, want[i], got[i]))
		}
		t.Logf("%s (prefix cache %v): max abs feature difference to 77 positions over %d×%d rows: %.3g (%+v)", e.Name(), enc.Prefixed(), len(txt), K, worst, enc.Work())
		assert.LessOrEqual(t, worst, 1e-6, e.Name())
	}
}
