// Package syntax parses a text-to-image prompt into the parts the AQ-Map scores:
// phrases, their head nouns, and each phrase's ancestor (DESIGN §1.3 "Parse" and
// "Syntax tree", Algorithm 1 of the G-Refine paper). It is pure Go; prose/v2 provides
// the tokenizer and the part-of-speech model, everything else is here.
//
// # Use
//
//	p, err := syntax.New(syntax.Options{}) // loads the tagger model, ~0.25 s: do it once
//	r, err := p.Parse("Mr. Beans wearing sun glasses with blue doctor suit and stripe tie")
//	for _, part := range r.Parts { ... part.Text, part.Noun, part.Ancestor, part.Tokens }
//	js, err := r.JSON() // the contract JSON of `grefine parse PROMPT --json`
//
// A Parser is read-only after New and safe for concurrent use. Parse takes about
// 40 µs for a typical prompt and about 2 ms for a 500-word one (bench_test.go).
//
// For the example above the parts are "Mr. Beans wearing" / "sun glasses" /
// "blue doctor suit" / "stripe tie", the nouns Beans / glasses / suit / tie, and the
// ancestors -1 / 0 / 0 / 2 (the suit hangs on "wearing" through "with", the tie is a
// conjunct of the suit).
//
// # Result
//
// Tokens carry the text as written, the Penn Treebank tag, byte offsets into the
// prompt (Text == prompt[Start:End] always), the user's emphasis weight and the part
// they belong to. A Part has its filtered Text, its Noun (and NounToken), its token
// span [Start, End), its Ancestor (a part index or -1), and Tokens, the indices of
// the tokens its Text is made of (what prompt emphasis, eq. 7, weighs). Tree is the
// dependency tree (head and relation per token; Tree.Format prints it). PlainText is
// the prompt without its emphasis syntax, for the text encoders.
//
// The JSON contract is exactly
//
//	{"parts":[{"text":"sun glasses","noun":"glasses","start":3,"end":5,"ancestor":0}, ...]}
//
// with start/end token indices (end exclusive) and "parts":[] when there are none.
// Result.JSON does not HTML-escape; json.Marshal(result) gives the same document
// with the usual escaping of <, > and &.
//
// # Steps
//
// 1. Emphasis syntax (AUTOMATIC1111 conventions) is removed before anything else,
// and each token records the weight in force:
//   - "(x)" multiplies by 1.1, "[x]" by 1/1.1, "(x:1.3)" sets 1.3 for the group;
//     groups nest and multiply ("((x))" = 1.21); weights are clamped to ±MaxWeight;
//   - an unclosed group runs to the end of the prompt, an unmatched closer is dropped;
//   - "[a:b:0.5]" and "[x:0.5]" (prompt editing) keep the words, drop the number and
//     leave the weight alone; "{x}" is a plain group (weight 1);
//   - "|" and the keyword BREAK become list separators (tag ","; the token's Text is
//     still "|" or "BREAK"); the keyword AND becomes the conjunction "and";
//   - "<lora:name:0.8>"-style extra-network tags disappear; "\(" "\)" "\[" "\]" "\{"
//     "\}" "\\" are literal characters;
//   - a space is inserted after a comma or colon glued to the next word ("cat,dog"),
//     except between digits ("1,000", "16:9"); curly quotes become ASCII for the
//     tagger (offsets still point at the original characters).
//
// 2. Tokens come from prose's tokenizer (hyphenated words and "Mr." stay whole;
// "girl's" is "girl" + "'s"). Tags come from prose's averaged-perceptron model, run
// by this package (tagger.go): prose v2.0.0 shares one token object between repeated
// spans, so the tag of the last occurrence overwrites the earlier ones ("the light
// is light" tags both JJ); our loop is prose's, with one slot per position and a
// fixed summation order (prose's map-order sums make near-ties random).
// TestTaggerMatchesProse checks agreement on every token the bug does not touch.
// Then a few corrections for prompts (tokens.go: pictographic emoji are nouns,
// "-NONE-" numbers are CD, booru counts like "1girl" are nouns, and rules R1-R9 fix
// the tagger's usual slips on lower-case noun phrases: "a little girl/JJ holding" is
// a noun, "a boy playing/NN with" a verb, "long/RB hair" an adjective, ...).
//
// 3. Noun chunks (chunk.go) are maximal runs
//
//	[PDT] [DT|PRP$|WP$] {JJ* | CD | RB (before JJ/participle) | participle | NN*} NN*
//
// joined by possessive clitics ("the girl's red dress" is one chunk, head "dress"),
// with coordinated adjectives inside ("black and white photo", "red, white and blue
// flag"). A chunk always ends in a noun (NN, NNS, NNP, NNPS); noun compounds and
// proper-name sequences are one chunk ("blue doctor suit", "Van Gogh painting");
// numbers are modifiers ("three red apples"); "of" always ends a chunk ("a cup" /
// "coffee"), like spaCy's noun_chunks in the reference. A participle (VBG/VBN) is
// an adjective only before a noun and either after a determiner/adjective ("a
// smiling girl") or starting a chunk not right after a noun/verb ("with glowing
// eyes"), never for the transitive "-ing" verbs prompts use with objects
// ("wearing", "holding", "riding", ...).
//
// 4. Parts: the tokens are cut at every chunk start after the first; the first part
// starts at token 0 and the last runs to the end, so trailing verbs and prepositions
// stay with the part before them and every part holds exactly one chunk. A part's
// Text drops NLTK English stopwords (the 179-word list, matched case-insensitively;
// "'s" and "n't" count as "s" and "not") and punctuation, and joins the remaining
// tokens as written (a space wherever the prompt had a gap). Its Noun is its last
// remaining noun. A prompt with no chunk is one part (Noun "") unless it has no word
// at all (commas, syntax only), which gives no part.
//
// 5. The dependency tree (tree.go) is our own rule-based parser over the chunks and
// tags: one left-to-right pass with a few pending slots. Its conventions (UD-like
// labels: det, amod, compound, poss, case, nummod, prep/pobj, obj, acl, relcl,
// conj/cc, cop, aux, punct, ...; "list" for comma-separated items, "pred" for a verb
// whose subject it hangs on, "fixed" for multiword prepositions):
//   - noun-centric: the head of the first top-level noun phrase is the root; a
//     clause hangs on its subject noun (copulas, auxiliaries and finite verbs attach
//     to the subject, predicate nouns/adjectives too: "the cat is black");
//   - a prompt that starts with a clause and no noun phrase ("don't stop the music,
//     ...") is rooted at its verb;
//   - comma-separated items (and BREAK, "|") are "list" dependents of the root; a
//     verb, adjective or prepositional phrase right after a comma modifies the main
//     noun of the segment before it ("a castle on a hill, surrounded by trees");
//   - participles after a noun modify it ("a man wearing a hat"); after "N with/in
//     ... M" they modify N ("a woman with long hair wearing a dress");
//   - prepositions: right after a verb they are the verb's; after a verb's object
//     they are the verb's too, except "of" ("riding a horse on mars", "wearing sun
//     glasses with blue doctor suit"); "of" is always the preceding noun's; "with"
//     after a prepositional object climbs to the noun that phrase modifies; a
//     directional preposition (into, onto, through, ...) after another prepositional
//     object is the verb's; otherwise the nearest noun's (right association), where
//     a coordination counts as its first conjunct ("two cats and a dog on a sofa")
//     and "N1 of N2" counts as N1 when N1 is a container or quantity ("a bowl of fruit
//     on a table"); time phrases ("at sunset", "during a storm") go to the verb or the
//     segment's main noun, and "by" + a proper name to the segment's main noun ("a
//     portrait of a samurai by Greg Rutkowski");
//   - coordination: UD style, every conjunct on the first, the conjunction on the
//     conjunct before it (so it stays in its part); "X, Y and Z" continues the list;
//     after "X of Y and", a determined phrase joins X ("a bottle of wine and two
//     glasses"), a bare one joins Y;
//   - relative clauses (that/which/who, also after a comma) hang on the antecedent,
//     the pronoun on the verb;
//   - every token ends up in one tree; a final check hangs anything unreachable on
//     the root (the tests require that this never has to repair a cycle).
//
// 6. Ancestors: Algorithm 1 as the paper writes it, keyed by token positions (the
// reference keyed by strings and merged repeated words): breadth-first from the
// root, children in token order; where a child's part differs from its head's part,
// the child's part gets as ancestor the part of the child's nearest noun ancestor
// (NN*); later assignments overwrite earlier ones. A part whose nearest noun
// ancestor lies in the part itself, or that is never reached, keeps -1 (the
// reference leaves it as its own ancestor). Ancestors usually point backwards but not
// always: in "in a dark forest, a deer" the forest's ancestor is the deer.
//
// # Edge cases and limits
//
//   - "" and whitespace-only prompts: ErrEmpty (the CLI says "empty prompt").
//   - Not UTF-8: ErrInvalidUTF8. More than Options.MaxBytes bytes (32 KiB) or
//     Options.MaxTokens tokens (2048): ErrTooLong.
//   - Only punctuation or syntax: no parts, no error. No noun: one part, Noun "",
//     Ancestor -1.
//   - A panic inside prose is recovered and returned as ErrInternal (none is known;
//     FuzzParse looks for them).
//
// # Deviations from the reference code (REFERENCE.md §2.1)
//
// Keys are token positions, not strings; stopwords are matched case-insensitively;
// parts with no ancestor get -1 instead of themselves; emphasis syntax is understood
// instead of being fed to the tagger; and the tree is ours (spaCy's parser is not
// available), so ancestors follow the conventions above. The corpus in
// testdata/corpus.json (hand-checked expectations, known failures marked with a
// note) is the executable specification.
package syntax
