// Package assess runs G-Refine's quality indicators end to end for one image and its
// prompt: CLIP-Surgery tokens, the perceptual map and score (package pq + the device's
// FuseMaps), the prompt's parts (syntax), the alignment map and score (package aq), the
// fused defect mask at image and latent resolution, and q = (p + a)/2.
//
// An Assessor holds the loaded engines, tokenizer, parser and the feature cache and runs
// on one device stream (Options.Stream): one request at a time. The pipeline gives each
// slot its own Assessor sharing one feature cache (Options.Share). Run leaves the maps on
// the device (Report.Device) and reads back only the scores, unless Request.Maps asks for
// the maps too; Assess and AssessParsed read everything back.
//
// Edge cases (DESIGN §1.3): an empty prompt skips alignment (a and A are absent, q = p,
// and Notes says so); a prompt without nouns gives an empty A and a = s(prompt); a
// prompt longer than CLIP's 77 tokens is truncated for scoring and Notes says so.
package assess
