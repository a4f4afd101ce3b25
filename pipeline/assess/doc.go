// Package assess runs G-Refine's quality indicators end to end for one image and its
// prompt: CLIP-Surgery tokens, the perceptual map and score (package pq + the device's
// FuseMaps), the prompt's parts (syntax), the alignment map and score (package aq), the
// fused defect mask at image and latent resolution, and q = (p + a)/2.
//
// An Assessor holds the loaded engines, tokenizer, parser and the feature cache; it is
// safe for concurrent use (engines are run concurrently only if their backend allows it;
// ONNX Runtime does).
//
// Edge cases (DESIGN §1.3): an empty prompt skips alignment (a and A are absent, q = p,
// and Notes says so); a prompt without nouns gives an empty A and a = s(prompt); a
// prompt longer than CLIP's 77 tokens is truncated for scoring and Notes says so.
package assess
