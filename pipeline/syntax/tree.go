package syntax

import (
	"fmt"
	"strings"
)

// Tree is a dependency tree over the tokens of a Result: Heads[i] is the index of
// token i's head, -1 for the root; Labels[i] names the relation (see doc.go).
type Tree struct {
	Root   int
	Heads  []int
	Labels []string
}

// Children returns the dependents of token i in token order.
func (t Tree) Children(i int) []int {
	var out []int
	for j, h := range t.Heads {
		if h == i {
			out = append(out, j)
		}
	}
	return out
}

// Format writes the tree one token per line: index, text, tag, head, label
// (CoNLL-like, 0-based, head -1 for the root). For debugging.
func (t Tree) Format(toks []Token) string {
	var b strings.Builder
	for i, tk := range toks {
		if i >= len(t.Heads) {
			break
		}
		fmt.Fprintf(&b, "%d\t%s\t%s\t%d\t%s\n", i, tk.Text, tk.Tag, t.Heads[i], t.Labels[i])
	}
	return b.String()
}

// Relation labels (a small, UD-flavoured set; doc.go explains where ours differ).
const (
	relRoot     = "root"
	relDet      = "det"
	relPoss     = "poss"
	relCase     = "case"
	relNummod   = "nummod"
	relAmod     = "amod"
	relCompound = "compound"
	relAdvmod   = "advmod"
	relConj     = "conj"
	relList     = "list"
	relFixed    = "fixed"
	relCC       = "cc"
	relPunct    = "punct"
	relPrep     = "prep"
	relPobj     = "pobj"
	relPcomp    = "pcomp"
	relObj      = "obj"
	relAcl      = "acl"
	relPred     = "pred"
	relRelcl    = "relcl"
	relNsubj    = "nsubj"
	relRef      = "ref"
	relAux      = "aux"
	relCop      = "cop"
	relAttr     = "attr"
	relAcomp    = "acomp"
	relXcomp    = "xcomp"
	relPrt      = "prt"
	relExpl     = "expl"
	relDep      = "dep"
)

// item kinds of the last thing the tree builder processed.
const (
	itemNone = iota
	itemNP
	itemVerb
	itemAux
	itemPrep
	itemAdj
	itemAdv
	itemCC
	itemOther
)

// treeBuilder is the rule-based dependency parser: one left-to-right pass over noun
// chunks and single tokens with a handful of pending slots (an open preposition, a
// verb waiting for its object, a conjunction waiting for its right conjunct, pending
// auxiliaries/copulas, a pending relative pronoun), then a fix-up that hangs every
// token still without a head on the root.
type treeBuilder struct {
	toks   []Token
	chunks []chunk
	head   []int
	label  []string
	root   int

	top      int   // head of the latest segment-level NP (kept across commas)
	lastNP   int   // most recent NP head in this segment
	verb     int   // most recent main verb in this segment
	objOpen  bool  // verb has no object yet
	prep     int   // preposition waiting for its object
	cc       int   // conjunction waiting for its right conjunct...
	ccLeft   int   // ...its left conjunct...
	ccKind   int   // ...and that conjunct's item kind
	aux      []int // auxiliaries/copulas/modals/"to" waiting for their verb or predicate
	expl     int   // expletive "there" waiting for its noun
	rel      int   // relative pronoun waiting for its verb...
	relAnte  int   // ...its antecedent...
	relSubj  int   // ...and the relative clause's subject, if any ("that the dog chased")
	lastKind int   // kind of the last item (itemNP, itemVerb, ...)
	lastTok  int   // head token of the last item
	lastAdj  int   // most recent adjective outside a chunk
	lastAdv  int   // most recent adverb

	waiting []int
	wlabel  []string
	fixes   int // cycles or self-loops repaired (a bug if ever non-zero)
}

