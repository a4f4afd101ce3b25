package cuda

/*
#include "grefine_cuda_loader.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/grefine/grefine/engine"
)

// f32 checks that t is a live float32 tensor of the given rank and returns its pointer.
func f32(op, name string, t *Tensor, rank int) (unsafe.Pointer, error) {
	if t == nil || t.closed {
		return nil, fmt.Errorf("%w: cuda: %s: %s is nil or closed", engine.ErrShape, op, name)
	}
	if t.dtype != engine.Float32 {
		return nil, fmt.Errorf("%w: cuda: %s: %s is %v, want float32", engine.ErrDType, op, name, t.dtype)
	}
	if rank > 0 && len(t.shape) != rank {
		return nil, fmt.Errorf("%w: cuda: %s: %s has shape %v, want rank %d", engine.ErrShape, op, name, t.shape, rank)
	}
	return t.ptr, nil
}

// optF32 is f32 for an optional tensor (nil gives a NULL pointer).
func optF32(op, name string, t *Tensor, rank int) (unsafe.Pointer, error) {
	if t == nil {
		return nil, nil
	}
	return f32(op, name, t, rank)
}

func wantShape(op, name string, t *Tensor, want engine.Shape) error {
	if t != nil && !t.shape.Equal(want) {
		return fmt.Errorf("%w: cuda: %s: %s has shape %v, want %v", engine.ErrShape, op, name, t.shape, want)
	}
	return nil
}

// planes splits a shape [..., H, W] into (product of leading dims, H, W).
func planes(s engine.Shape) (n, h, w int) {
	n = 1
	for _, d := range s[:len(s)-2] {
		n *= int(d)
	}
	return n, int(s[len(s)-2]), int(s[len(s)-1])
}

// Resize enqueues grf_resize: src [..., inH, inW] to dst [..., outH, outW] (same leading
// dims, rank >= 2), twin of cpu.Resize.
func (s *Stream) Resize(mode engine.ResizeMode, src, dst *Tensor) error {
	const op = "Resize"
	if err := s.live(); err != nil {
		return err
	}
	sp, err := f32(op, "src", src, 0)
	if err != nil {
		return err
	}
	dp, err := f32(op, "dst", dst, 0)
	if err != nil {
		return err
	}
	if len(src.shape) < 2 || len(dst.shape) != len(src.shape) || !src.shape[:len(src.shape)-2].Equal(dst.shape[:len(dst.shape)-2]) {
		return fmt.Errorf("%w: cuda: %s: shapes %v -> %v", engine.ErrShape, op, src.shape, dst.shape)
	}
	n, ih, iw := planes(src.shape)
	_, oh, ow := planes(dst.shape)
	p := C.grf_resize_params{
		src: (*C.float)(sp), dst: (*C.float)(dp),
		planes: C.int(n), in_h: C.int(ih), in_w: C.int(iw), out_h: C.int(oh), out_w: C.int(ow),
		mode: C.int(mode),
	}
	var e errBuf
	if rc := C.grf_go_resize(s.dev.dev(), &p, s.h, e.ptr(), errLen); rc != statusOK {
		return statusError(op, rc, &e)
	}
	return nil
}

// FuseMapsOut holds FuseMaps' output tensors (float32): Score [B], PMap and MaskImg
// [B,H,W], MaskLat [B,h,w].
type FuseMapsOut struct {
	Score, PMap, MaskImg, MaskLat *Tensor
}

// FuseMaps enqueues grf_fuse_maps, twin of cpu.FuseMaps: good [B,4,T], align [B,H,W] or
// nil. Its scratch memory is the stream's workspace.
func (s *Stream) FuseMaps(p engine.FuseParams, good, align *Tensor, out FuseMapsOut) error {
	const op = "FuseMaps"
	if err := s.live(); err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("cuda: %s: %w", op, err)
	}
	if _, err := f32(op, "good", good, 3); err != nil {
		return err
	}
	B := good.shape[0]
	T, H, W, h, w := int64(p.Tokens()), int64(p.Height), int64(p.Width), int64(p.LatentH), int64(p.LatentW)
	checks := []struct {
		name string
		t    *Tensor
		want engine.Shape
		opt  bool
	}{
		{"good", good, engine.Shape{B, 4, T}, false},
		{"align", align, engine.Shape{B, H, W}, true},
		{"score", out.Score, engine.Shape{B}, false},
		{"pmap", out.PMap, engine.Shape{B, H, W}, false},
		{"mask_img", out.MaskImg, engine.Shape{B, H, W}, false},
		{"mask_lat", out.MaskLat, engine.Shape{B, h, w}, false},
	}
	ptrs := make([]unsafe.Pointer, len(checks))
	var err error
	for i, c := range checks {
		get := f32
		if c.opt {
			get = optF32
		}
		if ptrs[i], err = get(op, c.name, c.t, len(c.want)); err != nil {
			return err
		}
		if err := wantShape(op, c.name, c.t, c.want); err != nil {
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
	var e errBuf
	var need C.size_t
	if rc := C.grf_go_fuse_maps_workspace_size(&cp, &need, e.ptr(), errLen); rc != statusOK {
		return statusError(op, rc, &e)
	}
	if need > 0 {
		ws, err := s.workspace(int(need))
		if err != nil {
			return err
		}
		cp.workspace, cp.workspace_bytes = ws, C.size_t(s.wsBytes)
	}
	if rc := C.grf_go_fuse_maps(s.dev.dev(), &cp, s.h, e.ptr(), errLen); rc != statusOK {
		return statusError(op, rc, &e)
	}
	return nil
}

// BlendIn holds BlendStep's input tensors (float32), twin of cpu.BlendIn: NoisePred
// [2B,C,h,w], X [B,C,h,w], optional Init, Noise, Hist [B,C,h,w] and Mask [B,1,h,w].
type BlendIn struct {
	NoisePred, X, Init, Noise, Mask *Tensor
	Hist                            [2]*Tensor
}

// BlendStep enqueues grf_blend_step, twin of cpu.BlendStep. out may be in.X; x0 may be
// nil.
func (s *Stream) BlendStep(c engine.BlendCoeffs, in BlendIn, out, x0 *Tensor) error {
	const op = "BlendStep"
	if err := s.live(); err != nil {
		return err
	}
	xp, err := f32(op, "x", in.X, 4)
	if err != nil {
		return err
	}
	B, C_, H, W := in.X.shape[0], in.X.shape[1], in.X.shape[2], in.X.shape[3]
	lat := engine.Shape{B, C_, H, W}
	checks := []struct {
		name string
		t    *Tensor
		want engine.Shape
		opt  bool
	}{
		{"noise_pred", in.NoisePred, engine.Shape{2 * B, C_, H, W}, false},
		{"init", in.Init, lat, true},
		{"noise", in.Noise, lat, true},
		{"mask", in.Mask, engine.Shape{B, 1, H, W}, true},
		{"hist0", in.Hist[0], lat, true},
		{"hist1", in.Hist[1], lat, true},
		{"out", out, lat, false},
		{"x0", x0, lat, true},
	}
	ptrs := make([]unsafe.Pointer, len(checks))
	for i, ck := range checks {
		get := f32
		if ck.opt {
			get = optF32
		}
		if ptrs[i], err = get(op, ck.name, ck.t, 4); err != nil {
			return err
		}
		if err := wantShape(op, ck.name, ck.t, ck.want); err != nil {
			return err
		}
	}
	cp := C.grf_blend_params{
		noise_pred: (*C.float)(ptrs[0]), x: (*C.float)(xp), init: (*C.float)(ptrs[1]),
		noise: (*C.float)(ptrs[2]), mask: (*C.float)(ptrs[3]),
		out: (*C.float)(ptrs[6]), x0: (*C.float)(ptrs[7]),
		batch: C.int(B), channels: C.int(C_), height: C.int(H), width: C.int(W),
		guidance: C.float(c.Guidance), ca: C.float(c.CA), cb: C.float(c.CB),
		cc: C.float(c.CC), cd: C.float(c.CD), ce: C.float(c.CE), cf: C.float(c.CF),
	}
	cp.hist[0], cp.hist[1] = (*C.float)(ptrs[4]), (*C.float)(ptrs[5])
	cp.ch[0], cp.ch[1] = C.float(c.CH[0]), C.float(c.CH[1])
	var e errBuf
	if rc := C.grf_go_blend_step(s.dev.dev(), &cp, s.h, e.ptr(), errLen); rc != statusOK {
		return statusError(op, rc, &e)
	}
	return nil
}

// InpaintInput enqueues grf_inpaint_input, twin of cpu.InpaintInput: latents and masked
// [B,C,h,w], mask [B,1,h,w], out [2B,2C+1,h,w].
func (s *Stream) InpaintInput(scaleIn float32, latents, mask, masked, out *Tensor) error {
	const op = "InpaintInput"
	if err := s.live(); err != nil {
		return err
	}
	lp, err := f32(op, "latents", latents, 4)
	if err != nil {
		return err
	}
	B, C_, H, W := latents.shape[0], latents.shape[1], latents.shape[2], latents.shape[3]
	mp, err := f32(op, "mask", mask, 4)
	if err != nil {
		return err
	}
	kp, err := f32(op, "masked", masked, 4)
	if err != nil {
		return err
	}
	op_, err := f32(op, "out", out, 4)
	if err != nil {
		return err
	}
	for _, ck := range []struct {
		name string
		t    *Tensor
		want engine.Shape
	}{
		{"mask", mask, engine.Shape{B, 1, H, W}},
		{"masked", masked, engine.Shape{B, C_, H, W}},
		{"out", out, engine.Shape{2 * B, 2*C_ + 1, H, W}},
	} {
		if err := wantShape(op, ck.name, ck.t, ck.want); err != nil {
			return err
		}
	}
	cp := C.grf_inpaint_params{
		latents: (*C.float)(lp), mask: (*C.float)(mp), masked: (*C.float)(kp), out: (*C.float)(op_),
		batch: C.int(B), channels: C.int(C_), height: C.int(H), width: C.int(W),
		scale_in: C.float(scaleIn),
	}
	var e errBuf
	if rc := C.grf_go_inpaint_input(s.dev.dev(), &cp, s.h, e.ptr(), errLen); rc != statusOK {
		return statusError(op, rc, &e)
	}
	return nil
}
