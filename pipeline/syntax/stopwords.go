package syntax

import "strings"

// stopwords is NLTK's English stopword list (nltk_data corpora/stopwords/english,
// the 179-word version shipped since NLTK 3.3), the list the reference code drops
// from every part. Matching here is case-insensitive (the reference is
// case-sensitive, so it keeps "A" and "The"; we drop them).
var stopwords = func() map[string]struct{} {
	m := make(map[string]struct{}, 179)
	for _, w := range strings.Fields(`i me my myself we our ours ourselves you you're
you've you'll you'd your yours yourself yourselves he him his himself she she's her
hers herself it it's its itself they them their theirs themselves what which who whom
this that that'll these those am is are was were be been being have has had having do
does did doing a an the and but if or because as until while of at by for with about
against between into through during before after above below to from up down in out
on off over under again further then once here there when where why how all any both
each few more most other some such no nor not only own same so than too very s t can
will just don don't should should've now d ll m o re ve y ain aren aren't couldn
couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma
mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't
weren weren't won won't wouldn wouldn't`) {
		m[w] = struct{}{}
	}
	return m
}()

// isStopword reports whether the token text w is an NLTK English stopword, ignoring
// case and a leading apostrophe (prose splits "girl's" into "girl" + "'s", and "'s",
// "'re", "'ll", "'ve", "'m", "'d" are the list's "s", "re", "ll", "ve", "m", "d").
func isStopword(w string) bool {
	w = strings.ToLower(w)
	if w == "n't" { // prose's half of "don't": "not"
		return true
	}
	if _, ok := stopwords[w]; ok {
		return true
	}
	if len(w) > 1 && w[0] == '\'' {
		_, ok := stopwords[w[1:]]
		return ok
	}
	return false
}
