package ort

import (
	"fmt"

	"github.com/grefine/grefine/engine"
)

// hostInputs returns the inputs as host tensors: host tensors as they are, tensors of
// e.tensors downloaded (counted), anything else an engine.ErrDevice error.
func (e *Engine) hostInputs(in map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	var out map[string]engine.Tensor
	for name, t := range in {
		if t.DeviceName() == "cpu" {
			continue
		}
		if e.tensors == nil || t.DeviceName() != e.tensors.Name() {
			want := "cpu"
			if e.tensors != nil {
				want += " or " + e.tensors.Name()
			}
			return nil, fmt.Errorf("%w: %s: input %q is on %s, engine reads %s", engine.ErrDevice, e.name, name, t.DeviceName(), want)
		}
		if out == nil {
			out = make(map[string]engine.Tensor, len(in))
			for k, v := range in {
				out[k] = v
			}
		}
		h, err := e.tensors.Download(t)
		if err != nil {
			return nil, fmt.Errorf("ort: %s: input %q: download: %w", e.name, name, err)
		}
		out[name] = h
		e.count(func(s *CopyStats) { s.Downloads++; s.DownloadBytes += hostBytes(h) })
	}
	if out == nil {
		return in, nil
	}
	return out, nil
}

// deliver counts the run and, with e.tensors, uploads the outputs there (closing what was
// uploaded if one upload fails).
func (e *Engine) deliver(in, res map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	var inBytes, outBytes int64
	for _, t := range in {
		inBytes += hostBytes(t)
	}
	for _, t := range res {
		outBytes += hostBytes(t)
	}
	e.count(func(s *CopyStats) {
		s.Runs++
		if e.cuda {
			s.ORTInBytes += inBytes
			s.ORTOutBytes += outBytes
		}
	})
	if e.tensors == nil {
		return res, nil
	}
	dev := make(map[string]engine.Tensor, len(res))
	for name, t := range res {
		d, err := e.tensors.Upload(t.(*engine.HostTensor))
		if err != nil {
			engine.CloseAll(dev)
			return nil, fmt.Errorf("ort: %s: output %q: upload: %w", e.name, name, err)
		}
		dev[name] = d
		e.count(func(s *CopyStats) { s.Uploads++; s.UploadBytes += hostBytes(t) })
	}
	return dev, nil
}

func (e *Engine) count(f func(*CopyStats)) {
	e.statMu.Lock()
	f(&e.stats)
	e.statMu.Unlock()
}

// hostBytes is the storage size of a tensor (element count × element size).
func hostBytes(t engine.Tensor) int64 {
	n := t.Shape().NumElements()
	if n < 0 {
		return 0
	}
	return n * int64(t.DType().Size())
}
