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

// BlendTensors are the inputs of a device's BlendStep as engine tensors (float32, all on
// the device): NoisePred [2B,C,h,w] (unconditional rows first), X [B,C,h,w], and the
// optional Init, Noise, Hist [B,C,h,w] and Mask [B,1,h,w] (nil = absent, as in
// engine/cpu.BlendIn).
type BlendTensors struct {
	NoisePred, X, Init, Noise, Mask Tensor
	Hist                            [2]Tensor
}

// CopyStats count the copies a device's ops made between host and device memory.
type CopyStats struct {
	HostToDevice int   `json:"host_to_device"`
	DeviceToHost int   `json:"device_to_host"`
	BytesH2D     int64 `json:"bytes_h2d"`
	BytesD2H     int64 `json:"bytes_d2h"`
}

// Sub returns s − o (the copies made between two readings).
func (s CopyStats) Sub(o CopyStats) CopyStats {
	return CopyStats{s.HostToDevice - o.HostToDevice, s.DeviceToHost - o.DeviceToHost, s.BytesH2D - o.BytesH2D, s.BytesD2H - o.BytesD2H}
}
