package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"

	"github.com/grefine/grefine/internal/files"
	"github.com/grefine/grefine/internal/npy"
	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/imageio"
)

// fileInput is what the report says of the input file.
type fileInput struct {
	Path       string `json:"path"`
	Bytes      int    `json:"bytes"`
	FileSHA256 string `json:"file_sha256"`
}

// readImage reads an image file within lim, reads its header, lets check refuse its
// size (before any pixel is decoded), then decodes it.
func readImage(path string, lim imageio.Limits, check func(w, h int) error) (*imageio.RGB8, fileInput, error) {
	data, err := imageio.ReadBytes(path, lim)
	if err != nil {
		return nil, fileInput{}, err
	}
	h, err := imageio.Probe(data, lim)
	if err != nil {
		return nil, fileInput{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := check(h.Width, h.Height); err != nil {
		return nil, fileInput{}, err
	}
	img, err := imageio.Decode(bytes.NewReader(data), lim)
	if err != nil {
		return nil, fileInput{}, fmt.Errorf("%s: %w", path, err)
	}
	sum := sha256.Sum256(data)
	return img, fileInput{Path: path, Bytes: len(data), FileSHA256: hex.EncodeToString(sum[:])}, nil
}

// assessReport is report.json of assess.
type assessReport struct {
	*pipeline.Assessment
	File fileInput `json:"file"`
	Maps mapsDoc   `json:"maps"`
}

// refineReport is report.json of refine.
type refineReport struct {
	*pipeline.Refinement
	File   fileInput `json:"file"`
	Output string    `json:"output"`
	Maps   mapsDoc   `json:"maps"`
	Note   string    `json:"note,omitempty"`
}

// mapsDoc says what the map files are, in the report itself.
type mapsDoc struct {
	Convention string   `json:"convention"`
	Files      []string `json:"files,omitempty"`
}

const mapConvention = "p_map.png shows 1-P and a_map.png shows A, both red = bad, blue = good (colour bar below each); " +
	"mask.png is the binary repair mask (255 = repair) at the image's size, the union of p_mask.png (perceptual) and " +
	"a_mask.png (alignment); overlay.png tints the repair region over the image; the .npy files hold P, A and the mask as float32 [H,W]"

// writeMaps stages the map files of a: PNG heatmaps and masks, and with npy the float
// maps. It returns the names written.
func writeMaps(o *outDir, sub string, img *imageio.RGB8, a *pipeline.Assessment, pngs, npys bool) ([]string, error) {
	var names []string
	w, h := a.Width, a.Height
	put := func(name string, write func(io.Writer) error) error {
		path, err := o.stage(sub, name)
		if err != nil {
			return err
		}
		names = append(names, name)
		return files.WriteAtomic(path, write)
	}
	putPNG := func(name string, m image.Image) error {
		return put(name, func(wr io.Writer) error { return png.Encode(wr, m) })
	}
	if pngs {
		bad := make([]float32, len(a.PMap))
		for i, v := range a.PMap {
			bad[i] = 1 - v
		}
		if err := putPNG("p_map.png", imageio.HeatmapBar(bad, w, h, "perceptual: 1 - P").Image()); err != nil {
			return nil, err
		}
		if a.AMap != nil {
			if err := putPNG("a_map.png", imageio.HeatmapBar(a.AMap, w, h, "alignment: A").Image()); err != nil {
				return nil, err
			}
		}
		if err := putPNG("mask.png", imageio.Binary(a.Mask, w, h)); err != nil {
			return nil, err
		}
		if err := putPNG("p_mask.png", imageio.Binary(a.PerceptualMask, w, h)); err != nil {
			return nil, err
		}
		if a.AlignMask != nil {
			if err := putPNG("a_mask.png", imageio.Binary(a.AlignMask, w, h)); err != nil {
				return nil, err
			}
		}
		if err := putPNG("overlay.png", imageio.Overlay(img, a.Mask, 0.55).Image()); err != nil {
			return nil, err
		}
	}
	if npys {
		shape := []int64{int64(h), int64(w)}
		for _, m := range []struct {
			name string
			data []float32
		}{{"p_map.npy", a.PMap}, {"a_map.npy", a.AMap}, {"mask.npy", a.Mask}} {
			if m.data == nil {
				continue
			}
			if err := put(m.name, func(wr io.Writer) error { return npy.WriteFloat32(wr, shape, m.data) }); err != nil {
				return nil, err
			}
		}
	}
	return names, nil
}

// writeJSONTo stages v as indented JSON.
func writeJSONTo(o *outDir, sub, name string, v any) error {
	path, err := o.stage(sub, name)
	if err != nil {
		return err
	}
	return files.WriteAtomic(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

func printSummary(w io.Writer, a *pipeline.Assessment, dir string) {
	as := "skipped"
	if a.A != nil {
		as = fmt.Sprintf("%.4f", *a.A)
	}
	fmt.Fprintf(w, "p=%.4f a=%s q=%.4f mask=%.1f%% -> %s\n", a.P, as, a.Q, 100*a.MaskFraction, dir)
	for _, p := range a.Parts {
		ns := "    -"
		if p.Noun != "" {
			ns = fmt.Sprintf("%.3f", p.NounScore)
		}
		fmt.Fprintf(w, "  %-28q noun=%-12q a_pn=%s a_ph=%.3f %s\n", p.Text, p.Noun, ns, p.PhraseScore, p.Kind)
	}
	for _, n := range a.Notes {
		fmt.Fprintln(w, "  note:", n)
	}
}