// buildTree parses the tagged tokens given their noun chunks.
func buildTree(toks []Token, chunks []chunk) (Tree, int) {
	n := len(toks)
	b := &treeBuilder{toks: toks, chunks: chunks, head: make([]int, n), label: make([]string, n), root: -1}
	for i := range b.head {
		b.head[i] = -2 // unattached
	}
	b.resetSegment()
	b.top = -1
	ci := 0
	for i := 0; i < n; {
		if ci < len(chunks) && chunks[ci].start == i {
			c := chunks[ci]
			ci++
			b.chunkInternals(c)
			b.np(c.start, c.head())
			i = c.end
			continue
		}
		b.token(i)
		i++
	}
	b.endSegment()
	b.finish()
	return Tree{Root: b.root, Heads: b.head, Labels: b.label}, b.fixes
}

func (b *treeBuilder) resetSegment() {
	b.lastNP, b.verb, b.objOpen, b.prep = -1, -1, false, -1
	b.cc, b.ccLeft, b.ccKind = -1, -1, itemNone
	b.aux, b.expl = nil, -1
	b.rel, b.relAnte, b.relSubj = -1, -1, -1
	b.lastKind, b.lastTok, b.lastAdj, b.lastAdv = itemNone, -1, -1, -1
}

// attach sets x's head to h unless x already has one (first decision wins) or is
// the root.
func (b *treeBuilder) attach(x, h int, rel string) {
	if x < 0 || b.head[x] != -2 || x == b.root {
		return
	}
	if h < 0 || h == x {
		b.wait(x, rel)
		return
	}
	b.head[x], b.label[x] = h, rel
}

func (b *treeBuilder) wait(x int, rel string) {
	if x < 0 || b.head[x] != -2 {
		return
	}
	for _, w := range b.waiting {
		if w == x {
			return
		}
	}
	b.waiting = append(b.waiting, x)
	b.wlabel = append(b.wlabel, rel)
}

func (b *treeBuilder) lower(i int) string { return strings.ToLower(b.toks[i].Text) }

// chunkInternals attaches every token of a chunk inside it.
func (b *treeBuilder) chunkInternals(c chunk) {
	h := c.head()
	gs := c.start
	for j := c.start; j < c.end; j++ {
		if b.toks[j].Tag == "POS" {
			b.group(gs, j, h, true)
			gs = j + 1
		}
	}
	b.group(gs, c.end, h, false)
}

// group attaches the tokens of [gs, ge) to the group's head (its last noun). A group
// closed by a possessive clitic at toks[ge] hangs on the chunk head h as "poss".
func (b *treeBuilder) group(gs, ge, h int, possessive bool) {
	gh := -1
	for j := ge - 1; j >= gs; j-- {
		if isNounTag(b.toks[j].Tag) {
			gh = j
			break
		}
	}
	if gh < 0 {
		gh = h
	}
	if possessive {
		b.attach(gh, h, relPoss)
		b.attach(ge, gh, relCase)
	}
	coordHead := -1 // first adjective of a coordination
	for j := gs; j < ge; j++ {
		if j == gh {
			continue
		}
		tag := b.toks[j].Tag
		switch {
		case tag == "DT" || tag == "PDT" || tag == "WP$":
			b.attach(j, gh, relDet)
		case tag == "PRP$":
			b.attach(j, gh, relPoss)
		case tag == "CD":
			b.attach(j, gh, relNummod)
		case isNounTag(tag):
			b.attach(j, gh, relCompound)
		case isAdjTag(tag) || isPartTag(tag):
			if j > gs && (b.toks[j-1].Tag == "CC" || b.toks[j-1].Tag == ",") && coordHead >= 0 {
				b.attach(j, coordHead, relConj)
			} else {
				b.attach(j, gh, relAmod)
				coordHead = j
			}
		case isAdvTag(tag):
			if j+1 < ge && premodifiable(b.toks[j+1].Tag) {
				b.attach(j, j+1, relAdvmod)
			} else {
				b.attach(j, gh, relAdvmod)
			}
		case tag == "CC":
			b.attach(j, max(coordHead, gs), relCC)
		case tag == ",":
			b.attach(j, max(coordHead, gs), relPunct)
		default:
			b.attach(j, gh, relDep)
		}
	}
}

