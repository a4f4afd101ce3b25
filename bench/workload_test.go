package bench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/pipeline/imageio"
)

type engineShape = engine.Shape

func engineOpen(name string) engine.OpenOptions { return engine.OpenOptions{Name: name} }

func TestResolveAndParseShape(t *testing.T) {
	d := engine.TensorDesc{Name: "sample", DType: engine.Float32, Shape: engine.Shape{-1, 9, -1, -1}}
	assert.Equal(t, engine.Shape{2, 9, 128, 128}, ResolveShape("sdxl_unet", d, 1024, 2))
	d = engine.TensorDesc{Name: "images", DType: engine.Float32, Shape: engine.Shape{-1, 3, -1, -1}}
	assert.Equal(t, engine.Shape{1, 3, 256, 256}, ResolveShape("sdxl_vae_encoder", d, 256, 1))
	d = engine.TensorDesc{Name: "input_ids", DType: engine.Int32, Shape: engine.Shape{-1, -1}}
	assert.Equal(t, engine.Shape{4, 77}, ResolveShape("clip_text", d, 256, 4))
	s, err := ParseShape("2x9x32x32")
	assert.NoError(t, err)
	assert.Equal(t, engine.Shape{2, 9, 32, 32}, s)
	assert.Equal(t, "2x9x32x32", FormatShape(s))
	for _, bad := range []string{"", "2x", "ax3", "0x3", "-1x3", "2x 3", "02x3"} {
		_, err := ParseShape(bad)
		assert.Error(t, err, bad)
	}
}

func TestSyntheticDeterministic(t *testing.T) {
	a, err := Synthetic(3, 40, 5)
	assert.NoError(t, err)
	b, _ := Synthetic(3, 40, 5)
	c, _ := Synthetic(3, 40, 6)
	assert.Equal(t, a[2].Image.Pix, b[2].Image.Pix)
	assert.NotEqual(t, a[0].Image.Pix, c[0].Image.Pix)
	assert.NotEqual(t, a[0].Image.Pix, a[1].Image.Pix)
	assert.Equal(t, SyntheticPrompts[1], a[1].Prompt)
	_, err = Synthetic(0, 4, 1)
	assert.Error(t, err)
}

func TestLoadJSONL(t *testing.T) {
	dir := t.TempDir()
	in, _ := Synthetic(1, 70, 1)
	assert.NoError(t, imageio.WritePNG(filepath.Join(dir, "a.png"), in[0].Image.Image()))
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		assert.NoError(t, os.WriteFile(p, []byte(body), 0o644))
		return p
	}
	got, err := LoadJSONL(write("ok.jsonl", `{"image": "a.png", "prompt": "a cat", "id": "one"}`+"\n\n"+`{"image": "a.png", "prompt": ""}`+"\n"), nil)
	assert.NoError(t, err)
	if assert.Len(t, got, 2) {
		assert.Equal(t, "one", got[0].ID)
		assert.Equal(t, "line-3", got[1].ID)
		assert.Equal(t, in[0].Image.Pix, got[0].Image.Pix)
		assert.Equal(t, "", got[1].Prompt)
	}
	for name, body := range map[string]string{
		"empty.jsonl":    "\n",
		"badjson.jsonl":  `{"image": "a.png"`,
		"noprompt.jsonl": `{"image": "a.png"}`,
		"unknown.jsonl":  `{"image": "a.png", "prompt": "x", "size": 3}`,
		"missing.jsonl":  `{"image": "nope.png", "prompt": "x"}`,
		"notimg.jsonl":   `{"image": "notimg.jsonl", "prompt": "x"}`,
	} {
		_, err := LoadJSONL(write(name, body), nil)
		assert.Error(t, err, name)
	}
	_, err = LoadJSONL(filepath.Join(dir, "absent.jsonl"), nil)
	assert.Error(t, err)
}
