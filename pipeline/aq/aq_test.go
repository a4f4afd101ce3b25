package aq

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/internal/testenv"
	"github.com/grefine/grefine/pipeline/tokenizer"
)

func TestEnsemble(t *testing.T) {
	emb := []float32{3, 0, 0, 4} // two rows of D=2: normalised (1,0), (0,1); mean (.5,.5)
	f := Ensemble(emb, 2, 2, []float32{0.1, 0.2})
	s := float32(math.Sqrt(0.5))
	assert.InDelta(t, s-0.1, f[0], 1e-6)
	assert.InDelta(t, s-0.2, f[1], 1e-6)
	z := Ensemble([]float32{0, 0}, 1, 2, nil)
	assert.Equal(t, []float32{0, 0}, z, "a zero embedding stays zero, no NaN")
}

func TestTexts(t *testing.T) {
	parts := []Part{{Text: "beautiful", Ancestor: -1}, {Text: "fluffy cat", Noun: "cat", Ancestor: -1},
		{Text: "straw hat", Noun: "hat", Ancestor: 0}, {Text: "river", Noun: "river", Ancestor: 1}}
	assert.Equal(t, []string{"p", "cat", "fluffy cat", "hat", "straw hat", "river", "beautiful"}, Texts("p", parts))
}

// geometry of a 2×2 grid, D=2, upsampled to 4×4.
var geo = Geometry{GridH: 2, GridW: 2, Dim: 2, H: 4, W: 4}

func TestComputeDefects(t *testing.T) {
	// CLS = (1,0); patches vary along the second axis so maps are not flat.
	tokens := []float32{1, 0, 0, 1, 0, 2, 0, 3, 0, 4}
	feat := func(cls float32, patch float32) []float32 { return []float32{cls, patch} }
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
	res, err := Compute(DefaultConfig(), geo, tokens, "prompt", parts, feats)
	require.NoError(t, err)
	assert.Equal(t, []string{KindAttribute, KindMissing, KindNone}, []string{res.Parts[0].Kind, res.Parts[1].Kind, res.Parts[2].Kind})
	assert.Equal(t, 0, res.Parts[1].MapFrom, "a missing noun takes its ancestor's map")
	assert.InDelta(t, 0.8, res.PromptScore, 1e-6)
	// a = s(prompt) * prod min(a_ph/0.5, 1) = 0.8 * 1 * 1 * 1
	assert.InDelta(t, 0.8, res.Score, 1e-6)
	m, err := TextMap(geo, tokens, feats["red apple"])
	require.NoError(t, err)
	assert.Equal(t, m, res.Map, "A is the one merged map (part 0 twice)")
	assert.InDelta(t, 0, m[0], 1e-6)
	assert.InDelta(t, 1, m[15], 1e-6)

	none, err := Compute(DefaultConfig(), geo, tokens, "prompt", []Part{{Text: "beautiful", Ancestor: -1}}, feats)
	require.NoError(t, err)
	assert.Equal(t, none.PromptScore, none.Score, "no noun: a = s(prompt)")
	assert.Equal(t, make([]float32, 16), none.Map)

	_, err = Compute(DefaultConfig(), geo, tokens, "prompt", parts, map[string][]float32{"prompt": feats["prompt"]})
	assert.ErrorIs(t, err, ErrShape)
	_, err = Compute(DefaultConfig(), geo, tokens, "prompt", []Part{{Text: "x", Noun: "x", Ancestor: 5}}, feats)
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
	enc, err := NewTextEncoder(tok, e, templates, empty.F32, 16)
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
		want := Ensemble(out["text_embeds"].(*engine.HostTensor).F32, len(templates), 512, empty.F32)
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