// subject returns the noun a pending copula predicates of (consuming a pending
// relative pronoun), or -1.
func (b *treeBuilder) subject() int {
	if b.rel >= 0 {
		s := b.relAnte
		b.attach(b.rel, s, relRef)
		b.rel = -1
		return s
	}
	return b.modifiedNoun()
}

// flushAux attaches the pending auxiliaries/copulas (and an expletive) to h.
func (b *treeBuilder) flushAux(h int, rel string) {
	for _, a := range b.aux {
		if b.toks[a].Tag == "TO" || b.toks[a].Tag == "MD" {
			b.attach(a, h, relAux)
		} else {
			b.attach(a, h, rel)
		}
	}
	b.aux = nil
	if b.expl >= 0 {
		b.attach(b.expl, h, relExpl)
		b.expl = -1
	}
}

// np attaches the head h of a noun phrase starting at toks[start] (a noun chunk or
// a pronoun).
func (b *treeBuilder) np(start, h int) {
	switch {
	case b.prep >= 0:
		b.attach(h, b.prep, relPobj)
		b.reattachPrep(b.prep, h)
		b.prep = -1
	case b.verb >= 0 && b.objOpen:
		b.attach(h, b.verb, relObj)
		b.objOpen = false
		b.flushAux(b.verb, relAux)
	case b.cc >= 0 && b.ccKind == itemNP && b.label[b.ccLeft] == relList:
		// "a cat, a dog and a bird": the last item joins the list
		b.attach(h, b.root, relList)
		b.attach(b.cc, b.ccLeft, relCC)
		b.cc = -1
	case b.cc >= 0 && b.ccKind == itemNP:
		left := b.firstConjunct(b.ccOfLeft(start))
		b.attach(h, left, relConj)
		b.attach(b.cc, b.ccLeft, relCC)
		b.cc = -1
	case len(b.aux) > 0 && (b.rel >= 0 || b.lastNP >= 0):
		s := b.subject()
		b.attach(h, s, relAttr)
		b.flushAux(s, relCop)
	case b.cc >= 0 && b.top >= 0:
		// "the sky is blue and the grass is green": a new clause, a conjunct of the
		// segment's noun
		b.attach(h, b.firstConjunct(b.top), relConj)
		b.attach(b.cc, b.ccLeft, relCC)
		b.cc = -1
	case b.rel >= 0 && b.relSubj < 0:
		b.relSubj = h
	case b.lastNP < 0:
		// the first NP of the segment: the root, or a conjunct of it
		if b.root < 0 {
			b.root = h
		} else {
			b.attach(h, b.root, relList)
		}
		b.top = h
		b.flushAux(h, relCop)
	default:
		b.attach(h, b.lastNP, relDep)
	}
	b.lastNP = h
	b.lastKind, b.lastTok = itemNP, h
}

// firstConjunct climbs a coordination to its first conjunct (UD style: every
// conjunct hangs on the first).
func (b *treeBuilder) firstConjunct(x int) int {
	for steps := 0; x >= 0 && b.label[x] == relConj && b.head[x] >= 0 && steps < len(b.head); steps++ {
		x = b.head[x]
	}
	return x
}

// ccOfLeft picks the left conjunct of the noun phrase starting at toks[start] after
// "X of Y and": a determined phrase ("a bottle of wine and two glasses") joins X, a
// bare one ("a bowl of apples and oranges") joins Y.
func (b *treeBuilder) ccOfLeft(start int) int {
	left := b.ccLeft
	if left < 0 || b.label[left] != relPobj {
		return left
	}
	p := b.head[left]
	if p < 0 || b.lower(p) != "of" || b.head[p] < 0 || !b.toks[b.head[p]].IsNoun() {
		return left
	}
	switch b.toks[start].Tag {
	case "DT", "CD", "PRP$", "PDT":
		return b.head[p]
	}
	return left
}

