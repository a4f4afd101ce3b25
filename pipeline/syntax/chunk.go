package syntax

import "strings"

// chunk is a noun chunk: tokens [start, end), head = end-1 (always a noun).
type chunk struct{ start, end int }

func (c chunk) head() int { return c.end - 1 }

// findChunks scans the tagged tokens left to right and returns the noun chunks,
// in order, not overlapping. The grammar (doc.go has it in words):
//
//	chunk   = group { POS group }
//	group   = [PDT] [DT | PRP$ | WP$] { premod | noun } noun
//	premod  = JJ* | CD | RB* (before an adjective or participle)
//	        | VBN/VBG used as an adjective (see acceptParticiple)
//	        | adjective ("," | CC) adjective   (coordinated adjectives)
//	noun    = NN | NNS | NNP | NNPS
//
// Matching is greedy, then trimmed back to the last noun; tokens after it are
// scanned again as the possible start of the next chunk.
func findChunks(toks []Token) []chunk {
	var out []chunk
	for i := 0; i < len(toks); {
		if end := scanChunk(toks, i); end > i {
			out = append(out, chunk{i, end})
			i = end
			continue
		}
		i++
	}
	return out
}

// scanChunk returns the end of the chunk starting at toks[start], or -1.
func scanChunk(toks []Token, start int) int {
	lastNoun := -1
	groupStart := start // first token of the current group (after a POS)
	nounInGroup := false
	onlyDets := true // every token of the group so far is a determiner
	for j := start; j < len(toks); j++ {
		tag := toks[j].Tag
		switch {
		case isNounTag(tag):
			lastNoun, nounInGroup, onlyDets = j, true, false
		case tag == "POS":
			if !nounInGroup || j != lastNoun+1 {
				return lastNoun + 1
			}
			groupStart, nounInGroup, onlyDets = j+1, false, true
		case tag == "PDT":
			if j != groupStart || j != start {
				return lastNoun + 1
			}
		case tag == "DT" || tag == "PRP$" || tag == "WP$":
			if !onlyDets || groupStart != start {
				return lastNoun + 1
			}
		case tag == "CD" || isAdjTag(tag):
			onlyDets = false
		case isPartTag(tag):
			if !acceptParticiple(toks, j, start) {
				return lastNoun + 1
			}
			onlyDets = false
		case isAdvTag(tag):
			if nounInGroup || j+1 >= len(toks) || !premodifiable(toks[j+1].Tag) {
				return lastNoun + 1
			}
			onlyDets = false
		case tag == "CC" || tag == ",":
			// coordinated adjectives: "black and white cat", "red, white and blue flag"
			if j == start || j+1 >= len(toks) || nounInGroup ||
				!(isAdjTag(toks[j-1].Tag) || isPartTag(toks[j-1].Tag)) || !isAdjTag(toks[j+1].Tag) {
				return lastNoun + 1
			}
		default:
			return lastNoun + 1
		}
	}
	return lastNoun + 1
}

// premodifiable: tags an adverb may modify inside a chunk.
func premodifiable(tag string) bool {
	return isAdjTag(tag) || isPartTag(tag) || isAdvTag(tag)
}

// acceptParticiple decides whether the participle toks[j] (VBN/VBG) modifies the
// noun after it ("a smiling woman", "with glowing eyes", "scattered leaves") or is a
// verb ("a man wearing a hat", "a woman, holding a cup", "a dog named Rex").
//
// It is an adjective when it is followed by a noun, adjective, number or another
// participle, and
//   - it follows a determiner, adjective, number or adverb inside the chunk, or
//   - it starts the chunk, does not follow a noun, pronoun or verb, and is not one of
//     the transitive verbs prompts use with an object (transitiveGerunds).
func acceptParticiple(toks []Token, j, start int) bool {
	if j+1 >= len(toks) {
		return false
	}
	next := toks[j+1].Tag
	if !(isNounTag(next) || isAdjTag(next) || next == "CD" || isPartTag(next)) {
		return false
	}
	if j > start {
		return !isNounTag(toks[j-1].Tag)
	}
	if j > 0 {
		prev := toks[j-1].Tag
		if isNounTag(prev) || prev == "PRP" || isVerbTag(prev) || prev == "MD" {
			return false
		}
	}
	if toks[j].Tag == "VBG" {
		if _, ok := transitiveGerunds[strings.ToLower(toks[j].Text)]; ok {
			return false
		}
	}
	return true
}

// transitiveGerunds are "-ing" verbs that, at the start of a chunk, take the noun
// after them as an object ("wearing sunglasses"), not as a modified noun.
var transitiveGerunds = func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, w := range strings.Fields(`wearing holding riding carrying eating drinking
reading playing using wielding hugging watching driving throwing kicking petting
walking chasing catching pulling pushing touching lifting feeding having making
taking giving showing cooking building hitting grabbing kissing sipping smoking
brandishing swinging drawing painting climbing biting licking selling buying
exploring approaching facing hiding guarding sniffing`) {
		m[w] = struct{}{}
	}
	return m
}()
