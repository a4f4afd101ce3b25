package tokenizer

import "errors"

// Sentinel errors. Every error this package returns wraps one of them, so callers can
// branch with errors.Is.
var (
	// ErrInvalidUTF8: the text to encode is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("tokenizer: invalid utf-8")
	// ErrVocab: the BPE vocabulary file is missing, not gzip, or not the CLIP layout.
	ErrVocab = errors.New("tokenizer: bad vocabulary")
	// ErrTokenID: Decode was given an id outside the vocabulary.
	ErrTokenID = errors.New("tokenizer: token id out of range")
)