// modifiedNoun is the noun a participle or predicate after lastNP describes: lastNP
// (the first conjunct if it is coordinated: "a man and a woman walking"), or, when
// that is the object of a preposition other than "of" that hangs on a noun, that noun
// ("a woman with long hair wearing a dress": the woman wears it).
func (b *treeBuilder) modifiedNoun() int {
	x := b.firstConjunct(b.lastNP) // "a man and a woman walking": both walk
	for steps := 0; x >= 0 && steps < len(b.head); steps++ {
		if b.label[x] != relPobj {
			break
		}
		p := b.head[x]
		if p < 0 || b.lower(p) == "of" || b.label[p] != relPrep {
			break
		}
		h := b.head[p]
		if h < 0 || !b.toks[h].IsNoun() {
			break
		}
		x = h
	}
	return x
}

// isObjectOf: x is the direct object of verb v.
func (b *treeBuilder) isObjectOf(x, v int) bool {
	return x >= 0 && b.head[x] == v && b.label[x] == relObj
}

// nounSite is where a modifier that follows the noun phrase headed by x attaches:
//   - the first conjunct of a coordination ("two cats and a dog on a sofa": all of
//     them are on it);
//   - the container or quantity noun of "N1 of N2" ("a bowl of fruit on a table":
//     the bowl is; containerNouns lists them);
//   - x itself otherwise (right association).
func (b *treeBuilder) nounSite(x int) int {
	x = b.firstConjunct(x)
	if x >= 0 && b.label[x] == relPobj {
		if p := b.head[x]; p >= 0 && b.lower(p) == "of" && b.label[p] == relPrep {
			if n := b.head[p]; n >= 0 && b.toks[n].IsNoun() && containerNouns[strings.ToLower(b.toks[n].Text)] {
				return n
			}
		}
	}
	return x
}

// reattachPrep moves a preposition whose object h shows what it modifies:
//   - a time phrase ("at sunset", "during a storm", "in winter") modifies the
//     segment's verb, or its main noun when there is no verb;
//   - "by" + a proper name ("by Greg Rutkowski") names the artist of the segment's
//     main noun.
func (b *treeBuilder) reattachPrep(p, h int) {
	w := b.lower(p)
	var to int
	switch {
	case w == "during" || ((w == "at" || w == "in" || w == "on") && timeNouns[b.lower(h)]):
		to = b.verb
		if to < 0 {
			to = b.top
		}
	case w == "by" && (b.toks[h].Tag == "NNP" || b.toks[h].Tag == "NNPS"):
		to = b.top
	default:
		return
	}
	if to >= 0 && to < p && b.head[p] != to && b.label[p] == relPrep {
		b.head[p] = to
	}
}

// containerNouns head "N1 of N2" phrases whose later modifiers belong to N1.
var containerNouns = wordSet(`bowl cup glass bottle pair plate basket box bag jar pot mug
bucket bunch pile stack heap group herd flock pack crowd set slice piece loaf bouquet
vase tray can carton sack barrel row line couple handful plate jug pitcher kettle cart
wagon crate chest shelf rack`)

// directionPreps, after the object of an earlier preposition, still go with the verb.
var directionPreps = wordSet(`onto into towards toward through across along`)

// timeNouns make "at/in/on + noun" a time phrase.
var timeNouns = wordSet(`night day dawn dusk sunset sunrise twilight noon midnight
morning evening afternoon nighttime daytime winter summer autumn fall spring christmas
halloween hour`)

