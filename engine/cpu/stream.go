package cpu

import (
	"fmt"

	"github.com/grefine/grefine/engine"
)

// Stream is the cpu device's engine.Stream: every copy and op runs at once, on host
// tensors, with the reference function of the same name. It counts copies and syncs like
// a GPU stream does (a copy between "host" and "device" memory is a copy between two host
// tensors here), so the pipeline's counts mean the same on every device.
type Stream struct {
	c      engine.Counters
	closed bool
}

var _ engine.Stream = (*Stream)(nil)

// Device implements engine.Stream.
func (s *Stream) Device() engine.Device { return Device{} }

// Handle implements engine.Stream: 0, there is no native stream.
func (s *Stream) Handle() uintptr { return 0 }

// Counters implements engine.Stream.
func (s *Stream) Counters() engine.Counters { return s.c }

// Close implements engine.Stream; idempotent.
func (s *Stream) Close() error {
	if s != nil {
		s.closed = true
	}
	return nil
}

func (s *Stream) live(op string) error {
	if s == nil || s.closed {
		return fmt.Errorf("%w: cpu: %s: stream closed", engine.ErrClosed, op)
	}
	s.c.Launches++
	return nil
}

// sameStorage checks that dst and src have the same dtype and element count.
func sameStorage(op string, dst, src *engine.HostTensor) error {
	if dst.DType() != src.DType() || dst.Len() != src.Len() {
		return fmt.Errorf("%w: cpu: %s: %v%v into %v%v", engine.ErrShape, op, src.DType(), src.Shape(), dst.DType(), dst.Shape())
	}
	return nil
}

func copyHost(dst, src *engine.HostTensor) {
	copy(dst.F32, src.F32)
	copy(dst.I32, src.I32)
	copy(dst.I64, src.I64)
	copy(dst.U8, src.U8)
}

// Upload implements engine.Stream (a host-to-host copy, counted as an upload).
func (s *Stream) Upload(dst engine.Tensor, src *engine.HostTensor) error {
	if err := s.live("Upload"); err != nil {
		return err
	}
	d, err := host("Upload", "dst", dst, 0)
	if err != nil {
		return err
	}
	if src == nil {
		return fmt.Errorf("%w: cpu: Upload: nil source", engine.ErrShape)
	}
	if err := sameStorage("Upload", d, src); err != nil {
		return err
	}
	copyHost(d, src)
	s.c.CountUpload(engine.Bytes(src))
	return nil
}

// Download implements engine.Stream (counted as a download and a sync).
func (s *Stream) Download(dst *engine.HostTensor, src engine.Tensor) error {
	if err := s.live("Download"); err != nil {
		return err
	}
	h, err := host("Download", "src", src, 0)
	if err != nil {
		return err
	}
	if dst == nil {
		return fmt.Errorf("%w: cpu: Download: nil destination", engine.ErrShape)
	}
	if err := sameStorage("Download", dst, h); err != nil {
		return err
	}
	copyHost(dst, h)
	s.c.CountDownload(engine.Bytes(h))
	return nil
}

// Copy implements engine.Stream.
func (s *Stream) Copy(dst, src engine.Tensor) error {
	if err := s.live("Copy"); err != nil {
		return err
	}
	d, err := host("Copy", "dst", dst, 0)
	if err != nil {
		return err
	}
	h, err := host("Copy", "src", src, 0)
	if err != nil {
		return err
	}
	if err := sameStorage("Copy", d, h); err != nil {
		return err
	}
	copyHost(d, h)
	s.c.CountCopy(engine.Bytes(h))
	return nil
}

// Copy2D implements engine.Stream.
func (s *Stream) Copy2D(dst, src engine.Tensor, c engine.Copy2D) error {
	if err := s.live("Copy2D"); err != nil {
		return err
	}
	d, err := host("Copy2D", "dst", dst, 0)
	if err != nil {
		return err
	}
	h, err := host("Copy2D", "src", src, d.DType())
	if err != nil {
		return err
	}
	if err := c.Check(int64(d.Len()), int64(h.Len())); err != nil {
		return fmt.Errorf("cpu: %w", err)
	}
	for r := int64(0); r < c.Rows; r++ {
		do, so := c.DstOffset+r*c.DstPitch, c.SrcOffset+r*c.SrcPitch
		dv, err := d.View(do, engine.Shape{c.Cols})
		if err != nil {
			return err
		}
		sv, err := h.View(so, engine.Shape{c.Cols})
		if err != nil {
			return err
		}
		copyHost(dv, sv)
	}
	s.c.CountCopy(c.Rows * c.Cols * int64(d.DType().Size()))
	return nil
}

