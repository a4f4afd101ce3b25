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
// All texts of one request are encoded together, on the request's device: their token ids
// go up in one copy, the text engine and the ensemble run there (engine.Ops.ScatterRows,
// Ensemble), and the features come back in one copy. Features are cached across requests
// and pipeline slots in an LRU in host memory keyed by the text (cacheSize 0 turns the
// cache off); TextEncoder.With gives each slot its engine and stream over one cache.
//
// # Less work, same features
//
// CLIP's text transformer is causal and is read at EOT, so two things can be left out
// without changing a feature (tests: within 1e-6 of every row at 77 positions):
//
//   - Padding. The rows of a request are sorted by their number of tokens and run in
//     length buckets, each cut after its longest EOT (the clip_text engine's sequence
//     axis is dynamic). The buckets are chosen to minimise padded positions plus a fixed
//     cost per engine call (BucketOverhead, TextEncoder.CallCost), so the work approaches
//     the per-row minimum: 8,167 positions for the DESIGN example's 765 rows (minimum
//     8,149), against 18,360 when all rows are cut to the longest and 58,905 at 77.
//   - Template prefixes. The hidden states of a template's tokens before "{}" ("a bad
//     photo of a") are the same for every text that fills it. When the model set has the
//     optional clip_text_kv engine (KVEngine), NewTextEncoder runs the 85 prefixes once
//     and keeps their keys and values; each row then runs only its tokens from "{}" to
//     EOT against the cached prefix: 4,141 positions for the DESIGN example, about half of
//     the per-row minimum. A row whose tokens do not start with its template's prefix (a
//     text that merges with the template's last word) falls back to a prefix of SOT alone.
//     Without clip_text_kv the plain clip_text contract is used as before.
//
// Work reports the calls, rows and positions the engine computed.
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
// The scores are computed on the host from the CLS token (read back once) and the
// features; the map A of the parts Compute lists (Result.Maps) on the device
// (engine.Ops.TextMaps, with MapFeatures).
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