// token processes one token that is not part of a noun chunk.
func (b *treeBuilder) token(i int) {
	t := b.toks[i]
	tag, w := t.Tag, strings.ToLower(t.Text)
	switch {
	case t.IsPunct() || tag == "," || tag == "." || tag == ":":
		b.punct(i)
	case tag == "PRP":
		b.np(i, i)
	case tag == "EX":
		b.expl = i
		b.lastKind, b.lastTok = itemOther, i
	case tag == "MD" || (tag == "TO" && i+1 < len(b.toks) && b.toks[i+1].Tag == "VB"):
		b.aux = append(b.aux, i)
		b.lastKind, b.lastTok = itemAux, i
	case isVerbTag(tag) && b.isAux(i):
		b.aux = append(b.aux, i)
		b.lastKind, b.lastTok = itemAux, i
	case isVerbTag(tag):
		b.mainVerb(i)
	case (tag == "WDT" || tag == "WP" || tag == "WRB" || (w == "that" && tag == "IN")) &&
		(b.lastKind == itemNP || (b.lastKind == itemNone && b.top >= 0)):
		// a relative pronoun after a noun, or after a comma (", which ...")
		b.rel, b.relAnte, b.relSubj = i, b.lastNP, -1
		if b.lastKind == itemNone {
			b.relAnte = b.top
		}
		b.lastKind, b.lastTok = itemOther, i
	case tag == "IN" || tag == "TO":
		b.preposition(i)
	case tag == "RP":
		if b.verb >= 0 {
			b.attach(i, b.verb, relPrt)
		} else {
			b.adverb(i)
		}
	case isAdjTag(tag) || tag == "CD":
		b.adjective(i)
	case isAdvTag(tag):
		b.adverb(i)
	case tag == "CC":
		b.conjunction(i)
	case tag == "POS" && i > 0:
		b.attach(i, i-1, relCase)
	default:
		b.other(i)
	}
}

// isAux: forms of "be" (copula or auxiliary), "have"/"do" followed by a verb.
func (b *treeBuilder) isAux(i int) bool {
	w := b.lower(i)
	switch w {
	case "is", "are", "was", "were", "am", "be", "been", "being", "'s", "'re", "'m":
		return true
	case "have", "has", "had", "'ve", "'d", "do", "does", "did":
		for j := i + 1; j < len(b.toks); j++ {
			tag := b.toks[j].Tag
			if isAdvTag(tag) {
				continue
			}
			return isVerbTag(tag)
		}
	}
	return false
}

func (b *treeBuilder) mainVerb(v int) {
	finite := b.toks[v].Tag == "VBZ" || b.toks[v].Tag == "VBP" || b.toks[v].Tag == "VBD"
	switch {
	case b.prep >= 0 && b.lastKind == itemPrep:
		b.attach(v, b.prep, relPcomp)
		b.prep = -1
	case b.rel >= 0:
		b.attach(v, b.relAnte, relRelcl)
		if b.relSubj >= 0 {
			b.attach(b.relSubj, v, relNsubj)
			b.attach(b.rel, v, relObj)
		} else {
			b.attach(b.rel, v, relNsubj)
		}
		b.rel, b.relSubj = -1, -1
	case b.cc >= 0 && b.ccKind == itemVerb:
		b.attach(v, b.ccLeft, relConj)
		b.attach(b.cc, b.ccLeft, relCC)
		b.cc = -1
	case b.cc >= 0 && b.verb >= 0:
		// "wearing a top hat and holding a cane": the verbs are the conjuncts
		b.attach(v, b.firstConjunct(b.verb), relConj)
		b.attach(b.cc, b.ccLeft, relCC)
		b.cc = -1
	case b.verb >= 0 && len(b.aux) > 0 && b.toks[b.aux[len(b.aux)-1]].Tag == "TO":
		b.attach(v, b.verb, relXcomp)
	case b.lastNP >= 0:
		rel := relAcl
		if finite || len(b.aux) > 0 {
			rel = relPred
		}
		b.attach(v, b.modifiedNoun(), rel)
	case b.top >= 0:
		b.attach(v, b.top, relAcl)
	case b.root < 0 && !isPartTag(b.toks[v].Tag):
		b.root = v // a clause before any noun phrase: "don't stop the music, ..."
	default:
		b.wait(v, relDep)
	}
	b.flushAux(v, relAux)
	b.verb, b.objOpen = v, true
	b.lastKind, b.lastTok = itemVerb, v
}

