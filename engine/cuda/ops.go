package cuda

/*
#include "grefine_cuda_loader.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/grefine/grefine/engine"
)

// The engine.Ops of a Stream: each checks its tensors (device, dtype, shape) like its cpu
// twin, fills the launcher's parameter struct and enqueues it (grefine_cuda.h states each
// reference loop; engine/cpu implements it).

// absent reports a nil tensor, including a nil *Tensor in the interface.
func absent(t engine.Tensor) bool {
	if c, ok := t.(*Tensor); ok {
		return c == nil
	}
	return t == nil
}

func wantShape(op, name string, t engine.Tensor, want engine.Shape) error {
	if !absent(t) && !t.Shape().Equal(want) {
		return fmt.Errorf("%w: cuda: %s: %s has shape %v, want %v", engine.ErrShape, op, name, t.Shape(), want)
	}
	return nil
}

func wantElems(op, name string, t engine.Tensor, n int64) error {
	if !absent(t) && t.Shape().NumElements() != n {
		return fmt.Errorf("%w: cuda: %s: %s has shape %v, want %d elements", engine.ErrShape, op, name, t.Shape(), n)
	}
	return nil
}

// imageDims is H, W of an RGB image [H, W, 3].
func imageDims(op, name string, t engine.Tensor) (int, int, error) {
	sh := t.Shape()
	if len(sh) != 3 || sh[2] != 3 {
		return 0, 0, fmt.Errorf("%w: cuda: %s: %s has shape %v, want [H,W,3]", engine.ErrShape, op, name, sh)
	}
	return int(sh[0]), int(sh[1]), nil
}

// ResizeImage implements engine.Ops (grf_resize_rgb8).
func (s *Stream) ResizeImage(src, dst engine.Tensor, r engine.Resample) error {
	const op = "ResizeImage"
	a, err := s.addrs(op, u8("src", src), u8("dst", dst))
	if err != nil {
		return err
	}
	ih, iw, err := imageDims(op, "src", src)
	if err != nil {
		return err
	}
	oh, ow, err := imageDims(op, "dst", dst)
	if err != nil {
		return err
	}
	p := C.grf_resize_rgb8_params{src: (*C.uint8_t)(a[0]), dst: (*C.uint8_t)(a[1]), in_h: C.int(ih), in_w: C.int(iw), out_h: C.int(oh), out_w: C.int(ow),
		filter: C.int(r.Filter)}
	if r.Box != nil {
		p.has_box = 1
		for i, v := range r.Box {
			p.box[i] = C.float(v)
		}
	}
	if p.workspace, p.workspace_bytes, err = s.sized(op, func(need *C.size_t, e *errBuf) C.int {
		return C.grf_go_resize_rgb8_workspace_size(&p, need, e.ptr(), errLen)
	}); err != nil {
		return err
	}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_resize_rgb8(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// ToPlanar implements engine.Ops (grf_to_planar).
func (s *Stream) ToPlanar(src, dst engine.Tensor, mean, std [3]float32) error {
	const op = "ToPlanar"
	a, err := s.addrs(op, u8("src", src), f32("dst", dst))
	if err != nil {
		return err
	}
	h, w, err := imageDims(op, "src", src)
	if err != nil {
		return err
	}
	n := int64(h) * int64(w)
	if err := wantElems(op, "dst", dst, 3*n); err != nil {
		return err
	}
	p := C.grf_planar_params{rgb: (*C.uint8_t)(a[0]), planar: (*C.float)(a[1]), n: C.longlong(n)}
	for c := 0; c < 3; c++ {
		p.mean[c], p.std[c] = C.float(mean[c]), C.float(std[c])
	}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_to_planar(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// FromPlanar implements engine.Ops (grf_from_planar).
func (s *Stream) FromPlanar(src, dst engine.Tensor) error {
	const op = "FromPlanar"
	a, err := s.addrs(op, f32("src", src), u8("dst", dst))
	if err != nil {
		return err
	}
	h, w, err := imageDims(op, "dst", dst)
	if err != nil {
		return err
	}
	n := int64(h) * int64(w)
	if err := wantElems(op, "src", src, 3*n); err != nil {
		return err
	}
	p := C.grf_planar_params{rgb: (*C.uint8_t)(a[1]), planar: (*C.float)(a[0]), n: C.longlong(n)}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_from_planar(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// Paste implements engine.Ops (grf_paste_rgb8).
func (s *Stream) Paste(dst, src, mask engine.Tensor) error {
	const op = "Paste"
	a, err := s.addrs(op, u8("dst", dst), u8("src", src), f32("mask", mask))
	if err != nil {
		return err
	}
	h, w, err := imageDims(op, "dst", dst)
	if err != nil {
		return err
	}
	if err := wantShape(op, "src", src, dst.Shape()); err != nil {
		return err
	}
	n := int64(h) * int64(w)
	if err := wantElems(op, "mask", mask, n); err != nil {
		return err
	}
	p := C.grf_paste_params{dst: (*C.uint8_t)(a[0]), src: (*C.uint8_t)(a[1]), mask: (*C.float)(a[2]), n: C.longlong(n)}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_paste_rgb8(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// Resize implements engine.Ops (grf_resize): src [..., inH, inW] to dst [..., outH, outW].
func (s *Stream) Resize(mode engine.ResizeMode, src, dst engine.Tensor) error {
	const op = "Resize"
	a, err := s.addrs(op, f32("src", src), f32("dst", dst))
	if err != nil {
		return err
	}
	ss, ds := src.Shape(), dst.Shape()
	if len(ss) < 2 || len(ds) != len(ss) || !ss[:len(ss)-2].Equal(ds[:len(ds)-2]) {
		return fmt.Errorf("%w: cuda: %s: shapes %v -> %v", engine.ErrShape, op, ss, ds)
	}
	n, ih, iw, _ := ss.Planes("cuda: " + op)
	_, oh, ow, _ := ds.Planes("cuda: " + op)
	p := C.grf_resize_params{src: (*C.float)(a[0]), dst: (*C.float)(a[1]), planes: C.int(n), in_h: C.int(ih), in_w: C.int(iw),
		out_h: C.int(oh), out_w: C.int(ow), mode: C.int(mode)}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_resize(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// Dilate implements engine.Ops (grf_dilate).
func (s *Stream) Dilate(src, dst engine.Tensor, radius int) error {
	const op = "Dilate"
	a, err := s.addrs(op, f32("src", src), f32("dst", dst))
	if err != nil {
		return err
	}
	sp, dp := a[0], a[1]
	n, h, w, err := src.Shape().Planes("cuda: " + op)
	if err != nil {
		return err
	}
	if err := wantElems(op, "dst", dst, src.Shape().NumElements()); err != nil {
		return err
	}
	if sp == dp && sp != nil {
		return fmt.Errorf("%w: cuda: %s: dst aliases src", engine.ErrShape, op)
	}
	p := C.grf_dilate_params{src: (*C.float)(sp), dst: (*C.float)(dp), planes: C.int(n), height: C.int(h), width: C.int(w), radius: C.int(radius)}
	if radius > 0 {
		if p.workspace, p.workspace_bytes, err = s.workspace(4 * n * h * w); err != nil {
			return err
		}
	}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_dilate(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// Pointwise implements engine.Ops (grf_pointwise).
func (s *Stream) Pointwise(q engine.Pointwise) error {
	op := "Pointwise " + q.Op.String()
	a, err := s.addrs(op, f32("dst", q.Dst), f32("src", q.Src), optF32("src2", q.Src2), optF32("mask", q.Mask))
	if err != nil {
		return err
	}
	n, nd := q.Src.Shape().NumElements(), q.Dst.Shape().NumElements()
	p := C.grf_pointwise_params{op: C.int(q.Op), dst: (*C.float)(a[0]), src: (*C.float)(a[1]), src2: (*C.float)(a[2]), mask: (*C.float)(a[3]),
		n: C.longlong(n), copies: 1, a: C.float(q.A), b: C.float(q.B), s: C.double(q.S), t: C.double(q.T)}
	if q.Clamp01 {
		p.clamp01 = 1
	}
	switch q.Op {
	case engine.PointScale:
		if n == 0 && nd != 0 || n > 0 && (nd == 0 || nd%n != 0) {
			return fmt.Errorf("%w: cuda: %s: %d values into %d", engine.ErrShape, op, n, nd)
		}
		if n > 0 {
			p.copies = C.int(nd / n)
		}
	case engine.PointLerp, engine.PointMaximum:
		if absent(q.Src2) || q.Src2.Shape().NumElements() != n || nd != n {
			return fmt.Errorf("%w: cuda: %s: src %v, src2 %v, dst %v", engine.ErrShape, op, q.Src.Shape(), shapeOf(q.Src2), q.Dst.Shape())
		}
	case engine.PointMaskedAffine, engine.PointDivide:
		m := int64(0)
		if !absent(q.Mask) {
			m = q.Mask.Shape().NumElements()
		}
		if nd != n || m == 0 && n != 0 || m > 0 && n%m != 0 {
			return fmt.Errorf("%w: cuda: %s: src %v, mask %v, dst %v", engine.ErrShape, op, q.Src.Shape(), shapeOf(q.Mask), q.Dst.Shape())
		}
		p.m = C.longlong(m)
	case engine.PointAffine, engine.PointUnscale, engine.PointGreater, engine.PointAtLeast:
		if nd != n {
			return fmt.Errorf("%w: cuda: %s: %d values into %d", engine.ErrShape, op, n, nd)
		}
	default:
		return fmt.Errorf("%w: cuda: unknown pointwise operation %v", engine.ErrShape, q.Op)
	}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_pointwise(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

func shapeOf(t engine.Tensor) engine.Shape {
	if absent(t) {
		return nil
	}
	return t.Shape()
}

// CountAtLeast implements engine.Ops (grf_count_at_least): dst int64 [1].
func (s *Stream) CountAtLeast(src engine.Tensor, bound float32, dst engine.Tensor) error {
	const op = "CountAtLeast"
	a, err := s.addrs(op, f32("src", src), arg{"dst", dst, engine.Int64, false})
	if err != nil {
		return err
	}
	if err := wantElems(op, "dst", dst, 1); err != nil {
		return err
	}
	p := C.grf_count_params{src: (*C.float)(a[0]), count: (*C.longlong)(a[1]), n: C.longlong(src.Shape().NumElements()), bound: C.float(bound)}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_count_at_least(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// FuseMaps implements engine.Ops (grf_fuse_maps): good [B,4,T], align [B,H,W] or nil. Its
// scratch is the stream's.
func (s *Stream) FuseMaps(p engine.FuseParams, good, align engine.Tensor, out engine.FuseOutputs) error {
	const op = "FuseMaps"
	if err := p.Validate(); err != nil {
		return fmt.Errorf("cuda: %s: %w", op, err)
	}
	if good == nil || len(good.Shape()) != 3 {
		return fmt.Errorf("%w: cuda: %s: good has shape %v, want [B,4,T]", engine.ErrShape, op, shapeOf(good))
	}
	B := good.Shape()[0]
	T, H, W, h, w := int64(p.Tokens()), int64(p.Height), int64(p.Width), int64(p.LatentH), int64(p.LatentW)
	checks := []struct {
		name string
		t    engine.Tensor
		want int64
		opt  bool
	}{
		{"good", good, B * 4 * T, false}, {"align", align, B * H * W, true}, {"score", out.Score, B, false},
		{"pmap", out.PMap, B * H * W, false}, {"mask_img", out.MaskImg, B * H * W, false}, {"mask_lat", out.MaskLat, B * h * w, false},
	}
	args := make([]arg, len(checks))
	for i, c := range checks {
		args[i] = arg{c.name, c.t, engine.Float32, c.opt}
	}
	ptrs, err := s.addrs(op, args...)
	if err != nil {
		return err
	}
	for _, c := range checks {
		if err := wantElems(op, c.name, c.t, c.want); err != nil {
			return err
		}
	}
	cp := C.grf_fuse_maps_params{
		good: (*C.float)(ptrs[0]), align: (*C.float)(ptrs[1]), score: (*C.float)(ptrs[2]),
		pmap: (*C.float)(ptrs[3]), mask_img: (*C.float)(ptrs[4]), mask_lat: (*C.float)(ptrs[5]),
		batch: C.int(B), grid_h: C.int(p.GridH), grid_w: C.int(p.GridW),
		height: C.int(p.Height), width: C.int(p.Width), lat_h: C.int(p.LatentH), lat_w: C.int(p.LatentW),
		radius: C.int(p.Radius), perceptual_bound: C.float(p.PerceptualBound),
		perceptual_gate: C.float(p.PerceptualGate), align_bound: C.float(p.AlignBound),
	}
	for i, a := range p.Alpha {
		cp.alpha[i] = C.float(a)
	}
	if cp.workspace, cp.workspace_bytes, err = s.sized(op, func(need *C.size_t, e *errBuf) C.int {
		return C.grf_go_fuse_maps_workspace_size(&cp, need, e.ptr(), errLen)
	}); err != nil {
		return err
	}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_fuse_maps(s.dev.dev(), &cp, s.h, e.ptr(), errLen) })
}

// GoodProbs implements engine.Ops (grf_pq_probs).
func (s *Stream) GoodProbs(tokens, pqText, good engine.Tensor) error {
	const op = "GoodProbs"
	a, err := s.addrs(op, f32("tokens", tokens), f32("pq_text", pqText), f32("good", good))
	if err != nil {
		return err
	}
	sh := tokens.Shape()
	if len(sh) != 3 || sh[2] < 1 {
		return fmt.Errorf("%w: cuda: %s: tokens have shape %v, want [B,T,D]", engine.ErrShape, op, sh)
	}
	B, T, D := sh[0], sh[1], sh[2]
	if err := wantElems(op, "pq_text", pqText, 8*D); err != nil {
		return err
	}
	if err := wantElems(op, "good", good, B*4*T); err != nil {
		return err
	}
	p := C.grf_pq_params{tokens: (*C.float)(a[0]), pq_text: (*C.float)(a[1]), good: (*C.float)(a[2]), batch: C.int(B), tokens_n: C.int(T), dim: C.int(D)}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_pq_probs(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// rowsOf returns (rows, D) of a [..., D] tensor.
func rowsOf(op, name string, t engine.Tensor) (int64, int64, error) {
	sh := t.Shape()
	if len(sh) < 1 || sh[len(sh)-1] < 1 {
		return 0, 0, fmt.Errorf("%w: cuda: %s: %s has shape %v, want [...,D]", engine.ErrShape, op, name, sh)
	}
	D := sh[len(sh)-1]
	return sh.NumElements() / D, D, nil
}

// ScatterRows implements engine.Ops (grf_scatter_rows).
func (s *Stream) ScatterRows(src, index, dst engine.Tensor) error {
	const op = "ScatterRows"
	a, err := s.addrs(op, f32("src", src), arg{"index", index, engine.Int32, false}, f32("dst", dst))
	if err != nil {
		return err
	}
	n, D, err := rowsOf(op, "src", src)
	if err != nil {
		return err
	}
	m, Dd, err := rowsOf(op, "dst", dst)
	if err != nil || Dd != D || index.Shape().NumElements() != n {
		return fmt.Errorf("%w: cuda: %s: src %v, index %v, dst %v", engine.ErrShape, op, src.Shape(), index.Shape(), dst.Shape())
	}
	p := C.grf_scatter_params{src: (*C.float)(a[0]), index: (*C.int32_t)(a[1]), dst: (*C.float)(a[2]), n: C.int(n), m: C.int(m), dim: C.int(D)}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_scatter_rows(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// Ensemble implements engine.Ops (grf_text_ensemble).
func (s *Stream) Ensemble(emb, empty, dst engine.Tensor) error {
	const op = "Ensemble"
	a, err := s.addrs(op, f32("emb", emb), optF32("empty", empty), f32("dst", dst))
	if err != nil {
		return err
	}
	rows, D, err := rowsOf(op, "emb", emb)
	if err != nil {
		return err
	}
	N, Dd, err := rowsOf(op, "dst", dst)
	if err != nil {
		return err
	}
	if Dd != D || N == 0 && rows != 0 || N > 0 && (rows == 0 || rows%N != 0) {
		return fmt.Errorf("%w: cuda: %s: emb %v into dst %v", engine.ErrShape, op, emb.Shape(), dst.Shape())
	}
	if err := wantElems(op, "empty", empty, D); err != nil {
		return err
	}
	K := int64(1)
	if N > 0 {
		K = rows / N
	}
	p := C.grf_ensemble_params{emb: (*C.float)(a[0]), empty: (*C.float)(a[1]), dst: (*C.float)(a[2]), texts: C.int(N), k: C.int(K), dim: C.int(D)}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_text_ensemble(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// TextMaps implements engine.Ops (grf_text_maps).
func (s *Stream) TextMaps(tokens, feats engine.Tensor, gridH, gridW int, dst engine.Tensor) error {
	const op = "TextMaps"
	a, err := s.addrs(op, f32("tokens", tokens), f32("feats", feats), f32("dst", dst))
	if err != nil {
		return err
	}
	T, D, err := rowsOf(op, "tokens", tokens)
	if err != nil {
		return err
	}
	if gridH < 1 || gridW < 1 || T != int64(1+gridH*gridW) {
		return fmt.Errorf("%w: cuda: %s: %d tokens for a %dx%d grid", engine.ErrShape, op, T, gridH, gridW)
	}
	K, Df, err := rowsOf(op, "feats", feats)
	if err != nil || Df != D && K > 0 {
		return fmt.Errorf("%w: cuda: %s: feats %v for %d-d tokens", engine.ErrShape, op, feats.Shape(), D)
	}
	_, H, W, err := dst.Shape().Planes("cuda: " + op)
	if err != nil {
		return err
	}
	if err := wantElems(op, "dst", dst, int64(H)*int64(W)); err != nil {
		return err
	}
	p := C.grf_text_maps_params{tokens: (*C.float)(a[0]), feats: (*C.float)(a[1]), dst: (*C.float)(a[2]), k: C.int(K), dim: C.int(D),
		grid_h: C.int(gridH), grid_w: C.int(gridW), height: C.int(H), width: C.int(W)}
	if K > 0 {
		if p.workspace, p.workspace_bytes, err = s.workspace(int(4 * K * int64(gridH*gridW))); err != nil {
			return err
		}
	}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_text_maps(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// Emphasis implements engine.Ops (grf_emphasis): the weights are read during the call.
func (s *Stream) Emphasis(hidden engine.Tensor, weights []float32) error {
	const op = "Emphasis"
	a, err := s.addrs(op, f32("hidden", hidden))
	if err != nil {
		return err
	}
	n := hidden.Shape().NumElements()
	if len(weights) == 0 || n%int64(len(weights)) != 0 {
		return fmt.Errorf("%w: cuda: %s: %d weights for %v", engine.ErrShape, op, len(weights), hidden.Shape())
	}
	var pin runtime.Pinner // the struct passed to C holds this Go pointer for the call
	pin.Pin(&weights[0])
	defer pin.Unpin()
	p := C.grf_emphasis_params{hidden: (*C.float)(a[0]), weights: (*C.float)(unsafe.Pointer(&weights[0])),
		rows: C.int(len(weights)), dim: C.int(n / int64(len(weights)))}
	ws, wsBytes, err := s.workspace(16)
	if err != nil {
		return err
	}
	p.workspace, p.workspace_bytes = (*C.double)(ws), wsBytes
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_emphasis(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// InpaintInput implements engine.Ops (grf_inpaint_input): latents and masked [B,C,h,w],
// mask [B,1,h,w], out [2B,2C+1,h,w].
func (s *Stream) InpaintInput(scaleIn float32, latents, mask, masked, out engine.Tensor) error {
	const op = "InpaintInput"
	a, err := s.addrs(op, f32("latents", latents), f32("mask", mask), f32("masked", masked), f32("out", out))
	if err != nil {
		return err
	}
	sh := latents.Shape()
	if len(sh) != 4 {
		return fmt.Errorf("%w: cuda: %s: latents %v", engine.ErrShape, op, sh)
	}
	B, C_, H, W := sh[0], sh[1], sh[2], sh[3]
	for _, ck := range []struct {
		name string
		t    engine.Tensor
		want engine.Shape
	}{{"mask", mask, engine.Shape{B, 1, H, W}}, {"masked", masked, engine.Shape{B, C_, H, W}}, {"out", out, engine.Shape{2 * B, 2*C_ + 1, H, W}}} {
		if err := wantShape(op, ck.name, ck.t, ck.want); err != nil {
			return err
		}
	}
	cp := C.grf_inpaint_params{latents: (*C.float)(a[0]), mask: (*C.float)(a[1]), masked: (*C.float)(a[2]), out: (*C.float)(a[3]),
		batch: C.int(B), channels: C.int(C_), height: C.int(H), width: C.int(W), scale_in: C.float(scaleIn)}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_inpaint_input(s.dev.dev(), &cp, s.h, e.ptr(), errLen) })
}

// BlendStep implements engine.Ops (grf_blend_step). out may be in.X; x0 may be nil.
func (s *Stream) BlendStep(c engine.BlendCoeffs, in engine.BlendTensors, out, x0 engine.Tensor) error {
	const op = "BlendStep"
	if absent(in.X) {
		return fmt.Errorf("%w: cuda: %s: x is nil", engine.ErrShape, op)
	}
	sh := in.X.Shape()
	if len(sh) != 4 {
		return fmt.Errorf("%w: cuda: %s: x has shape %v", engine.ErrShape, op, sh)
	}
	B, C_, H, W := sh[0], sh[1], sh[2], sh[3]
	lat := engine.Shape{B, C_, H, W}
	checks := []struct {
		name string
		t    engine.Tensor
		want engine.Shape
		opt  bool
	}{
		{"noise_pred", in.NoisePred, engine.Shape{2 * B, C_, H, W}, false},
		{"init", in.Init, lat, true}, {"noise", in.Noise, lat, true}, {"mask", in.Mask, engine.Shape{B, 1, H, W}, true},
		{"hist0", in.Hist[0], lat, true}, {"hist1", in.Hist[1], lat, true}, {"out", out, lat, false}, {"x0", x0, lat, true},
		{"x", in.X, lat, false},
	}
	args := make([]arg, len(checks))
	for i, ck := range checks {
		args[i] = arg{ck.name, ck.t, engine.Float32, ck.opt}
	}
	ptrs, err := s.addrs(op, args...)
	if err != nil {
		return err
	}
	for _, ck := range checks {
		if err := wantShape(op, ck.name, ck.t, ck.want); err != nil {
			return err
		}
	}
	cp := C.grf_blend_params{
		noise_pred: (*C.float)(ptrs[0]), x: (*C.float)(ptrs[8]), init: (*C.float)(ptrs[1]),
		noise: (*C.float)(ptrs[2]), mask: (*C.float)(ptrs[3]),
		out: (*C.float)(ptrs[6]), x0: (*C.float)(ptrs[7]),
		batch: C.int(B), channels: C.int(C_), height: C.int(H), width: C.int(W),
		guidance: C.float(c.Guidance), ca: C.float(c.CA), cb: C.float(c.CB),
		cc: C.float(c.CC), cd: C.float(c.CD), ce: C.float(c.CE), cf: C.float(c.CF),
	}
	cp.hist[0], cp.hist[1] = (*C.float)(ptrs[4]), (*C.float)(ptrs[5])
	cp.ch[0], cp.ch[1] = C.float(c.CH[0]), C.float(c.CH[1])
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_blend_step(s.dev.dev(), &cp, s.h, e.ptr(), errLen) })
}

// ColorFix implements engine.Ops (grf_color_fix).
func (s *Stream) ColorFix(content, style, dst engine.Tensor, levels int) error {
	const op = "ColorFix"
	a, err := s.addrs(op, f32("content", content), f32("style", style), f32("dst", dst))
	if err != nil {
		return err
	}
	sh := content.Shape()
	if len(sh) < 3 || sh.NumElements() != sh[len(sh)-3]*sh[len(sh)-2]*sh[len(sh)-1] {
		return fmt.Errorf("%w: cuda: %s: content has shape %v, want [C,H,W]", engine.ErrShape, op, sh)
	}
	n := sh.NumElements()
	if err := wantElems(op, "style", style, n); err != nil {
		return err
	}
	if err := wantElems(op, "dst", dst, n); err != nil {
		return err
	}
	p := C.grf_color_fix_params{content: (*C.float)(a[0]), style: (*C.float)(a[1]), dst: (*C.float)(a[2]),
		channels: C.int(sh[len(sh)-3]), height: C.int(sh[len(sh)-2]), width: C.int(sh[len(sh)-1]), levels: C.int(levels)}
	if p.workspace, p.workspace_bytes, err = s.sized(op, func(need *C.size_t, e *errBuf) C.int {
		return C.grf_go_color_fix_workspace_size(&p, need, e.ptr(), errLen)
	}); err != nil {
		return err
	}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_color_fix(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// BoundingBox implements engine.Ops (grf_bounding_box): src [..., H, W], dst int64 [4].
func (s *Stream) BoundingBox(src engine.Tensor, bound float32, dst engine.Tensor) error {
	const op = "BoundingBox"
	a, err := s.addrs(op, f32("src", src), arg{"dst", dst, engine.Int64, false})
	if err != nil {
		return err
	}
	if err := wantElems(op, "dst", dst, 4); err != nil {
		return err
	}
	n, h, w, err := src.Shape().Planes("cuda: " + op)
	if err != nil {
		return err
	}
	p := C.grf_bbox_params{src: (*C.float)(a[0]), box: (*C.longlong)(a[1]), planes: C.int(n), height: C.int(h), width: C.int(w), bound: C.float(bound)}
	if p.workspace, p.workspace_bytes, err = s.workspace(16); err != nil {
		return err
	}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_bounding_box(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// tileParams fills the shared fields of grf_tile_params: whole [R, C, H, W], windows
// [rows, C, TH, TW].
func tileParams(op string, whole, wins engine.Shape, t engine.Tiles) (C.grf_tile_params, error) {
	var p C.grf_tile_params
	if len(whole) != 4 || len(wins) != 4 || whole[1] != wins[1] || wins[2] != int64(t.TH) || wins[3] != int64(t.TW) {
		return p, fmt.Errorf("%w: cuda: %s: shapes %v and %v for %dx%d windows", engine.ErrShape, op, whole, wins, t.TW, t.TH)
	}
	if err := t.Check("cuda: "+op, int(whole[2]), int(whole[3])); err != nil {
		return p, err
	}
	p.r, p.channels, p.height, p.width = C.int(whole[0]), C.int(whole[1]), C.int(whole[2]), C.int(whole[3])
	p.th, p.tw, p.n = C.int(t.TH), C.int(t.TW), C.int(len(t.Y))
	for k := range t.Y {
		p.y[k], p.x[k] = C.int(t.Y[k]), C.int(t.X[k])
	}
	return p, nil
}

// TileGather implements engine.Ops (grf_tile_gather).
func (s *Stream) TileGather(src, dst engine.Tensor, t engine.Tiles) error {
	const op = "TileGather"
	a, err := s.addrs(op, f32("src", src), f32("dst", dst))
	if err != nil {
		return err
	}
	p, err := tileParams(op, src.Shape(), dst.Shape(), t)
	if err != nil {
		return err
	}
	rows, n := dst.Shape()[0], int64(len(t.Y))
	if rows%n != 0 || (int64(p.r) != 1 && int64(p.r) != rows/n) {
		return fmt.Errorf("%w: cuda: %s: %d rows of %d windows from %d source rows", engine.ErrShape, op, rows, n, p.r)
	}
	p.src, p.dst, p.copies, p.nb = (*C.float)(a[0]), (*C.float)(a[1]), C.int(rows/n), C.int(n)
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_tile_gather(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// TileAccumulate implements engine.Ops (grf_tile_accumulate).
func (s *Stream) TileAccumulate(pred, weights, acc, wsum engine.Tensor, t engine.Tiles) error {
	const op = "TileAccumulate"
	a, err := s.addrs(op, f32("pred", pred), f32("weights", weights), f32("acc", acc), f32("wsum", wsum))
	if err != nil {
		return err
	}
	p, err := tileParams(op, acc.Shape(), pred.Shape(), t)
	if err != nil {
		return err
	}
	copies, rows := int64(p.r), pred.Shape()[0]
	if copies < 1 || rows%copies != 0 || rows/copies < int64(len(t.Y)) {
		return fmt.Errorf("%w: cuda: %s: %d prediction rows for %d copies of %d windows", engine.ErrShape, op, rows, copies, len(t.Y))
	}
	if err := wantElems(op, "weights", weights, int64(t.TH*t.TW)); err != nil {
		return err
	}
	if err := wantElems(op, "wsum", wsum, acc.Shape()[2]*acc.Shape()[3]); err != nil {
		return err
	}
	p.pred, p.weights, p.acc, p.wsum = (*C.float)(a[0]), (*C.float)(a[1]), (*C.float)(a[2]), (*C.float)(a[3])
	p.copies, p.nb = C.int(copies), C.int(rows/copies)
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_tile_accumulate(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}

// VAEBlend implements engine.Ops (grf_vae_blend): a [..., ah, aw], b [..., bh, bw].
func (s *Stream) VAEBlend(a, b engine.Tensor, extent int, vertical bool) error {
	const op = "VAEBlend"
	ptr, err := s.addrs(op, f32("a", a), f32("b", b))
	if err != nil {
		return err
	}
	C1, ah, aw, err := a.Shape().Planes("cuda: " + op)
	if err != nil {
		return err
	}
	C2, bh, bw, err := b.Shape().Planes("cuda: " + op)
	if err != nil {
		return err
	}
	if C1 != C2 || extent < 0 || (vertical && aw != bw) || (!vertical && ah != bh) {
		return fmt.Errorf("%w: cuda: %s: %v into %v, extent %d, vertical %v", engine.ErrShape, op, a.Shape(), b.Shape(), extent, vertical)
	}
	p := C.grf_vae_blend_params{a: (*C.float)(ptr[0]), b: (*C.float)(ptr[1]), channels: C.int(C1), ah: C.int(ah), aw: C.int(aw),
		bh: C.int(bh), bw: C.int(bw), extent: C.int(extent)}
	if vertical {
		p.vertical = 1
	}
	return s.launch(op, func(e *errBuf) C.int { return C.grf_go_vae_blend(s.dev.dev(), &p, s.h, e.ptr(), errLen) })
}
