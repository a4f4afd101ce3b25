package syntax

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Defaults of Options.
const (
	DefaultMaxBytes  = 32 << 10
	DefaultMaxTokens = 2048
)

// Options bound the work one Parse call may do. Zero fields take the defaults.
type Options struct {
	// MaxBytes is the longest prompt accepted, in bytes (default 32 KiB).
	MaxBytes int
	// MaxTokens is the most tokens accepted after tokenisation (default 2048; a
	// 500-word prompt has about 600).
	MaxTokens int
}

func (o Options) withDefaults() Options {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = DefaultMaxTokens
	}
	return o
}

// Parser parses prompts. Build one with New (it loads the tagger model, about
// 0.25 s) and share it: it is read-only and safe for concurrent use.
type Parser struct {
	tagger *tagger
	opts   Options
}

// New loads prose's tagger model and returns a Parser.
func New(opts Options) (*Parser, error) {
	t, err := newTagger()
	if err != nil {
		return nil, err
	}
	return &Parser{tagger: t, opts: opts.withDefaults()}, nil
}

// Options returns the limits in force (defaults filled in).
func (p *Parser) Options() Options { return p.opts }

// Parse splits a prompt into parts, finds their head nouns, builds the dependency
// tree and assigns each part its ancestor (Algorithm 1). Errors wrap ErrEmpty,
// ErrInvalidUTF8, ErrTooLong or ErrInternal.
func (p *Parser) Parse(prompt string) (res *Result, err error) {
	if !utf8.ValidString(prompt) {
		return nil, ErrInvalidUTF8
	}
	if strings.TrimSpace(prompt) == "" {
		return nil, ErrEmpty
	}
	if len(prompt) > p.opts.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLong, len(prompt), p.opts.MaxBytes)
	}
	defer func() { // prose is third-party code: never let it take the process down
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("%w: panic: %v", ErrInternal, r)
		}
	}()
	res, _, err = p.parse(prompt)
	return res, err
}

// parse does the work; it also returns how many tree repairs were needed (tests
// require zero).
func (p *Parser) parse(prompt string) (*Result, int, error) {
	c := clean(prompt)
	toks, words, err := tokenize(prompt, c)
	if err != nil {
		return nil, 0, err
	}
	if len(toks) > p.opts.MaxTokens {
		return nil, 0, fmt.Errorf("%w: %d tokens, at most %d", ErrTooLong, len(toks), p.opts.MaxTokens)
	}
	fixTags(toks, words, p.tagger.tag(words))
	chunks := findChunks(toks)
	tree, fixes := buildTree(toks, chunks)
	parts := makeParts(toks, chunks)
	assignAncestors(toks, tree, parts)
	return &Result{Prompt: prompt, Tokens: toks, Parts: parts, Tree: tree}, fixes, nil
}
