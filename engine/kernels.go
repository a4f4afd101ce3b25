package engine

import (
	"fmt"
	"math"
)

// FuseParams are the parameters of the quality-map fusion (DESIGN §1.2, §1.4) shared by
// the cpu device's FuseMaps and the cuda device's kernel. Token count T = 1+GridH*GridW.
type FuseParams struct {
	// GridH, GridW: the patch grid (14×14 for CLIP ViT-B/16 at 224²).
	GridH, GridW int
	// Height, Width: image resolution of the maps P and mask_img.
	Height, Width int
	// LatentH, LatentW: resolution of mask_lat.
	LatentH, LatentW int
	// Radius: dilation radius in image pixels ((2r+1)² square max filter); 0 = none.
	Radius int
	// Alpha: cask thresholds of dimensions technical, rationality, naturalness.
	Alpha [3]float32
	// PerceptualBound: P below it is a perceptual defect (100/255) ...
	PerceptualBound float32
	// PerceptualGate: ... when the raw upsampled cask map is also below it (τ_p = 0.5).
	PerceptualGate float32
	// AlignBound: alignment map above it is a defect (170/255).
	AlignBound float32
}

// Default fusion constants (DESIGN §1.2-§1.4).
var (
	DefaultAlpha           = [3]float32{0.935, 0.892 * 0.6, 0.826 * 0.8}
	DefaultPerceptualBound = float32(100.0 / 255.0)
	DefaultPerceptualGate  = float32(0.5)
	DefaultAlignBound      = float32(170.0 / 255.0)
)

// DefaultFuseParams returns the default constants for an image of height×width with a
// 14×14 patch grid, latents at 1/8 resolution and no dilation.
func DefaultFuseParams(height, width int) FuseParams {
	return FuseParams{
		GridH: 14, GridW: 14,
		Height: height, Width: width,
		LatentH: height / 8, LatentW: width / 8,
		Alpha:           DefaultAlpha,
		PerceptualBound: DefaultPerceptualBound,
		PerceptualGate:  DefaultPerceptualGate,
		AlignBound:      DefaultAlignBound,
	}
}

// MaxFuseGrid bounds GridH*GridW (the CUDA kernel's limit).
const MaxFuseGrid = 4096

// Tokens is T = 1 + GridH*GridW.
func (p FuseParams) Tokens() int { return 1 + p.GridH*p.GridW }

// Validate checks the sizes and constants.
func (p FuseParams) Validate() error {
	switch {
	case p.GridH < 1 || p.GridW < 1 || p.GridH*p.GridW > MaxFuseGrid:
		return fmt.Errorf("%w: fuse: grid %dx%d (want 1..%d patches)", ErrShape, p.GridH, p.GridW, MaxFuseGrid)
	case p.Height < 1 || p.Width < 1 || p.LatentH < 1 || p.LatentW < 1:
		return fmt.Errorf("%w: fuse: image %dx%d, latent %dx%d", ErrShape, p.Height, p.Width, p.LatentH, p.LatentW)
	case p.Radius < 0:
		return fmt.Errorf("%w: fuse: negative dilation radius %d", ErrShape, p.Radius)
	case !(p.Alpha[0] > 0) || !(p.Alpha[1] > 0) || !(p.Alpha[2] > 0):
		return fmt.Errorf("%w: fuse: alpha %v must be > 0", ErrShape, p.Alpha)
	}
	return nil
}

// BlendCoeffs are the coefficients of the fused CFG + scheduler step + masked blending:
//
//	eps = u + Guidance*(c - u)
//	out = m*(CA*x + CB*eps + CH[0]*h0 + CH[1]*h1) + (1-m)*(CC*init + CD*noise)
//	x0  = CE*x + CF*eps
type BlendCoeffs struct {
	Guidance float32
	CA, CB   float32
	CC, CD   float32
	CH       [2]float32
	CE, CF   float32
}

// EulerCoeffs are the coefficients of one Euler discrete step (epsilon prediction) from
// sigma to sigmaNext, as diffusers' EulerDiscreteScheduler.step with s_churn = 0:
// x' = x + (sigmaNext - sigma)*eps; the re-noised original is init + sigmaNext*noise; the
// predicted clean sample is x0 = x - sigma*eps.
func EulerCoeffs(guidance, sigma, sigmaNext float64) BlendCoeffs {
	return BlendCoeffs{
		Guidance: float32(guidance),
		CA:       1, CB: float32(sigmaNext - sigma),
		CC: 1, CD: float32(sigmaNext),
		CE: 1, CF: float32(-sigma),
	}
}

