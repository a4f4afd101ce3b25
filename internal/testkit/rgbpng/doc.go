// Package rgbpng reads a PNG into packed 8-bit RGB ([H, W, 3] bytes) for tests that
// compare pixels with goldens made in Python (Pillow's resizes in engine/cpu/testdata/pillow):
//
//	pix, w, h := rgbpng.Read(t, filepath.Join("testdata", "pillow", "pil7_224x224.png"))
//
// A file that does not open or decode fails the test. It imports nothing of grefine, so the
// tests of any package (engine/cpu's own included) can use it.
package rgbpng
