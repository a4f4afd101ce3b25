package tile_test

import (
	"context"
	"fmt"

	"github.com/grefine/grefine/pipeline/tile"
)

// A 2048x1536 image decoded from its latent with diffusers' tiling at 1024 px: 3x2 tiles,
// the last row and column ragged.
func ExampleVAE_DecodePlan() {
	v := tile.VAE{Tile: 1024, Overlap: 0.25, Factor: 8}
	p, err := v.DecodePlan(1536/8, 2048/8)
	if err != nil {
		panic(err)
	}
	fmt.Println("tiled:", p.Tiled(), "calls:", p.Count(), "blend:", p.Rows.Blend, "px, keep:", p.Rows.Keep, "px")
	for _, t := range p.Tiles() {
		fmt.Printf("tile %d,%d: latents [%d,%d)x[%d,%d) -> %dx%d px\n", t.Row, t.Col, t.Y, t.Y+t.H, t.X, t.X+t.W, t.OutW, t.OutH)
	}
	// A stand-in decoder (the real one is a network): every output pixel 1.
	img, err := p.Run(context.Background(), make([]float32, 4*p.InH*p.InW), 4, 3,
		func(_ context.Context, t tile.Tile, _ []float32) ([]float32, error) {
			out := make([]float32, 3*t.OutH*t.OutW)
			for i := range out {
				out[i] = 1
			}
			return out, nil
		})
	fmt.Println(len(img) == 3*1536*2048, img[0], img[len(img)-1], err)
	// Output:
	// tiled: true calls: 6 blend: 256 px, keep: 768 px
	// tile 0,0: latents [0,128)x[0,128) -> 1024x1024 px
	// tile 0,1: latents [0,128)x[96,224) -> 1024x1024 px
	// tile 0,2: latents [0,128)x[192,256) -> 512x1024 px
	// tile 1,0: latents [96,192)x[0,128) -> 1024x768 px
	// tile 1,1: latents [96,192)x[96,224) -> 1024x768 px
	// tile 1,2: latents [96,192)x[192,256) -> 512x768 px
	// true 1 1 <nil>
}

// A 160x96 latent (1280x768 px) denoised in 64-latent tiles overlapping by 16: the last
// column is pushed back so all tiles are 64x64.
func ExampleGrid_Windows() {
	g := tile.Grid{Tile: 64, Overlap: 16}
	for _, w := range g.Windows(96, 160) {
		fmt.Printf("%+v\n", w)
	}
	// Output:
	// {Y:0 X:0 H:64 W:64}
	// {Y:0 X:48 H:64 W:64}
	// {Y:0 X:96 H:64 W:64}
	// {Y:32 X:0 H:64 W:64}
	// {Y:32 X:48 H:64 W:64}
	// {Y:32 X:96 H:64 W:64}
}

// The crop box around a small mask in a 4096x3072 image, for a 1024x768 working size and
// 32 px of padding: the padded box is grown to 4:3.
func ExampleCropRegion() {
	const w, h = 4096, 3072
	mask := make([]float32, w*h)
	for y := 1000; y < 1100; y++ {
		for x := 2000; x < 2300; x++ {
			mask[y*w+x] = 1
		}
	}
	box, err := tile.CropRegion(mask, w, h, 1024, 768, 32)
	fmt.Printf("%+v %dx%d %v\n", box, box.W(), box.H(), err)
	// Output:
	// {X1:1968 Y1:914 X2:2332 Y2:1187} 364x273 <nil>
}
