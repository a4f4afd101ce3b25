// Package aq computes G-Refine's alignment-quality indicators (paper eq. 4-8, Algorithm 1;
// DESIGN §1.3): how well each part of the prompt is present in the image, a map of where
// the prompt is missed, and the alignment score a.
//
// # Text features
//
// Features (TextEncoder) turns texts into CLIP text features the way CLIP-Surgery does:
// each text x is put into the model set's prompt templates (templates.txt, one per line
// with "{}"), the templated strings are tokenised (CLIP BPE, 77 tokens, truncated) and
// encoded by the clip_text engine; the embeddings are L2-normalised, averaged and
// renormalised; the same ensemble of the empty string (the model set's aq_empty, the
// "redundant feature") is subtracted:
//
//	f(x) = normalize(mean_k normalize(E(template_k(x)))) − R
//
// All texts of one request go to the engine in one batched call (split only at
// MaxBatch rows); features are cached across requests in an LRU keyed by the text. When
// the clip_text engine's sequence axis is dynamic (the exporter makes it so), each call's
// rows are cut after the longest EOT of the batch: CLIP's text transformer is causal and
// is read at EOT, so the result is the same as with 77 positions (tested) for a fraction
// of the work — the main reason assess is several times faster than the reference.
//
// # Scores and maps
//
// For a text x and CLIP-Surgery tokens (CLS first, then the grid of patches):
//
//	s(x) = sigmoid(10 · tokens[CLS]·f(x))
//	m(x) = bilinear_upsample(minmax(tokens[patches]·f(x)) as grid) to H×W
//
// (min-max over the patches, zeros when flat; bilinear with PyTorch's
// align_corners=False semantics).
//
// For each part j with a head noun: a_pn = s(noun), a_ph = s(part text). The defect map
// A starts at zero; if a_pn < NounBound (0.5) the object is missing and
// A = max(A, m(text of j's ancestor part)) (j itself when it has none); else if
// a_pn > a_ph the attributes are wrong and A = max(A, m(text of j)). Parts without a
// noun take no part. The score is
//
//	a = s(prompt) · Π_j min(a_ph[j]/Beta, 1)      (Beta = 0.5)
//
// With no noun at all, a = s(prompt) and A is empty.
package aq