// Zero implements engine.Stream.
func (s *Stream) Zero(t engine.Tensor) error {
	if err := s.live("Zero"); err != nil {
		return err
	}
	h, err := host("Zero", "tensor", t, 0)
	if err != nil {
		return err
	}
	clear(h.F32)
	clear(h.I32)
	clear(h.I64)
	clear(h.U8)
	return nil
}

// Sync implements engine.Stream: the work is done already; the sync is counted.
func (s *Stream) Sync() error {
	if s == nil || s.closed {
		return fmt.Errorf("%w: cpu: Sync: stream closed", engine.ErrClosed)
	}
	s.c.CountSync()
	return nil
}

// imageDims returns H, W of an RGB image tensor [H, W, 3].
func imageDims(op, name string, t *engine.HostTensor) (int, int, error) {
	sh := t.Shape()
	if len(sh) != 3 || sh[2] != 3 {
		return 0, 0, fmt.Errorf("%w: cpu: %s: %s has shape %v, want [H,W,3]", engine.ErrShape, op, name, sh)
	}
	return int(sh[0]), int(sh[1]), nil
}

// ResizeImage implements engine.Ops with ResizeImage.
func (s *Stream) ResizeImage(src, dst engine.Tensor, r engine.Resample) error {
	if err := s.live("ResizeImage"); err != nil {
		return err
	}
	a, err := host("ResizeImage", "src", src, engine.Uint8)
	if err != nil {
		return err
	}
	b, err := host("ResizeImage", "dst", dst, engine.Uint8)
	if err != nil {
		return err
	}
	ih, iw, err := imageDims("ResizeImage", "src", a)
	if err != nil {
		return err
	}
	oh, ow, err := imageDims("ResizeImage", "dst", b)
	if err != nil {
		return err
	}
	return ResizeImage(a.U8, ih, iw, b.U8, oh, ow, r)
}

// ToPlanar implements engine.Ops with ToPlanar.
func (s *Stream) ToPlanar(src, dst engine.Tensor, mean, std [3]float32) error {
	if err := s.live("ToPlanar"); err != nil {
		return err
	}
	a, err := host("ToPlanar", "src", src, engine.Uint8)
	if err != nil {
		return err
	}
	if _, _, err := imageDims("ToPlanar", "src", a); err != nil {
		return err
	}
	d, err := f32s("ToPlanar", "dst", dst, false)
	if err != nil {
		return err
	}
	return ToPlanar(a.U8, d, mean, std)
}

// FromPlanar implements engine.Ops with FromPlanar.
func (s *Stream) FromPlanar(src, dst engine.Tensor) error {
	if err := s.live("FromPlanar"); err != nil {
		return err
	}
	a, err := f32s("FromPlanar", "src", src, false)
	if err != nil {
		return err
	}
	b, err := host("FromPlanar", "dst", dst, engine.Uint8)
	if err != nil {
		return err
	}
	if _, _, err := imageDims("FromPlanar", "dst", b); err != nil {
		return err
	}
	return FromPlanar(a, b.U8)
}

// Paste implements engine.Ops with Paste.
func (s *Stream) Paste(dst, src, mask engine.Tensor) error {
	if err := s.live("Paste"); err != nil {
		return err
	}
	d, err := host("Paste", "dst", dst, engine.Uint8)
	if err != nil {
		return err
	}
	a, err := host("Paste", "src", src, engine.Uint8)
	if err != nil {
		return err
	}
	m, err := f32s("Paste", "mask", mask, false)
	if err != nil {
		return err
	}
	for _, t := range []*engine.HostTensor{d, a} {
		if _, _, err := imageDims("Paste", "image", t); err != nil {
			return err
		}
	}
	if !d.Shape().Equal(a.Shape()) {
		return fmt.Errorf("%w: cpu: Paste: images %v and %v", engine.ErrShape, d.Shape(), a.Shape())
	}
	return Paste(d.U8, a.U8, m)
}