// DDIMCoeffs are the coefficients of one DDIM step with eta = 0 from cumulative alpha a
// to aPrev (diffusers' DDIMScheduler.step): x0 = (x - sqrt(1-a)*eps)/sqrt(a) and
// x' = sqrt(aPrev)*x0 + sqrt(1-aPrev)*eps; the re-noised original is
// sqrt(aPrev)*init + sqrt(1-aPrev)*noise.
func DDIMCoeffs(guidance, a, aPrev float64) BlendCoeffs {
	sa, sp := math.Sqrt(a), math.Sqrt(aPrev)
	s1a, s1p := math.Sqrt(1-a), math.Sqrt(1-aPrev)
	return BlendCoeffs{
		Guidance: float32(guidance),
		CA:       float32(sp / sa), CB: float32(s1p - sp*s1a/sa),
		CC: float32(sp), CD: float32(s1p),
		CE: float32(1 / sa), CF: float32(-s1a / sa),
	}
}

// ResizeMode selects the interpolation of a resize op; all modes follow PyTorch's
// F.interpolate with align_corners=False.
type ResizeMode int

// Resize modes (values equal the C ABI's GRF_RESIZE_*).
const (
	ResizeNearest ResizeMode = iota
	ResizeBilinear
	ResizeBicubic
)

// String returns "nearest", "bilinear" or "bicubic".
func (m ResizeMode) String() string {
	switch m {
	case ResizeNearest:
		return "nearest"
	case ResizeBilinear:
		return "bilinear"
	case ResizeBicubic:
		return "bicubic"
	}
	return fmt.Sprintf("resize(%d)", int(m))
}

// BlendTensors are the inputs of BlendStep (float32, all on the stream's device):
// NoisePred [2B,C,h,w] (unconditional rows first), X [B,C,h,w], and the optional Init,
// Noise, Hist [B,C,h,w] and Mask [B,1,h,w] (nil = absent).
type BlendTensors struct {
	NoisePred, X, Init, Noise, Mask Tensor
	Hist                            [2]Tensor
}

// FuseOutputs are FuseMaps' output tensors (float32): Score [B], PMap and MaskImg [B,H,W],
// MaskLat [B,h,w].
type FuseOutputs struct {
	Score, PMap, MaskImg, MaskLat Tensor
}

// PointwiseOp selects the elementwise operation of Pointwise.
type PointwiseOp int

// Elementwise operations (values equal the C ABI's GRF_POINT_*). n is Src's element count;
// float32 arithmetic unless stated, each operation rounded (no fused multiply-add).
const (
	// PointAffine: dst[i] = src[i]*A + B, then clamped to [0,1] when Clamp01.
	PointAffine PointwiseOp = iota + 1
	// PointScale: dst[j*n+i] = float32(float64(src[i]) * S) for each of the len(dst)/n
	// copies j (len(dst) a positive multiple of n).
	PointScale
	// PointUnscale: dst[i] = float32(float64(src[i]) / S).
	PointUnscale
	// PointLerp: dst[i] = float32(S*float64(src[i]) + T*float64(src2[i])).
	PointLerp
	// PointMaximum: dst[i] = max(src[i], src2[i]).
	PointMaximum
	// PointGreater: dst[i] = 1 if src[i] > A, else 0.
	PointGreater
	// PointAtLeast: dst[i] = 1 if src[i] >= A, else 0.
	PointAtLeast
	// PointMaskedAffine: for the planes of src (len(src)/len(mask) of them) and pixel p:
	// dst[c,p] = src[c,p]*A + B if mask[p] < 0.5, else 0 (the inpainting masked image).
	PointMaskedAffine
	// PointDivide: for the planes of src (len(src)/len(mask) of them) and pixel p:
	// dst[c,p] = src[c,p] / mask[p] (the tiled denoising's weighted average: Mask holds
	// the summed weights).
	PointDivide
)

var pointNames = map[PointwiseOp]string{PointAffine: "affine", PointScale: "scale", PointUnscale: "unscale",
	PointLerp: "lerp", PointMaximum: "maximum", PointGreater: "greater", PointAtLeast: "at_least", PointMaskedAffine: "masked_affine", PointDivide: "divide"}

