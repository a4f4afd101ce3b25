package aq

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/cpu"
	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/pipeline/tokenizer"
)

// cpuStream is a stream of the cpu device (the reference of every device).
func cpuStream(t testing.TB) engine.Stream { return testenv.CPUStream(t) }

func TestTexts(t *testing.T) {
	parts := []Part{{Text: "beautiful", Ancestor: -1}, {Text: "fluffy cat", Noun: "cat", Ancestor: -1},
		{Text: "straw hat", Noun: "hat", Ancestor: 0}, {Text: "river", Noun: "river", Ancestor: 1}}
	assert.Equal(t, []string{"p", "cat", "fluffy cat", "hat", "straw hat", "river", "beautiful"}, Texts("p", parts))
}

func TestComputeDefects(t *testing.T) {
	cls := []float32{1, 0} // CLS = (1,0): the scores read the first feature component
	feat := func(c float32, patch float32) []float32 { return []float32{c, patch} }
	logit := func(p float64) float32 { return float32(math.Log(p/(1-p)) / 10) } // s(x) = p
	parts := []Part{
		{Text: "red apple", Noun: "apple", Ancestor: -1},   // attribute: a_pn .7 > a_ph .6
		{Text: "wooden table", Noun: "table", Ancestor: 0}, // missing: a_pn .3 -> ancestor's map
		{Text: "blue sky", Noun: "sky", Ancestor: -1},      // fine: a_pn .6 < a_ph .9
	}
	feats := map[string][]float32{
		"prompt": feat(logit(0.8), 0), "apple": feat(logit(0.7), 0), "red apple": feat(logit(0.6), 1),
		"table": feat(logit(0.3), 0), "wooden table": feat(logit(0.8), -1), "sky": feat(logit(0.6), 0),
		"blue sky": feat(logit(0.9), 0),
	}
	res, err := Compute(DefaultConfig(), cls, "prompt", parts, feats)
	require.NoError(t, err)
	assert.Equal(t, []string{KindAttribute, KindMissing, KindNone}, []string{res.Parts[0].Kind, res.Parts[1].Kind, res.Parts[2].Kind})
	assert.Equal(t, 0, res.Parts[1].MapFrom, "a missing noun takes its ancestor's map")
	assert.InDelta(t, 0.8, res.PromptScore, 1e-6)
	// a = s(prompt) * prod min(a_ph/0.5, 1) = 0.8 * 1 * 1 * 1
	assert.InDelta(t, 0.8, res.Score, 1e-6)
	assert.Equal(t, []int{0}, res.Maps, "A is the one merged map (part 0 twice)")
	assert.Equal(t, feats["red apple"], MapFeatures(parts, res.Maps, feats))

	none, err := Compute(DefaultConfig(), cls, "prompt", []Part{{Text: "beautiful", Ancestor: -1}}, feats)
	require.NoError(t, err)
	assert.Equal(t, none.PromptScore, none.Score, "no noun: a = s(prompt)")
	assert.Empty(t, none.Maps)

	_, err = Compute(DefaultConfig(), cls, "prompt", parts, map[string][]float32{"prompt": feats["prompt"]})
	assert.ErrorIs(t, err, ErrShape)
	_, err = Compute(DefaultConfig(), cls, "prompt", []Part{{Text: "x", Noun: "x", Ancestor: 5}}, feats)
	assert.ErrorIs(t, err, ErrShape)
}

// TestTrimmedSequenceEqualsFullLength: the text encoder cuts ids after the longest EOT of
// a batch; the features must equal those of full 77-token rows.
func TestTrimmedSequenceEqualsFullLength(t *testing.T) {
	set := testenv.TinySet(t)
	e, err := set.OpenEngine(testenv.ORT(t), "clip_text", engine.OpenOptions{})
	require.NoError(t, err)
	defer e.Close()
	require.Equal(t, int64(engine.Dynamic), e.Inputs()[0].Shape[1], "the tiny clip_text has a dynamic sequence axis")
	vocab, _ := set.FilePath("bpe_vocab")
	tok, err := tokenizer.Load(vocab)
	require.NoError(t, err)
	empty, err := set.Constant("aq_empty")
	require.NoError(t, err)
	templates := []string{"a photo of a {}.", "a bad photo of the {}.", "{}"}
	enc, err := NewTextEncoder(tok, e, cpuStream(t), templates, empty.F32, 16)
	require.NoError(t, err)
	texts := []string{"blue doctor suit", "tie", "a very long text about a " + "cat " + "and a dog"}
	got, err := enc.Features(context.Background(), texts)
	require.NoError(t, err)
	// Reference: full 77-token rows through the same engine.
	for i, txt := range texts {
		ids := make([]int32, 0, len(templates)*77)
		for _, tpl := range templates {
			enc77, _, err := tok.Encode(replace(tpl, txt))
			require.NoError(t, err)
			ids = append(ids, enc77[:]...)
		}
		x, _ := engine.FromInt32(engine.Shape{int64(len(templates)), 77}, ids)
		out, err := e.Run(context.Background(), map[string]engine.Tensor{"input_ids": x})
		require.NoError(t, err)
		want := make([]float32, 512)
		require.NoError(t, cpu.Ensemble(out["text_embeds"].(*engine.HostTensor).F32, 1, len(templates), 512, empty.F32, want))
		for d := range want {
			assert.InDelta(t, want[d], got[i][d], 2e-6, "text %d dim %d", i, d)
		}
	}
	// The cache serves repeats.
	_, err = enc.Features(context.Background(), []string{"tie", "tie"})
	require.NoError(t, err)
	assert.Equal(t, CacheStats{Hits: 2, Misses: 3}, enc.Stats())
}

func replace(tpl, s string) string {
	for i := 0; i+1 < len(tpl); i++ {
		if tpl[i:i+2] == "{}" {
			return tpl[:i] + s + tpl[i+2:]
		}
	}
	return tpl
}

func TestPartResultJSONNullNounScore(t *testing.T) {
	b, err := json.Marshal([]PartResult{
		{Part: Part{Text: "red hat", Noun: "hat", Ancestor: -1}, NounScore: 0.25, PhraseScore: 0.5, Kind: KindNone, MapFrom: -1},
		{Part: Part{Text: "shiny", Ancestor: -1}, PhraseScore: 0.5, Kind: KindNone, MapFrom: -1},
	})
	require.NoError(t, err)
	var back []map[string]any
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, 0.25, back[0]["noun_score"])
	assert.Contains(t, back[1], "noun_score")
	assert.Nil(t, back[1]["noun_score"], "no noun: null, not 0")
	assert.Equal(t, "shiny", back[1]["text"])
	assert.Equal(t, 0.5, back[1]["phrase_score"])
}
