package assess

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grefine/grefine/internal/testkit/testenv"
	"github.com/grefine/grefine/pipeline/aq"
	"github.com/grefine/grefine/pipeline/imageio"
)

var root = filepath.Join("..", "..")

// Tolerances of the quality-indicator acceptance: maps 1e-4 max abs, scores 1e-5.
const (
	mapTol   = 1e-4
	scoreTol = 1e-5
)

// fixedParser returns the parts a golden case lists (the parser is tested on its own).
type fixedParser map[string][]aq.Part

func (f fixedParser) Parts(prompt string) (string, []aq.Part, error) {
	p, ok := f[prompt]
	if !ok {
		return "", nil, fmt.Errorf("no parts for %q", prompt)
	}
	return prompt, p, nil
}

type goldenCase struct {
	Prompt string
	Image  string
	H, W   int
	Parts  []struct {
		Text, Noun, Kind string
		Ancestor         int
		APn              *float64 `json:"a_pn"`
		APh              *float64 `json:"a_ph"`
	}
	Scores struct {
		P       float64
		Dims    []float64
		SPrompt *float64 `json:"s_prompt"`
		A       *float64
		Q       float64
	}
	Margins struct {
		MFragile int `json:"M_fragile_pixels"`
	}
}

func loadCases(t *testing.T) []goldenCase {
	t.Helper()
	var cases []goldenCase
	for k := 1; ; k++ {
		b, err := os.ReadFile(filepath.Join(root, "testdata", "goldens", "quality", fmt.Sprintf("case%d.json", k)))
		if os.IsNotExist(err) {
			break
		}
		require.NoError(t, err)
		var c goldenCase
		require.NoError(t, json.Unmarshal(b, &c))
		cases = append(cases, c)
	}
	require.GreaterOrEqual(t, len(cases), 3, "quality goldens missing (tools/export/quality_ref.py)")
	return cases
}

func newTiny(t testing.TB, p Parser) *Assessor {
	t.Helper()
	a, err := New(testenv.TinySet(t), testenv.ORT(t), Options{Config: DefaultConfig(), Parser: p})
	require.NoError(t, err)
	t.Cleanup(func() { a.Close() })
	return a
}

func TestParityWithPythonReference(t *testing.T) {
	cases := loadCases(t)
	parser := fixedParser{}
	for _, c := range cases {
		var parts []aq.Part
		for _, p := range c.Parts {
			parts = append(parts, aq.Part{Text: p.Text, Noun: p.Noun, Ancestor: p.Ancestor})
		}
		parser[c.Prompt] = parts
	}
	a := newTiny(t, parser)
	for k, c := range cases {
		t.Run(fmt.Sprintf("case%d", k+1), func(t *testing.T) {
			img, err := imageio.ReadFile(filepath.Join(root, c.Image), imageio.DefaultLimits)
			require.NoError(t, err)
			rep, err := a.Assess(context.Background(), img, c.Prompt)
			require.NoError(t, err)
			require.Equal(t, [2]int{c.W, c.H}, [2]int{rep.Width, rep.Height})
			golden := func(suffix string) []float32 {
				return testenv.Golden(t, filepath.Join("quality", fmt.Sprintf("case%d_%s.npy", k+1, suffix))).F32
			}
			// Scores.
			assert.InDelta(t, c.Scores.P, rep.P, scoreTol, "p")
			for i, n := range []string{"overall", "technical", "rationality", "naturalness"} {
				assert.InDelta(t, c.Scores.Dims[i], rep.Perceptual[n], scoreTol, n)
			}
			require.NotNil(t, rep.A)
			assert.InDelta(t, *c.Scores.A, *rep.A, scoreTol, "a")
			assert.InDelta(t, *c.Scores.SPrompt, *rep.PromptScore, scoreTol, "s(prompt)")
			assert.InDelta(t, c.Scores.Q, rep.Q, scoreTol, "q")
			require.Len(t, rep.Parts, len(c.Parts))
			worstScore := 0.0
			for i, p := range c.Parts {
				assert.Equal(t, p.Kind, rep.Parts[i].Kind, "part %d defect kind", i)
				if p.APn != nil {
					worstScore = math.Max(worstScore, math.Abs(*p.APn-float64(rep.Parts[i].NounScore)))
					worstScore = math.Max(worstScore, math.Abs(*p.APh-float64(rep.Parts[i].PhraseScore)))
				}
			}
			assert.LessOrEqual(t, worstScore, scoreTol, "part scores")
			// Maps.
			P, A, M := golden("P"), golden("A"), golden("M")
			eP, eA := testenv.MaxAbs(t, P, rep.PMap), testenv.MaxAbs(t, A, rep.AMap)
			assert.LessOrEqual(t, eP, mapTol, "P")
			assert.LessOrEqual(t, eA, mapTol, "A")
			flips := 0
			for i := range M {
				if M[i] != rep.Mask[i] {
					flips++
				}
			}
			assert.LessOrEqual(t, flips, c.Margins.MFragile, "mask pixels differ beyond the fragile ones")
			// The report's mask fraction counts the repair mask (both kinds of defect), and
			// the mask is exactly the union of its perceptual and alignment parts.
			n := 0
			for i, v := range rep.Mask {
				n += int(v)
				require.Equal(t, max(rep.PerceptualMask[i], rep.AlignMask[i]), v)
			}
			assert.InDelta(t, float64(n)/float64(len(rep.Mask)), float64(rep.MaskFraction), 1e-6, "mask fraction")
			t.Logf("max abs: P %.3g, A %.3g, part scores %.3g; p %.3g a %.3g; mask pixels differing %d (fragile %d)",
				eP, eA, worstScore, math.Abs(c.Scores.P-float64(rep.P)), math.Abs(*c.Scores.A-float64(*rep.A)), flips, c.Margins.MFragile)
		})
	}
}

