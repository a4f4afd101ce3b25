package ort

import (
	"github.com/grefine/grefine/engine"
)

// hostInputs checks that every input is a host tensor: ort engines read the cpu device's
// tensors only. A tensor of another device is an engine.ErrDevice error naming both
// devices, never a silent copy; engine.OnDevice is the explicit, counted copy path that
// pairs ort engines with a GPU device.
func (e *Engine) hostInputs(in map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	for name, t := range in {
		if err := engine.CheckDevice("ort: "+e.name, "input "+name, t, "cpu"); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// deliver counts the run (and, on the CUDA execution provider, the bytes ONNX Runtime
// copies to and from the GPU).
func (e *Engine) deliver(in, res map[string]engine.Tensor) (map[string]engine.Tensor, error) {
	var inBytes, outBytes int64
	for _, t := range in {
		inBytes += engine.Bytes(t)
	}
	for _, t := range res {
		outBytes += engine.Bytes(t)
	}
	e.statMu.Lock()
	e.stats.Runs++
	if e.cuda {
		e.stats.ORTInBytes += inBytes
		e.stats.ORTOutBytes += outBytes
	}
	e.statMu.Unlock()
	return res, nil
}
