package syntax

import "errors"

// Sentinel errors. Every error Parse or New returns wraps one of these, so callers
// can branch with errors.Is; the message adds the detail.
var (
	// ErrEmpty: the prompt is empty or only whitespace. The CLI says "empty prompt";
	// the AQ side skips alignment for it.
	ErrEmpty = errors.New("syntax: empty prompt")
	// ErrInvalidUTF8: the prompt is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("syntax: prompt is not valid utf-8")
	// ErrTooLong: the prompt has more bytes or tokens than Options allows.
	ErrTooLong = errors.New("syntax: prompt too long")
	// ErrModel: prose's embedded tagger model could not be loaded.
	ErrModel = errors.New("syntax: bad tagger model")
	// ErrInternal: a bug in this package or in prose (a token that cannot be aligned
	// with the prompt, a recovered panic). Please report the prompt.
	ErrInternal = errors.New("syntax: internal error")
)