// Resize implements engine.Ops with Resize.
func (s *Stream) Resize(mode engine.ResizeMode, src, dst engine.Tensor) error {
	if err := s.live("Resize"); err != nil {
		return err
	}
	a, err := host("Resize", "src", src, engine.Float32)
	if err != nil {
		return err
	}
	b, err := host("Resize", "dst", dst, engine.Float32)
	if err != nil {
		return err
	}
	n, ih, iw, err := a.Shape().Planes("cpu: Resize")
	if err != nil {
		return err
	}
	m, oh, ow, err := b.Shape().Planes("cpu: Resize")
	if err != nil {
		return err
	}
	if m != n || len(a.Shape()) != len(b.Shape()) {
		return fmt.Errorf("%w: cpu: Resize: shapes %v -> %v", engine.ErrShape, a.Shape(), b.Shape())
	}
	return Resize(mode, a.F32, n, ih, iw, b.F32, oh, ow)
}

// Dilate implements engine.Ops with Dilate.
func (s *Stream) Dilate(src, dst engine.Tensor, radius int) error {
	if err := s.live("Dilate"); err != nil {
		return err
	}
	a, err := host("Dilate", "src", src, engine.Float32)
	if err != nil {
		return err
	}
	b, err := f32s("Dilate", "dst", dst, false)
	if err != nil {
		return err
	}
	n, h, w, err := a.Shape().Planes("cpu: Dilate")
	if err != nil {
		return err
	}
	if len(b) > 0 && len(a.F32) > 0 && &a.F32[0] == &b[0] {
		return fmt.Errorf("%w: cpu: Dilate: dst aliases src", engine.ErrShape)
	}
	return Dilate(a.F32, n, h, w, radius, b)
}

// Pointwise implements engine.Ops with Pointwise.
func (s *Stream) Pointwise(p engine.Pointwise) error {
	if err := s.live("Pointwise"); err != nil {
		return err
	}
	var a PointwiseArgs
	var err error
	for _, f := range []struct {
		dst  *[]float32
		name string
		t    engine.Tensor
		opt  bool
	}{{&a.Dst, "dst", p.Dst, false}, {&a.Src, "src", p.Src, false}, {&a.Src2, "src2", p.Src2, true}, {&a.Mask, "mask", p.Mask, true}} {
		if *f.dst, err = f32s("Pointwise", f.name, f.t, f.opt); err != nil {
			return err
		}
	}
	return Pointwise(p, a)
}

// CountAtLeast implements engine.Ops with CountAtLeast.
func (s *Stream) CountAtLeast(src engine.Tensor, bound float32, dst engine.Tensor) error {
	if err := s.live("CountAtLeast"); err != nil {
		return err
	}
	a, err := f32s("CountAtLeast", "src", src, false)
	if err != nil {
		return err
	}
	d, err := host("CountAtLeast", "dst", dst, engine.Int64)
	if err != nil {
		return err
	}
	if d.Len() != 1 {
		return fmt.Errorf("%w: cpu: CountAtLeast: dst has shape %v, want [1]", engine.ErrShape, d.Shape())
	}
	d.I64[0] = CountAtLeast(a, bound)
	return nil
}

// FuseMaps implements engine.Ops with FuseMaps.
func (s *Stream) FuseMaps(p engine.FuseParams, good, align engine.Tensor, out engine.FuseOutputs) error {
	if err := s.live("FuseMaps"); err != nil {
		return err
	}
	g, err := host("FuseMaps", "good", good, engine.Float32)
	if err != nil {
		return err
	}
	if len(g.Shape()) != 3 {
		return fmt.Errorf("%w: cpu: FuseMaps: good has shape %v, want [B,4,T]", engine.ErrShape, g.Shape())
	}
	a, err := f32s("FuseMaps", "align", align, true)
	if err != nil {
		return err
	}
	var o FuseMapsOut
	for _, f := range []struct {
		dst  *[]float32
		name string
		t    engine.Tensor
	}{{&o.Score, "score", out.Score}, {&o.PMap, "pmap", out.PMap}, {&o.MaskImg, "mask_img", out.MaskImg}, {&o.MaskLat, "mask_lat", out.MaskLat}} {
		if *f.dst, err = f32s("FuseMaps", f.name, f.t, false); err != nil {
			return err
		}
	}
	return FuseMaps(p, int(g.Shape()[0]), g.F32, a, o)
}