// String names the operation ("affine").
func (o PointwiseOp) String() string {
	if s, ok := pointNames[o]; ok {
		return s
	}
	return fmt.Sprintf("pointwise(%d)", int(o))
}

// ResampleFilter is a Pillow filter of ResizeImage (values equal the C ABI's
// GRF_RESAMPLE_*).
type ResampleFilter int

// Pillow's filters (engine/pillow).
const (
	// ResampleBicubic is Pillow's BICUBIC (Keys cubic, a = -0.5).
	ResampleBicubic ResampleFilter = iota
	// ResampleLanczos is Pillow's LANCZOS (sinc(x)·sinc(x/3), support 3).
	ResampleLanczos
)

// String returns "bicubic" or "lanczos".
func (f ResampleFilter) String() string {
	switch f {
	case ResampleBicubic:
		return "bicubic"
	case ResampleLanczos:
		return "lanczos"
	}
	return fmt.Sprintf("resample(%d)", int(f))
}

// Resample selects ResizeImage's filter and source box. The zero value is Pillow's
// Image.resize(size, BICUBIC) of the whole image.
type Resample struct {
	Filter ResampleFilter
	// Box, if set, is Pillow's box: the source rectangle [Box[0], Box[2]) × [Box[1],
	// Box[3]) in pixels, taken in float32 (fractional and zero-extent boxes allowed).
	Box *[4]float64
}

// Tiles are n = len(Y) windows of one size TH×TW of a plane, the k-th at row Y[k] and
// column X[k] (tiled denoising: engine.Ops.TileGather and TileAccumulate).
type Tiles struct {
	TH, TW int
	Y, X   []int
}

// MaxTiles bounds the windows of one TileGather or TileAccumulate call (the kernels take
// them by value, in their launch parameters).
const MaxTiles = 64

// Check validates the windows against an h×w plane.
func (t Tiles) Check(op string, h, w int) error {
	if t.TH < 1 || t.TW < 1 || len(t.Y) < 1 || len(t.Y) != len(t.X) || len(t.Y) > MaxTiles {
		return fmt.Errorf("%w: %s: %d windows of %dx%d (want 1..%d of at least 1x1)", ErrShape, op, len(t.Y), t.TW, t.TH, MaxTiles)
	}
	for k := range t.Y {
		if t.Y[k] < 0 || t.X[k] < 0 || t.Y[k]+t.TH > h || t.X[k]+t.TW > w {
			return fmt.Errorf("%w: %s: window %d at (%d,%d) of %dx%d outside the %dx%d plane", ErrShape, op, k, t.X[k], t.Y[k], t.TW, t.TH, w, h)
		}
	}
	return nil
}

// Pointwise is one elementwise operation over float32 tensors of one device. Dst may be
// Src or Src2 (each element is read before it is written), except with PointScale copies.
type Pointwise struct {
	Op                   PointwiseOp
	Dst, Src, Src2, Mask Tensor
	A, B                 float32
	Clamp01              bool
	S, T                 float64
}