func (b *treeBuilder) preposition(p int) {
	w := b.lower(p)
	switch {
	case b.lastKind == itemPrep && b.prep >= 0:
		b.attach(p, b.prep, relFixed) // "in front of", "out of"
	case w == "of" && b.lastKind == itemAdj:
		b.attach(p, b.lastAdj, relPrep)
	case w == "of" && b.lastNP >= 0:
		b.attach(p, b.lastNP, relPrep)
	case b.lastKind == itemVerb:
		b.attach(p, b.verb, relPrep)
	case b.lastKind == itemAux:
		if s := b.subject(); s >= 0 {
			b.attach(p, s, relPrep)
			b.flushAux(s, relCop)
		} else {
			b.wait(p, relPrep)
		}
	case b.lastKind == itemNP && b.verb >= 0 && b.isObjectOf(b.firstConjunct(b.lastNP), b.verb):
		b.attach(p, b.verb, relPrep) // after a verb's object: the verb's ("wearing X with Y")
	case b.lastKind == itemNP && w == "with":
		b.attach(p, b.nounSite(b.modifiedNoun()), relPrep) // "a city at night with neon lights": the city's
	case b.lastKind == itemNP && b.verb >= 0 && directionPreps[w]:
		b.attach(p, b.verb, relPrep) // "streaming through a window onto the floor"
	case b.lastKind == itemNP:
		b.attach(p, b.nounSite(b.lastNP), relPrep)
	case b.lastKind == itemAdj:
		b.attach(p, b.lastAdj, relPrep)
	case b.lastKind == itemAdv:
		b.attach(p, b.lastAdv, relPrep)
	case b.verb >= 0:
		b.attach(p, b.verb, relPrep)
	case b.lastNP >= 0:
		b.attach(p, b.lastNP, relPrep)
	case b.top >= 0:
		b.attach(p, b.top, relPrep)
	default:
		b.wait(p, relPrep)
	}
	b.prep = p
	b.objOpen = false
	b.lastKind, b.lastTok = itemPrep, p
}

func (b *treeBuilder) adjective(a int) {
	rel := relAmod
	if b.toks[a].Tag == "CD" {
		rel = relNummod
	}
	switch {
	case b.prep >= 0 && b.lastKind == itemPrep:
		b.attach(a, b.prep, relPobj)
		b.prep = -1
	case len(b.aux) > 0 && (b.lastNP >= 0 || b.rel >= 0):
		s := b.subject()
		b.attach(a, s, relAcomp)
		b.flushAux(s, relCop)
	case b.cc >= 0 && b.ccKind == itemAdj:
		b.attach(a, b.ccLeft, relConj)
		b.attach(b.cc, b.ccLeft, relCC)
		b.cc = -1
	case b.lastKind == itemVerb:
		b.attach(a, b.verb, relAcomp)
		b.objOpen = false
	case b.lastNP >= 0:
		b.attach(a, b.nounSite(b.lastNP), rel)
	default:
		b.attachModifier(a, rel)
	}
	b.lastAdj = a
	b.lastKind, b.lastTok = itemAdj, a
}

// attachModifier hangs a modifier with no local head on the segment's noun (top), or
// leaves it for the root.
func (b *treeBuilder) attachModifier(x int, rel string) {
	switch {
	case b.lastNP >= 0:
		b.attach(x, b.lastNP, rel)
	case b.top >= 0:
		b.attach(x, b.top, rel)
	default:
		b.wait(x, rel)
	}
}

func (b *treeBuilder) adverb(r int) {
	if r+1 < len(b.toks) && premodifiable(b.toks[r+1].Tag) && !b.startsChunk(r+1) {
		b.attach(r, r+1, relAdvmod)
	} else if b.verb >= 0 {
		b.attach(r, b.verb, relAdvmod)
	} else {
		b.attachModifier(r, relAdvmod)
	}
	b.lastAdv = r
	b.lastKind, b.lastTok = itemAdv, r
}

func (b *treeBuilder) startsChunk(i int) bool {
	for _, c := range b.chunks {
		if c.start == i {
			return true
		}
		if c.start > i {
			break
		}
	}
	return false
}

