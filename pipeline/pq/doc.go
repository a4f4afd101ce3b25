// Package pq describes G-Refine's perceptual-quality indicators (paper eq. 1-3, DESIGN
// §1.2), computed from CLIP-Surgery tokens on the request's device.
//
// Inputs: tokens [B, T, D] from the clip_surgery engine (T = 1 + grid², D = 512, each
// channel already L2-normalised across the tokens by the graph) and the model set's
// constant pq_text [4, 2, D]: for each dimension i (0 overall, 1 technical, 2 rationality,
// 3 naturalness) the learned "Good photo." (row 0) and "Bad photo." (row 1) features.
//
// The device's GoodProbs (engine.Ops; engine/cpu states the reference loop) computes,
// per image, dimension and token, S = token·pq_text[i]ᵀ and the probability of "good" as
// the softmax over the pair (temperature 1):
//
//	g[b,i,t] = exp(S_good) / (exp(S_good) + exp(S_bad)) = 1 / (1 + exp(S_bad - S_good))
//
// The cask-effect fusion, the map P, its bicubic upsampling and the defect mask are the
// device's FuseMaps; the report reads the four per-dimension CLS probabilities
// (Dimensions names them, in pq_text order) and p.
package pq