// Ops are the non-network operations of the pipeline, as one Stream runs them: each is a
// CUDA kernel on the cuda devices and a pure-Go reference function of the same name in
// engine/cpu that states the reference loop (cgo/include/grefine_cuda.h documents the
// same loops). Tensors must be on the stream's device (else ErrDevice naming both
// devices), float32 unless stated; shapes are checked (ErrShape, ErrDType) before any
// work. Outputs must not overlap inputs unless an op says otherwise.
type Ops interface {
	// ResizeImage resizes an RGB image, uint8 [H,W,3], to dst [h,w,3] exactly as Pillow
	// 13's Image.resize((w, h), filter, box) does (fixed-point, antialiased, Pillow 13's
	// pass order; engine/pillow is the reference).
	ResizeImage(src, dst Tensor, r Resample) error
	// ToPlanar converts uint8 [H,W,3] to float32 planar [3,H,W] (any shape of 3HW
	// elements): dst[c,p] = (float32(src[p,c])/255 - mean[c]) / std[c].
	ToPlanar(src, dst Tensor, mean, std [3]float32) error
	// FromPlanar converts float32 planar [3,H,W] (any shape of 3HW elements) to uint8
	// [H,W,3]: dst[p,c] = uint8(clamp(src[c,p], 0, 1)*255 + 0.5).
	FromPlanar(src, dst Tensor) error
	// Paste copies the pixels of src (uint8 [H,W,3]) where mask [H,W] < 0.5 into dst.
	Paste(dst, src, mask Tensor) error

	// Resize resizes planes [..., H, W] to [..., h, w] with PyTorch F.interpolate
	// semantics (align_corners=False).
	Resize(mode ResizeMode, src, dst Tensor) error
	// Dilate applies a (2r+1)² square max filter to planes [..., H, W], clipped at the
	// borders (r = 0 copies).
	Dilate(src, dst Tensor, radius int) error
	// Pointwise runs one elementwise operation.
	Pointwise(p Pointwise) error
	// CountAtLeast writes the number of src values >= bound into dst, int64 [1].
	CountAtLeast(src Tensor, bound float32, dst Tensor) error
	// BoundingBox writes the box [x1, y1, x2, y2) of the values >= bound of src [..., H, W]
	// (over all planes) into dst, int64 [4]; all zeros when there is none.
	BoundingBox(src Tensor, bound float32, dst Tensor) error
	// FuseMaps is the quality-map fusion (score p, map P, image and latent masks).
	FuseMaps(p FuseParams, good, align Tensor, out FuseOutputs) error

	// GoodProbs is the PQ softmax: tokens [B,T,D] and pqText [4,2,D] give good [B,4,T],
	// the probability of "good" per dimension and token (float64 dot products).
	GoodProbs(tokens, pqText, good Tensor) error
	// ScatterRows writes row i of src [n,D] to row index[i] of dst [m,D] (index int32 [n],
	// values in [0,m), distinct).
	ScatterRows(src, index, dst Tensor) error
	// Ensemble is the template ensemble of text features: emb [N*K,D] (text i's K rows
	// consecutive), empty [D] (R) give dst [N,D] = normalize(mean_k normalize(emb)) - R.
	Ensemble(emb, empty, dst Tensor) error
	// TextMaps is the alignment map of K text features: dst [H,W] = max over k of the
	// bilinear upsampling of the min-max-normalised patch similarities of tokens [T,D]
	// (T = 1+gridH*gridW, token 0 is CLS) with feats [K,D] (K = 0: zeros).
	TextMaps(tokens, feats Tensor, gridH, gridW int, dst Tensor) error

	// Emphasis scales the rows of hidden [L,D] by weights (len L) and restores the
	// tensor's mean (prompt emphasis); all-ones weights leave it unchanged. In place.
	Emphasis(hidden Tensor, weights []float32) error
	// InpaintInput builds the 9-channel inpainting UNet input duplicated for CFG.
	InpaintInput(scaleIn float32, latents, mask, masked, out Tensor) error
	// BlendStep is CFG + a linear scheduler step + masked latent blending.
	BlendStep(c BlendCoeffs, in BlendTensors, out, x0 Tensor) error
	// TileGather cuts windows out of src [R, C, H, W] into dst [Copies·n, C, TH, TW]
	// (n = len(t.Y), R = 1 or Copies): dst[j·n+k, c, y, x] = src[R == 1 ? 0 : j, c,
	// t.Y[k]+y, t.X[k]+x].
	TileGather(src, dst Tensor, t Tiles) error
	// TileAccumulate adds weighted windows in order: pred [Copies·nb, C, TH, TW] (nb >= n
	// rows per copy; rows k >= n are ignored), weights [TH, TW], acc [Copies, C, h, w],
	// wsum [h, w]; for k < n, then each pixel of window k:
	// acc[j, c, Y+y, X+x] += float32(pred[j·nb+k, c, y, x]·weights[y, x]) for every j, c,
	// and wsum[Y+y, X+x] += weights[y, x].
	TileAccumulate(pred, weights, acc, wsum Tensor, t Tiles) error
	// VAEBlend is diffusers' blend_v (vertical) or blend_h of a tiled VAE, in place on b:
	// a [C, ah, aw] is the neighbour above (or to the left) of b [C, bh, bw]; with
	// e = min(ah, bh, extent) (vertical; widths equal) for y < e:
	// b[c, y, x] = float32(a[c, ah−e+y, x]·float32(1−y/e)) + float32(b[c, y, x]·float32(y/e)),
	// and the same along the width.
	VAEBlend(a, b Tensor, extent int, vertical bool) error
	// ColorFix is PASD's wavelet colour fix of content with the low band of style, all
	// float32 [C,H,W] (leading dims of size 1 allowed), levels >= 1.
	ColorFix(content, style, dst Tensor, levels int) error
}