func TestEdgeCases(t *testing.T) {
	a := newTiny(t, fixedParser{"a cat": {{Text: "cat", Noun: "cat", Ancestor: -1}}, "   ": nil})
	img := imageio.NewRGB8(40, 30)
	ctx := context.Background()
	rep, err := a.Assess(ctx, img, "")
	require.NoError(t, err)
	assert.Nil(t, rep.A, "empty prompt skips alignment")
	assert.Equal(t, rep.P, rep.Q)
	assert.Contains(t, rep.Notes[0], "empty prompt")
	_, err = a.Assess(ctx, img, "bad \xff utf8")
	assert.ErrorIs(t, err, ErrPrompt)
	_, err = a.Assess(ctx, &imageio.RGB8{}, "a cat")
	assert.ErrorIs(t, err, ErrImage)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = a.Assess(cctx, img, "a cat")
	assert.ErrorIs(t, err, context.Canceled)
	// The second request for the same prompt is served from the feature cache.
	before := a.CacheStats()
	_, err = a.Assess(ctx, img, "a cat")
	require.NoError(t, err)
	_, err = a.Assess(ctx, img, "a cat")
	require.NoError(t, err)
	after := a.CacheStats()
	assert.Greater(t, after.Hits, before.Hits)
}

// TestConcurrentAssess: one Assessor serves goroutines at once (shared engines, tokenizer,
// parser, feature cache) and gives each the result it gives alone.
func TestConcurrentAssess(t *testing.T) {
	prompts := map[string][]aq.Part{
		"a cat":            {{Text: "cat", Noun: "cat", Ancestor: -1}},
		"a dog on a sofa":  {{Text: "dog", Noun: "dog", Ancestor: -1}, {Text: "sofa", Noun: "sofa", Ancestor: 0}},
		"red hat":          {{Text: "red hat", Noun: "hat", Ancestor: -1}},
		"blue car, a tree": {{Text: "blue car", Noun: "car", Ancestor: -1}, {Text: "tree", Noun: "tree", Ancestor: 0}},
	}
	a := newTiny(t, fixedParser(prompts))
	img := imageio.NewRGB8(48, 40)
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	want := map[string]*Report{}
	for p := range prompts {
		r, err := a.Assess(context.Background(), img, p)
		require.NoError(t, err)
		want[p] = r
	}
	type result struct {
		p string
		r *Report
		e error
	}
	ch := make(chan result)
	for k := 0; k < 3; k++ {
		for p := range prompts {
			go func(p string) {
				r, err := a.Assess(context.Background(), img, p)
				ch <- result{p, r, err}
			}(p)
		}
	}
	for i := 0; i < 3*len(prompts); i++ {
		res := <-ch
		require.NoError(t, res.e)
		assert.Equal(t, want[res.p].P, res.r.P)
		assert.Equal(t, *want[res.p].A, *res.r.A)
		assert.Equal(t, want[res.p].AMap, res.r.AMap)
		assert.Equal(t, want[res.p].Mask, res.r.Mask)
	}
}

// TestTruncationNoteCountsTemplatedTexts: a 74-token prompt fits CLIP's 75 text tokens
// alone, but not inside the templates ("a bad photo of a {}."): the note says so.
func TestTruncationNoteCountsTemplatedTexts(t *testing.T) {
	prompt := strings.TrimSpace(strings.Repeat("red ", 74))
	a := newTiny(t, fixedParser{prompt: nil})
	rep, err := a.Assess(context.Background(), imageio.NewRGB8(40, 30), prompt)
	require.NoError(t, err)
	var note string
	for _, n := range rep.Notes {
		if strings.Contains(n, "templated texts") {
			note = n
		}
	}
	require.NotEmpty(t, note, "notes: %v", rep.Notes)
	assert.Contains(t, note, "the prompt is cut")
	assert.Regexp(t, `in \d+ of \d+ templated texts, losing up to \d+ tokens`, note)
	short, err := a.Assess(context.Background(), imageio.NewRGB8(40, 30), "red")
	if err == nil {
		for _, n := range short.Notes {
			assert.NotContains(t, n, "templated texts")
		}
	}
}
