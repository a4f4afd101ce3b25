package plans

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/trt"
	"github.com/grefine/grefine/internal/files"
)

// keyFormat versions the cache key recipe; bump it when the recipe changes.
const keyFormat = "grefine-plan-key/1"

// Key is the plan cache key: SHA-256 over the GPU compute capability, the TensorRT
// runtime version, the ONNX digest and the spec's canonical text (profiles, precision).
// The GPU's name is not part of it: plans move between GPUs of one compute capability.
func Key(t trt.Target, onnxDigest string, s *Spec) string {
	return keyOf(t.ComputeCapability, t.TensorRT, onnxDigest, s.Canonical())
}

func keyOf(cc, trtVersion, onnxDigest, canonical string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\ncompute_capability=%s\ntensorrt=%s\nonnx_sha256=%s\n%s", keyFormat, cc, trtVersion, onnxDigest, canonical)
	return hex.EncodeToString(h.Sum(nil))
}

// fileSHA256 is files.SHA256 with the error as a model error.
func fileSHA256(path string) (string, error) {
	sum, err := files.SHA256(path)
	if err != nil {
		return "", fmt.Errorf("%w: plans: %v", engine.ErrModel, err)
	}
	return sum, nil
}

// ONNXDigest identifies a spec's model in dir: the SHA-256 of the .onnx file, or, when the
// spec lists external-data files, the SHA-256 over "name sha256" lines of the .onnx file
// and each data file in order.
func ONNXDigest(dir string, s *Spec) (string, error) {
	return digestOf(s, func(name string) (string, error) { return fileSHA256(filepath.Join(dir, name)) })
}

// digestOf is ONNXDigest with the files' SHA-256 values coming from sum (file hashes, or a
// verified manifest's).
func digestOf(s *Spec, sum func(name string) (string, error)) (string, error) {
	main, err := sum(s.ONNX)
	if err != nil || len(s.Data) == 0 {
		return main, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", s.ONNX, main)
	for _, d := range s.Data {
		v, err := sum(d)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %s\n", d, v)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
