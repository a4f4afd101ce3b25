// Package imageio reads and writes the images grefine works on, with the limits and
// conversions a production service needs, and resizes them exactly like the Python
// reference (Pillow) does.
//
// # Reading
//
// Decode accepts PNG, JPEG and GIF (first frame). It reads the header first and refuses,
// before decoding any pixel, an image whose byte size, pixel count or side exceeds the
// Limits (so a 30000×30000 header cannot exhaust memory), and any 0×0 image. Every
// accepted image becomes 8-bit RGB (RGB8), by these documented conversions:
//
//   - 16-bit channels: rounded to 8 bits (v·255/65535, rounded to nearest).
//   - Alpha: dropped, keeping the stored colour (Pillow's convert("RGB") does the same;
//     the reference code uses it). Premultiplied sources are un-premultiplied first.
//   - Grey, grey+alpha, paletted: expanded to RGB.
//   - CMYK and YCbCr JPEG: converted with Go's colour models (Adobe-inverted CMYK JPEGs
//     are handled by image/jpeg).
//
// Errors wrap ErrDecode (corrupt, truncated, unknown format) or ErrLimit (too large, empty).
//
// # Writing
//
// WritePNG writes atomically: a temporary file in the destination directory, fsync, then
// rename, so a reader never sees a half-written output and a failure leaves no file.
//
// # Resizing
//
// ResizeBicubicPIL reproduces Pillow's Image.resize(size, Image.BICUBIC) on 8-bit RGB bit
// for bit: separable two-pass (horizontal, then vertical) convolution with the Keys cubic
// a = -0.5, support scaled by the reduction factor (antialiasing), coefficients normalised
// and quantised to 22-bit fixed point, rounding and clamping to 8 bits after each pass.
// CLIPInput then squashes an image to the CLIP input size and normalises it
// (DESIGN §1.1).
package imageio
