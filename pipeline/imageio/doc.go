// Package imageio reads and writes the images grefine works on, with the limits and
// conversions a production service needs. In a request, resizing (Pillow-exact) and the
// conversions to network inputs run on the request's device (engine.Ops.ResizeImage,
// ToPlanar); ResizePIL (and ResizeBicubicPIL) resize in host memory, for callers outside
// a request.
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
package imageio