func (b *treeBuilder) conjunction(c int) {
	switch b.lastKind {
	case itemNP, itemVerb, itemAdj:
		if b.cc >= 0 { // "and or": keep the first
			b.attach(c, b.cc, relDep)
			return
		}
		b.cc, b.ccLeft, b.ccKind = c, b.lastTok, b.lastKind
		if b.lastKind == itemNP {
			b.objOpen = false
		}
	default:
		if b.lastTok >= 0 {
			b.attach(c, b.lastTok, relCC)
		} else {
			b.wait(c, relCC)
		}
	}
	b.lastKind = itemCC
}

// punct: boundary marks (, ; : . ! ? and "|"/BREAK) end a comma segment; other marks
// just hang on the token before them.
func (b *treeBuilder) punct(i int) {
	if i > 0 {
		b.attach(i, i-1, relPunct)
	} else {
		b.wait(i, relPunct)
	}
	switch b.toks[i].Text {
	case ",", ";", ":", ".", "!", "?", "|", "BREAK", "...", "…":
		b.endSegment()
		return
	}
	switch b.toks[i].Tag {
	case ",", ".", ":":
		b.endSegment()
	}
}

func (b *treeBuilder) other(i int) {
	switch {
	case b.lastTok >= 0:
		b.attach(i, b.lastTok, relDep)
	case b.top >= 0:
		b.attach(i, b.top, relDep)
	default:
		b.wait(i, relDep)
	}
	b.lastKind, b.lastTok = itemOther, i
}

// endSegment resolves what is pending at a list separator or at the end.
func (b *treeBuilder) endSegment() {
	if b.cc >= 0 {
		b.attach(b.cc, b.ccLeft, relCC)
	}
	if len(b.aux) > 0 {
		s := b.subject()
		if s < 0 {
			s = b.top
		}
		for _, a := range b.aux {
			if s >= 0 {
				b.attach(a, s, relCop)
			} else {
				b.wait(a, relCop)
			}
		}
		b.aux = nil
	}
	if b.rel >= 0 {
		b.attach(b.rel, b.relAnte, relDep)
	}
	if b.relSubj >= 0 {
		b.attach(b.relSubj, b.relAnte, relDep)
	}
	if b.expl >= 0 {
		b.wait(b.expl, relExpl)
	}
	b.resetSegment()
}

// finish picks the root if no noun phrase did, hangs every waiting or unattached
// token on it, and repairs any cycle (there should be none).
func (b *treeBuilder) finish() {
	n := len(b.head)
	if n == 0 {
		b.root = -1
		return
	}
	if b.root < 0 {
		b.root = b.pickRoot()
	}
	b.head[b.root], b.label[b.root] = -1, relRoot
	for k, w := range b.waiting {
		if b.head[w] == -2 {
			b.head[w], b.label[w] = b.root, b.wlabel[k]
		}
	}
	for i := range b.head {
		if b.head[i] == -2 {
			b.head[i], b.label[i] = b.root, relDep
		}
	}
	// every token must reach the root
	state := make([]byte, n) // 0 unknown, 1 on the current path, 2 reaches root
	state[b.root] = 2
	for i := 0; i < n; i++ {
		var path []int
		x := i
		for state[x] == 0 {
			state[x] = 1
			path = append(path, x)
			h := b.head[x]
			if h < 0 || h >= n || state[h] == 1 {
				b.head[x], b.label[x] = b.root, relDep
				b.fixes++
				break
			}
			x = h
		}
		for _, p := range path {
			state[p] = 2
		}
	}
}

func (b *treeBuilder) pickRoot() int {
	cands := append([]int(nil), b.waiting...)
	for i, h := range b.head {
		if h == -2 {
			cands = append(cands, i)
		}
	}
	best := -1
	for _, pass := range []func(Token) bool{
		func(t Token) bool { return t.IsNoun() },
		func(t Token) bool { return isVerbTag(t.Tag) },
		func(t Token) bool { return !t.IsPunct() },
		func(Token) bool { return true },
	} {
		for _, c := range cands {
			if b.head[c] == -2 && pass(b.toks[c]) && (best < 0 || c < best) {
				best = c
			}
		}
		if best >= 0 {
			return best
		}
	}
	return 0
}
