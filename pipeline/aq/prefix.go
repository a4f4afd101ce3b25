package aq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/pipeline/tokenizer"
)

// KVEngine is the model-set name of the optional prefix-cached text engine (an extension
// of DESIGN §2, exported by tools/export as ClipTextKV):
//
//	input_ids    int32 [B,S]          the row's tokens after its cached prefix
//	past_keys    f32   [L,T,H,P,hd]   keys and values of T cached prefixes, P positions
//	past_values  f32   [L,T,H,P,hd]
//	past_index   int32 [B]            the table row holding row b's prefix
//	past_length  int32 [B]            how many of its positions are real
//	-> text_embeds f32 [B,D], present_keys/present_values f32 [L,B,H,S,hd] (the call's own)
const KVEngine = "clip_text_kv"

func isKV(ins []engine.TensorDesc) bool {
	_, ok := findDesc(ins, "past_keys")
	return ok
}

// prefixTable is the kv engine's cache: for each template the keys and values, at every
// layer, of its prefix (SOT and the tokens before "{}"), computed once; and a last slot
// holding SOT alone, for rows whose tokens do not start with their template's prefix
// (a text that merges with the template's last word, e.g. "photo{}" with "graph").
type prefixTable struct {
	ids          [][]int32     // per slot: the prefix's ids
	keys, values engine.Tensor // [L, slots, H, P, hd] on the encoder's device
	sot          int           // the SOT-only slot
	// Positions is what building the table computed (slots × P).
	Positions int
}

func newPrefixTable(ctx context.Context, tok *tokenizer.Tokenizer, eng engine.Engine, s engine.Stream, templates []string) (*prefixTable, error) {
	pk, ok := findDesc(eng.Inputs(), "past_keys")
	if !ok || len(pk.Shape) != 5 || pk.Shape[0] < 1 || pk.Shape[2] < 1 || pk.Shape[4] < 1 {
		return nil, fmt.Errorf("%w: %s past_keys %v is not [L,T,H,P,hd] with static L, H, hd", ErrConfig, KVEngine, pk)
	}
	L, H, hd := pk.Shape[0], pk.Shape[2], pk.Shape[4]
	p := &prefixTable{}
	for i, tpl := range templates {
		ids, info, err := tok.Encode(tpl[:strings.Index(tpl, "{}")])
		if err != nil {
			return nil, fmt.Errorf("aq: template %d: %w", i, err)
		}
		n := info.NumTokens - 1 // SOT and the tokens, without EOT
		if info.Truncated {
			n = 1 // a prefix of 76 tokens or more leaves no room: SOT only
		}
		p.ids = append(p.ids, append([]int32(nil), ids[:n]...))
	}
	p.sot = len(p.ids)
	p.ids = append(p.ids, []int32{tokenizer.SOT})
	P := 0
	for _, x := range p.ids {
		P = max(P, len(x))
	}
	T := len(p.ids)
	// One int32 block: the ids [T,P] (padded with 0 after the prefix: causal, so it
	// changes nothing before), then T zeros (past_index and past_length).
	block := make([]int32, T*P+T)
	for i, x := range p.ids {
		copy(block[i*P:], x)
	}
	dev := s.Device()
	var tmp []engine.Tensor
	defer func() { closeTensors(tmp) }()
	hb, err := engine.FromInt32(engine.Shape{int64(len(block))}, block)
	if err != nil {
		return nil, err
	}
	bt, err := dev.Alloc(engine.Int32, hb.Shape())
	if err != nil {
		return nil, err
	}
	tmp = append(tmp, bt)
	if err := s.Upload(bt, hb); err != nil {
		return nil, err
	}
	x, err := dev.View(bt, 0, engine.Shape{int64(T), int64(P)})
	if err != nil {
		return nil, err
	}
	zeros, err := dev.View(bt, int64(T*P), engine.Shape{int64(T)})
	if err != nil {
		return nil, err
	}
	none, err := dev.Alloc(engine.Float32, engine.Shape{L, 1, H, 1, hd}) // an empty past: one position, masked (past_length 0)
	if err != nil {
		return nil, err
	}
	tmp = append(tmp, x, zeros, none)
	if err := s.Zero(none); err != nil {
		return nil, err
	}
	res, err := eng.Run(ctx, map[string]engine.Tensor{idsName: x, "past_keys": none, "past_values": none,
		"past_index": zeros, "past_length": zeros})
	if err != nil {
		return nil, fmt.Errorf("aq: %s: template prefixes: %w", KVEngine, err)
	}
	want := engine.Shape{L, int64(T), H, int64(P), hd}
	for _, name := range []string{"present_keys", "present_values"} {
		t := res[name]
		if t == nil || t.DType() != engine.Float32 || !t.Shape().Equal(want) || t.DeviceName() != dev.Name() {
			engine.CloseAll(res)
			return nil, fmt.Errorf("%w: %s returned %s %v, want float32 %v on %s", ErrShape, KVEngine, name, res[name], want, dev.Name())
		}
	}
	p.keys, p.values = res["present_keys"], res["present_values"]
	for name, t := range res {
		if name != "present_keys" && name != "present_values" {
			t.Close()
		}
	}
	p.Positions = T * P
	return p, nil
}

func (p *prefixTable) close() error {
	return errors.Join(p.keys.Close(), p.values.Close())
}

// assign points r (template k) at its prefix: template k's when r's ids start with it,
// else the SOT-only slot. The engine then computes r.n - r.cut positions.
func (p *prefixTable) assign(r *row, k int) {
	pre := p.ids[k]
	if r.n > len(pre) && slices.Equal(r.ids[:len(pre)], pre) {
		r.slot, r.cut = k, len(pre)
		return
	}
	r.slot, r.cut = p.sot, 1
}