// GoodProbs implements engine.Ops with GoodProbs.
func (s *Stream) GoodProbs(tokens, pqText, good engine.Tensor) error {
	if err := s.live("GoodProbs"); err != nil {
		return err
	}
	tk, err := host("GoodProbs", "tokens", tokens, engine.Float32)
	if err != nil {
		return err
	}
	sh := tk.Shape()
	if len(sh) != 3 {
		return fmt.Errorf("%w: cpu: GoodProbs: tokens have shape %v, want [B,T,D]", engine.ErrShape, sh)
	}
	pq, err := f32s("GoodProbs", "pq_text", pqText, false)
	if err != nil {
		return err
	}
	g, err := f32s("GoodProbs", "good", good, false)
	if err != nil {
		return err
	}
	return GoodProbs(tk.F32, int(sh[0]), int(sh[1]), int(sh[2]), pq, g)
}

// rowsOf returns (rows, D) of a [..., D] tensor.
func rowsOf(op, name string, t *engine.HostTensor) (int, int, error) {
	sh := t.Shape()
	if len(sh) < 1 || sh[len(sh)-1] < 1 {
		return 0, 0, fmt.Errorf("%w: cpu: %s: %s has shape %v, want [...,D]", engine.ErrShape, op, name, sh)
	}
	D := int(sh[len(sh)-1])
	return t.Len() / D, D, nil
}

// ScatterRows implements engine.Ops with ScatterRows.
func (s *Stream) ScatterRows(src, index, dst engine.Tensor) error {
	if err := s.live("ScatterRows"); err != nil {
		return err
	}
	a, err := host("ScatterRows", "src", src, engine.Float32)
	if err != nil {
		return err
	}
	ix, err := host("ScatterRows", "index", index, engine.Int32)
	if err != nil {
		return err
	}
	d, err := host("ScatterRows", "dst", dst, engine.Float32)
	if err != nil {
		return err
	}
	_, D, err := rowsOf("ScatterRows", "src", a)
	if err != nil {
		return err
	}
	if _, Dd, err := rowsOf("ScatterRows", "dst", d); err != nil || Dd != D {
		return fmt.Errorf("%w: cpu: ScatterRows: rows of %d into rows of %v", engine.ErrShape, D, d.Shape())
	}
	return ScatterRows(a.F32, ix.I32, d.F32, D)
}

// Ensemble implements engine.Ops with Ensemble.
func (s *Stream) Ensemble(emb, empty, dst engine.Tensor) error {
	if err := s.live("Ensemble"); err != nil {
		return err
	}
	e, err := host("Ensemble", "emb", emb, engine.Float32)
	if err != nil {
		return err
	}
	R, err := f32s("Ensemble", "empty", empty, true)
	if err != nil {
		return err
	}
	d, err := host("Ensemble", "dst", dst, engine.Float32)
	if err != nil {
		return err
	}
	rows, D, err := rowsOf("Ensemble", "emb", e)
	if err != nil {
		return err
	}
	N, Dd, err := rowsOf("Ensemble", "dst", d)
	if err != nil {
		return err
	}
	if Dd != D || N == 0 && rows != 0 || N > 0 && (rows%N != 0 || rows == 0) {
		return fmt.Errorf("%w: cpu: Ensemble: emb %v into dst %v", engine.ErrShape, e.Shape(), d.Shape())
	}
	K := 1
	if N > 0 {
		K = rows / N
	}
	return Ensemble(e.F32, N, K, D, R, d.F32)
}

// TextMaps implements engine.Ops with TextMaps.
func (s *Stream) TextMaps(tokens, feats engine.Tensor, gridH, gridW int, dst engine.Tensor) error {
	if err := s.live("TextMaps"); err != nil {
		return err
	}
	tk, err := host("TextMaps", "tokens", tokens, engine.Float32)
	if err != nil {
		return err
	}
	_, D, err := rowsOf("TextMaps", "tokens", tk)
	if err != nil {
		return err
	}
	f, err := f32s("TextMaps", "feats", feats, false)
	if err != nil {
		return err
	}
	d, err := host("TextMaps", "dst", dst, engine.Float32)
	if err != nil {
		return err
	}
	_, H, W, err := d.Shape().Planes("cpu: TextMaps")
	if err != nil {
		return err
	}
	return TextMaps(tk.F32, gridH, gridW, D, f, H, W, d.F32)
}

