package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/grefine/grefine/pipeline/imageio"
)

// Input is one request's input: an image and its prompt.
type Input struct {
	ID     string
	Image  *imageio.RGB8
	Prompt string
	// Path is the image file it was read from ("" for a synthetic image).
	Path string
}

// SyntheticPrompts are the prompts of the built-in set, cycled: the DESIGN example and
// prompts of 1 to 6 nouns, so the alignment side encodes 3 to 13 texts.
var SyntheticPrompts = []string{
	"Mr. Beans wearing sun glasses with blue doctor suit and stripe tie",
	"a red apple on a wooden table",
	"portrait of an old fisherman with a pipe, oil painting",
	"a cat sitting on a windowsill next to a vase of sunflowers",
	"a lighthouse on a cliff at sunset, waves crashing on the rocks",
	"a bowl of ramen with an egg, chopsticks and a glass of beer on a bar counter",
	"a astronaut riding a horse",
	"a cozy library with a fireplace, leather armchairs, a sleeping dog and tall bookshelves",
}

// Synthetic returns n deterministic inputs of size×size: smooth colour fields with discs
// and bars and seeded noise (the same n, size and seed give the same pixels on every
// machine), paired with SyntheticPrompts in turn.
func Synthetic(n, size int, seed uint64) ([]Input, error) {
	if n < 1 || size < 1 {
		return nil, fmt.Errorf("synthetic inputs: want n >= 1 and size >= 1, got %d, %d", n, size)
	}
	out := make([]Input, n)
	for i := range out {
		out[i] = Input{ID: fmt.Sprintf("synthetic-%03d", i), Image: syntheticImage(size, seed+uint64(i)),
			Prompt: SyntheticPrompts[i%len(SyntheticPrompts)]}
	}
	return out, nil
}

func syntheticImage(size int, seed uint64) *imageio.RGB8 {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	img := imageio.NewRGB8(size, size)
	base := [3]float64{40 + 150*r.Float64(), 40 + 150*r.Float64(), 40 + 150*r.Float64()}
	grad := [3]float64{120 * (r.Float64() - 0.5), 120 * (r.Float64() - 0.5), 120 * (r.Float64() - 0.5)}
	cx, cy, rad := r.Float64(), r.Float64(), 0.1+0.25*r.Float64()
	disc := [3]float64{255 * r.Float64(), 255 * r.Float64(), 255 * r.Float64()}
	bar0, bar1 := 0.6+0.2*r.Float64(), 0.05+0.1*r.Float64()
	s := float64(size)
	for y := 0; y < size; y++ {
		fy := float64(y) / s
		for x := 0; x < size; x++ {
			fx := float64(x) / s
			var c [3]float64
			for k := range c {
				c[k] = base[k] + grad[k]*(fx+fy-1) + 30*math.Sin(6.3*(fx*float64(k+1)+fy))
			}
			if math.Hypot(fx-cx, fy-cy) < rad {
				c = disc
			}
			if fy > bar0 && fy < bar0+bar1 {
				c = [3]float64{c[2] * 0.5, c[0] * 0.5, c[1] * 0.5}
			}
			o := 3 * (y*size + x)
			for k := range c {
				img.Pix[o+k] = uint8(math.Max(0, math.Min(255, math.Round(c[k]+12*r.NormFloat64()))))
			}
		}
	}
	return img
}

// inputLine is one line of an inputs JSONL file.
type inputLine struct {
	ID     string  `json:"id"`
	Image  string  `json:"image"`
	Prompt *string `json:"prompt"`
}

// Decoder decodes an image file's bytes (the pipeline's DecodeImage, within its limits).
type Decoder func(data []byte) (*imageio.RGB8, error)

// LoadJSONL reads inputs from a JSONL file: one {"image": "a.png", "prompt": "...",
// "id": "optional"} object per line, image paths relative to the file's directory.
// Blank lines are skipped; anything else that is not such an object is an error that
// names the line. decode nil means imageio.Decode with imageio.DefaultLimits.
func LoadJSONL(path string, decode Decoder) ([]Input, error) {
	if decode == nil {
		decode = func(b []byte) (*imageio.RGB8, error) {
			return imageio.Decode(bytes.NewReader(b), imageio.DefaultLimits)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inputs: %w", err)
	}
	defer f.Close()
	var out []Input
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var l inputLine
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return nil, fmt.Errorf("inputs: %s:%d: %v (want {\"image\": PATH, \"prompt\": TEXT, \"id\": NAME})", path, n, err)
		}
		if l.Image == "" || l.Prompt == nil {
			return nil, fmt.Errorf("inputs: %s:%d: \"image\" and \"prompt\" are required", path, n)
		}
		p := l.Image
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(path), p)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("inputs: %s:%d: %w", path, n, err)
		}
		img, err := decode(data)
		if err != nil {
			return nil, fmt.Errorf("inputs: %s:%d: %s: %w", path, n, p, err)
		}
		id := l.ID
		if id == "" {
			id = fmt.Sprintf("line-%d", n)
		}
		out = append(out, Input{ID: id, Image: img, Prompt: *l.Prompt, Path: p})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("inputs: %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("inputs: %s: no inputs", path)
	}
	return out, nil
}
