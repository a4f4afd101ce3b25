package cpu

import (
	"fmt"
	"math"

	"github.com/grefine/grefine/engine"
)

// dot is the float64 dot product of two float32 vectors, summed in index order.
func dot(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// GoodProbs is the PQ softmax (DESIGN §1.2): for tokens [B, T, D] and pqText [4, 2, D]
// (per dimension i the "good" row 2i, then the "bad" row 2i+1) it writes good [B, 4, T]:
//
//	good[b,i,t] = float32(1 / (1 + exp(dot(tok, bad_i) - dot(tok, good_i))))
//
// with float64 dot products summed in index order. This is grf_pq_probs' reference.
func GoodProbs(tokens []float32, B, T, D int, pqText, good []float32) error {
	if B < 0 || T < 0 || D < 1 || len(tokens) != B*T*D || len(pqText) != 8*D || len(good) != B*4*T {
		return fmt.Errorf("%w: cpu: GoodProbs: tokens %d values for [%d,%d,%d], pq_text %d for [4,2,%d], good %d",
			engine.ErrShape, len(tokens), B, T, D, len(pqText), D, len(good))
	}
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			tok := tokens[(b*T+t)*D : (b*T+t+1)*D]
			for i := 0; i < 4; i++ {
				g := dot(tok, pqText[(2*i)*D:(2*i+1)*D])
				bad := dot(tok, pqText[(2*i+1)*D:(2*i+2)*D])
				good[(b*4+i)*T+t] = float32(1 / (1 + math.Exp(bad-g)))
			}
		}
	}
	return nil
}

// ScatterRows writes row i of src [n, D] to row index[i] of dst [m, D]. This is
// grf_scatter_rows' reference.
func ScatterRows(src []float32, index []int32, dst []float32, D int) error {
	n := len(index)
	if D < 1 || len(src) != n*D || len(dst)%D != 0 {
		return fmt.Errorf("%w: cpu: ScatterRows: %d rows of %d with %d and %d values", engine.ErrShape, n, D, len(src), len(dst))
	}
	m := len(dst) / D
	for i, r := range index {
		if r < 0 || int(r) >= m {
			return fmt.Errorf("%w: cpu: ScatterRows: index %d of row %d is outside [0,%d)", engine.ErrShape, r, i, m)
		}
	}
	for i, r := range index {
		copy(dst[int(r)*D:(int(r)+1)*D], src[i*D:(i+1)*D])
	}
	return nil
}

// Ensemble is the template ensemble of text features (DESIGN §1.3): for emb [N*K, D]
// (text i's K templated embeddings in rows i*K..i*K+K-1) and R = empty [D] (nil: none)
// it writes dst [N, D], per text, in float64:
//
//	n_k = |emb_k| (0 counts as 1); acc[d] = Σ_k emb_k[d]/n_k (k order); acc /= K
//	dst[d] = float32(acc[d]/|acc| - R[d])          (|acc| = 0 counts as 1)
//
// This is grf_text_ensemble's reference.
func Ensemble(emb []float32, N, K, D int, R, dst []float32) error {
	if N < 0 || K < 1 || D < 1 || len(emb) != N*K*D || len(dst) != N*D || (R != nil && len(R) != D) {
		return fmt.Errorf("%w: cpu: Ensemble: %d values for [%d*%d,%d], empty %d, dst %d", engine.ErrShape, len(emb), N, K, D, len(R), len(dst))
	}
	acc := make([]float64, D)
	for i := 0; i < N; i++ {
		for d := range acc {
			acc[d] = 0
		}
		for k := 0; k < K; k++ {
			row := emb[(i*K+k)*D : (i*K+k+1)*D]
			n := 0.0
			for _, v := range row {
				n += float64(v) * float64(v)
			}
			n = math.Sqrt(n)
			if n == 0 {
				n = 1
			}
			for d, v := range row {
				acc[d] += float64(v) / n
			}
		}
		n := 0.0
		for d := range acc {
			acc[d] /= float64(K)
			n += acc[d] * acc[d]
		}
		n = math.Sqrt(n)
		if n == 0 {
			n = 1
		}
		f := dst[i*D : (i+1)*D]
		for d := range f {
			v := acc[d] / n
			if R != nil {
				v -= float64(R[d])
			}
			f[d] = float32(v)
		}
	}
	return nil
}

// TextMaps is the alignment map A of K text features (DESIGN §1.3): tokens [T, D] with
// T = 1 + gridH*gridW (token 0 is CLS, then the patches row-major), feats [K, D], dst
// [H, W]. Reference loop:
//
//	dst = 0
//	for k in 0..K-1:
//	  v[t] = float32(dot(tokens[1+t], feats[k]))   (float64, index order), t < gridH*gridW
//	  v = MinMaxNormalize(v); m = ResizeBilinear(v as gridH×gridW -> H×W)
//	  dst = max(dst, m)
//
// This is grf_text_maps' reference.
func TextMaps(tokens []float32, gridH, gridW, D int, feats []float32, H, W int, dst []float32) error {
	G := gridH * gridW
	if gridH < 1 || gridW < 1 || D < 1 || H < 1 || W < 1 || len(tokens) != (1+G)*D || len(feats)%D != 0 || len(dst) != H*W {
		return fmt.Errorf("%w: cpu: TextMaps: tokens %d values for grid %dx%d dim %d, feats %d, map %dx%d with %d",
			engine.ErrShape, len(tokens), gridH, gridW, D, len(feats), H, W, len(dst))
	}
	for i := range dst {
		dst[i] = 0
	}
	v := make([]float32, G)
	m := make([]float32, H*W)
	for k := 0; k < len(feats)/D; k++ {
		f := feats[k*D : (k+1)*D]
		for t := 0; t < G; t++ {
			v[t] = float32(dot(tokens[(1+t)*D:(2+t)*D], f))
		}
		if err := MinMaxNormalize(v, v); err != nil {
			return err
		}
		if err := ResizeBilinear(v, 1, gridH, gridW, m, H, W); err != nil {
			return err
		}
		for i, x := range m {
			dst[i] = max(dst[i], x)
		}
	}
	return nil
}