// Emphasis implements engine.Ops with Emphasis.
func (s *Stream) Emphasis(hidden engine.Tensor, weights []float32) error {
	if err := s.live("Emphasis"); err != nil {
		return err
	}
	h, err := host("Emphasis", "hidden", hidden, engine.Float32)
	if err != nil {
		return err
	}
	if len(weights) == 0 || h.Len()%len(weights) != 0 {
		return fmt.Errorf("%w: cpu: Emphasis: %d weights for %v", engine.ErrShape, len(weights), h.Shape())
	}
	return Emphasis(h.F32, h.Len()/len(weights), weights)
}

// InpaintInput implements engine.Ops with InpaintInput.
func (s *Stream) InpaintInput(scaleIn float32, latents, mask, masked, out engine.Tensor) error {
	if err := s.live("InpaintInput"); err != nil {
		return err
	}
	l, err := host("InpaintInput", "latents", latents, engine.Float32)
	if err != nil {
		return err
	}
	sh := l.Shape()
	if len(sh) != 4 {
		return fmt.Errorf("%w: cpu: InpaintInput: latents %v", engine.ErrShape, sh)
	}
	var m, k, o []float32
	for _, f := range []struct {
		dst  *[]float32
		name string
		t    engine.Tensor
	}{{&m, "mask", mask}, {&k, "masked", masked}, {&o, "out", out}} {
		if *f.dst, err = f32s("InpaintInput", f.name, f.t, false); err != nil {
			return err
		}
	}
	return InpaintInput(int(sh[0]), int(sh[1]), int(sh[2]), int(sh[3]), scaleIn, l.F32, m, k, o)
}

// BlendStep implements engine.Ops with BlendStep.
func (s *Stream) BlendStep(c engine.BlendCoeffs, in engine.BlendTensors, out, x0 engine.Tensor) error {
	if err := s.live("BlendStep"); err != nil {
		return err
	}
	x, err := host("BlendStep", "x", in.X, engine.Float32)
	if err != nil {
		return err
	}
	if len(x.Shape()) != 4 {
		return fmt.Errorf("%w: cpu: BlendStep: x has shape %v", engine.ErrShape, x.Shape())
	}
	b := BlendIn{X: x.F32}
	var o, x0s []float32
	for _, f := range []struct {
		dst  *[]float32
		name string
		t    engine.Tensor
		opt  bool
	}{{&b.NoisePred, "noise_pred", in.NoisePred, false}, {&b.Init, "init", in.Init, true}, {&b.Noise, "noise", in.Noise, true},
		{&b.Mask, "mask", in.Mask, true}, {&b.Hist[0], "hist0", in.Hist[0], true}, {&b.Hist[1], "hist1", in.Hist[1], true},
		{&o, "out", out, false}, {&x0s, "x0", x0, true}} {
		if *f.dst, err = f32s("BlendStep", f.name, f.t, f.opt); err != nil {
			return err
		}
	}
	sh := x.Shape()
	return BlendStep(c, int(sh[0]), int(sh[1]), int(sh[2]), int(sh[3]), b, o, x0s)
}

// ColorFix implements engine.Ops with ColorFix.
func (s *Stream) ColorFix(content, style, dst engine.Tensor, levels int) error {
	if err := s.live("ColorFix"); err != nil {
		return err
	}
	c, err := host("ColorFix", "content", content, engine.Float32)
	if err != nil {
		return err
	}
	sh := c.Shape()
	if len(sh) < 3 || c.Len() != int(sh[len(sh)-3]*sh[len(sh)-2]*sh[len(sh)-1]) {
		return fmt.Errorf("%w: cpu: ColorFix: content has shape %v, want [C,H,W]", engine.ErrShape, sh)
	}
	st, err := f32s("ColorFix", "style", style, false)
	if err != nil {
		return err
	}
	d, err := f32s("ColorFix", "dst", dst, false)
	if err != nil {
		return err
	}
	C, H, W := int(sh[len(sh)-3]), int(sh[len(sh)-2]), int(sh[len(sh)-1])
	return ColorFix(c.F32, st, C, H, W, levels, d)
}
