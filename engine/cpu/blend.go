package cpu

import (
	"fmt"

	"github.com/grefine/grefine/engine"
)

// BlendIn holds BlendStep's inputs, each [batch, C, h, w] unless stated.
type BlendIn struct {
	// NoisePred is [2*batch, C, h, w]: unconditional rows first, then conditional.
	NoisePred []float32
	// X: the current latents.
	X []float32
	// Init: the clean original latents; nil = zeros (required when Mask is set).
	Init []float32
	// Noise: the re-noising noise; nil = zeros.
	Noise []float32
	// Mask is [batch, 1, h, w], 1 = repaint; nil = all ones (no blending).
	Mask []float32
	// Hist: optional history terms of multistep solvers; nil entries are unused.
	Hist [2][]float32
}

// BlendStep fuses classifier-free guidance, a linear scheduler step and masked latent
// blending (DESIGN §1.4). Reference loop, i = (b*C + c)*h*w + p, in float32:
//
//	eps = u[i] + g*(k[i] - u[i])          (u, k: unconditional, conditional rows)
//	xm = CA*x[i] + CB*eps + CH[0]*h0[i] + CH[1]*h1[i]   (absent terms skipped)
//	out[i] = xm                                          if Mask == nil
//	out[i] = m*xm + (1-m)*(CC*init[i] + CD*noise[i])    else, m = Mask[b*h*w + p]
//	x0[i] = CE*x[i] + CF*eps                             if x0 != nil
//
// out may be in.X (in place); x0 may be nil, or in.X, but not out. This is
// grf_blend_step's reference.
func BlendStep(c engine.BlendCoeffs, batch, channels, h, w int, in BlendIn, out, x0 []float32) error {
	if batch < 0 || channels < 0 || h < 0 || w < 0 {
		return fmt.Errorf("%w: cpu: BlendStep: negative size", engine.ErrShape)
	}
	hw := h * w
	chw := channels * hw
	n := batch * chw
	bad := len(in.NoisePred) != 2*n || len(in.X) != n || len(out) != n ||
		(in.Init != nil && len(in.Init) != n) || (in.Noise != nil && len(in.Noise) != n) ||
		(in.Mask != nil && len(in.Mask) != batch*hw) ||
		(in.Hist[0] != nil && len(in.Hist[0]) != n) || (in.Hist[1] != nil && len(in.Hist[1]) != n) ||
		(x0 != nil && len(x0) != n)
	if bad {
		return fmt.Errorf("%w: cpu: BlendStep: tensor lengths do not match [%d,%d,%d,%d]", engine.ErrShape, batch, channels, h, w)
	}
	if in.Mask != nil && in.Init == nil && n > 0 {
		return fmt.Errorf("%w: cpu: BlendStep: mask given without init", engine.ErrShape)
	}
	if x0 != nil && n > 0 && &x0[0] == &out[0] {
		return fmt.Errorf("%w: cpu: BlendStep: x0 and out alias", engine.ErrShape)
	}
	u, k := in.NoisePred[:n], in.NoisePred[n:]
	for i := 0; i < n; i++ {
		eps := u[i] + c.Guidance*(k[i]-u[i])
		x := in.X[i]
		xm := c.CA*x + c.CB*eps
		if in.Hist[0] != nil {
			xm += c.CH[0] * in.Hist[0][i]
		}
		if in.Hist[1] != nil {
			xm += c.CH[1] * in.Hist[1][i]
		}
		if in.Mask != nil {
			m := in.Mask[(i/chw)*hw+i%hw]
			var ini, nz float32
			ini = in.Init[i]
			if in.Noise != nil {
				nz = in.Noise[i]
			}
			xm = m*xm + (1-m)*(c.CC*ini+c.CD*nz)
		}
		out[i] = xm
		if x0 != nil {
			x0[i] = c.CE*x + c.CF*eps
		}
	}
	return nil
}

// InpaintInput builds the inpainting UNet input duplicated for classifier-free guidance
// (DESIGN §1.4): out [2*batch, 2*C+1, h, w] from latents and masked [batch, C, h, w] and
// mask [batch, 1, h, w]. Reference loop, for r in 0..2B-1, b = r mod B:
//
//	out[r, c]     = latents[b, c] * scaleIn   (c < C)
//	out[r, C]     = mask[b, 0]
//	out[r, C+1+c] = masked[b, c]              (c < C)
//
// This is grf_inpaint_input's reference.
func InpaintInput(batch, channels, h, w int, scaleIn float32, latents, mask, masked, out []float32) error {
	hw := h * w
	n := batch * channels * hw
	if batch < 0 || channels < 0 || h < 0 || w < 0 || len(latents) != n || len(masked) != n ||
		len(mask) != batch*hw || len(out) != 2*batch*(2*channels+1)*hw {
		return fmt.Errorf("%w: cpu: InpaintInput: tensor lengths do not match [%d,%d,%d,%d]", engine.ErrShape, batch, channels, h, w)
	}
	for r := 0; r < 2*batch; r++ {
		b := r % batch
		o := out[r*(2*channels+1)*hw:]
		for c := 0; c < channels; c++ {
			src := latents[(b*channels+c)*hw : (b*channels+c+1)*hw]
			dst := o[c*hw : (c+1)*hw]
			for p, v := range src {
				dst[p] = v * scaleIn
			}
		}
		copy(o[channels*hw:(channels+1)*hw], mask[b*hw:(b+1)*hw])
		copy(o[(channels+1)*hw:(2*channels+1)*hw], masked[b*channels*hw:(b+1)*channels*hw])
	}
	return nil
}
