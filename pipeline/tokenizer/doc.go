// Package tokenizer is CLIP's byte-level BPE tokenizer, a pure-Go port of open_clip's
// SimpleTokenizer (open-clip-torch 2.29.0, the tokenizer of OpenAI CLIP and of the SD/SDXL
// text encoders). Given the same vocabulary it produces the same ids, token for token.
//
// # Use
//
//	tok, err := tokenizer.Load("bpe_simple_vocab_16e6.txt.gz") // or New(reader)
//	ids, info, err := tok.Encode("masterpiece, (best quality:1.2), 1girl")
//	// ids: [77]int32 = SOT, tokens..., EOT, 0...; info.NumTokens-1 is the EOT position.
//	if info.Truncated { log.Printf("prompt cut: %d tokens dropped", info.Dropped) }
//
// EncodeBatch encodes several texts; EncodeTokens returns the bare token ids (no SOT/EOT,
// no truncation); Decode maps ids back to text; Tokens returns the cleaned text and every
// token with the index of the word it came from and its byte offsets in the cleaned text,
// which is what prompt weighting needs to map a parsed part of a prompt to token positions.
// A Tokenizer is safe for concurrent use.
//
// # What Encode does
//
//  1. Clean (exported): ftfy.fix_text, html.unescape twice, whitespace collapsed to single
//     spaces and trimmed (Python's notion of whitespace), then Python's str.lower
//     (full mapping, U+0130 -> "i\u0307", final sigma).
//  2. Pre-tokenisation with open_clip's pattern
//     <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//     (case-insensitive), hand-written in words() and checked against Go's regexp.
//  3. Byte-level BPE per word with the first 48894 merges of the vocabulary file, the last
//     byte of each word carrying "</w>". Results are cached per word (bounded, 65536 words).
//  4. SOT (49406) + tokens + EOT (49407), cut to ContextLength (77) keeping EOT last, padded
//     with 0. The literal text "<start_of_text>" in a prompt becomes the SOT id, as in
//     open_clip.
//
// # ftfy
//
// fix_text is ported step by step with its default configuration: HTML entity unescaping
// (disabled from the first line that contains '<' on, as ftfy does), C1 controls as
// Windows-1252, Latin ligatures, fullwidth/halfwidth forms, curly quotes, line breaks,
// terminal escapes, control characters and NFC, repeated until the text stops changing.
// Its mojibake repair (fix_encoding: guessing that text was UTF-8 decoded as Latin-1 or
// Windows-1252 and re-decoding it, with ftfy's "badness" heuristics) is not ported: for
// text like "CafÃ©" open_clip sees "Café" and this package sees "cafã©". Such text is rare
// in prompts; the goldens list the cases and keep them out of the must-match set.
//
// # Exactness and Unicode data
//
// The tables the port needs from Python (HTML5 entities, ftfy's maps, str.isspace,
// str.lower, and the regex module's letter/digit/space classes) are generated into
// tables_gen.go by tools/export/tokenizer_goldens.py, which also writes
// testdata/goldens.json from open_clip itself. The tests require every id of every
// must-match golden to be equal and fail when tables_gen.go or the vocabulary no longer
// match the goldens. NFC comes from golang.org/x/text (Unicode 15.0; Python 3.11 uses 14.0),
// so characters whose normalisation changed after Unicode 14 could in principle differ.
//
// # Errors
//
// Text that is not valid UTF-8 yields an error wrapping ErrInvalidUTF8 (Python strings
// cannot hold such text). A bad vocabulary file yields ErrVocab, an id outside the
// vocabulary ErrTokenID.
package tokenizer
