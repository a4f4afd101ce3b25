package plans

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/grefine/grefine/engine/trt"
)

// Repository layout (Triton's): <repo>/<engine>/config.pbtxt, <repo>/<engine>/1/model.plan,
// plus grefine's sidecar <repo>/<engine>/grefine-plan.json.
const (
	planVersion  = "1"
	planFile     = "model.plan"
	configFile   = "config.pbtxt"
	sidecarFile  = "grefine-plan.json"
	sidecarMagic = "grefine-plan/1"
)

// PlanPath is where the plan of engine name lives in repository repo.
func PlanPath(repo, name string) string { return filepath.Join(repo, name, planVersion, planFile) }

// SidecarPath is where the sidecar of engine name lives in repository repo.
func SidecarPath(repo, name string) string { return filepath.Join(repo, name, sidecarFile) }

// ConfigPath is where the Triton config of engine name lives in repository repo.
func ConfigPath(repo, name string) string { return filepath.Join(repo, name, configFile) }

// TensorJSON is one plan I/O tensor in the sidecar.
type TensorJSON struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
}

// Sidecar records how and for what a plan was built. Verify compares it with the running
// machine before a plan is used.
type Sidecar struct {
	Format            string       `json:"format"`
	Engine            string       `json:"engine"`
	Key               string       `json:"key"`
	GPU               string       `json:"gpu"`
	ComputeCapability string       `json:"compute_capability"`
	TensorRT          string       `json:"tensorrt"`
	ONNX              string       `json:"onnx"`
	ONNXSHA256        string       `json:"onnx_sha256"`
	Spec              string       `json:"spec"` // Spec.Canonical() at build time
	PlanSHA256        string       `json:"plan_sha256"`
	PlanBytes         int64        `json:"plan_bytes"`
	Inputs            []TensorJSON `json:"inputs"`
	Outputs           []TensorJSON `json:"outputs"`
	BuiltAt           time.Time    `json:"built_at"`
	BuildSeconds      float64      `json:"build_seconds"`
}

// ReadSidecar reads the sidecar of engine name.
func ReadSidecar(repo, name string) (*Sidecar, error) {
	path := SidecarPath(repo, name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: no sidecar %s (not built by grefine, or the build was interrupted)", ErrForeign, name, path)
	}
	var s Sidecar
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: %s: sidecar %s: %v", ErrForeign, name, path, err)
	}
	return &s, nil
}

// Expect is what Verify checks a plan against.
type Expect struct {
	Spec   *Spec
	Target trt.Target // this machine (trt.Backend.Target)
	// ONNXSHA256 is the digest of the model the plan must come from (ONNXDigest, or the
	// model-set manifest's value).
	ONNXSHA256 string
	// SkipPlanHash trusts model.plan's size instead of hashing it (plans are GBs).
	SkipPlanHash bool
}

// Verify checks that the plan of e.Spec.Name in repo was built from e.ONNXSHA256 with
// the current spec for this GPU and TensorRT, and that model.plan is the plan the sidecar
// describes. The error names every difference; it wraps ErrMismatch or ErrForeign (both
// also engine.ErrModel).
func Verify(repo string, e Expect) (*Sidecar, error) {
	name := e.Spec.Name
	sc, err := ReadSidecar(repo, name)
	if err != nil {
		return nil, err
	}
	if sc.Format != sidecarMagic {
		return nil, fmt.Errorf("%w: %s: sidecar format %q, want %q", ErrForeign, name, sc.Format, sidecarMagic)
	}
	if sc.Engine != name {
		return nil, fmt.Errorf("%w: %s: sidecar describes engine %q", ErrForeign, name, sc.Engine)
	}
	if keyOf(sc.ComputeCapability, sc.TensorRT, sc.ONNXSHA256, sc.Spec) != sc.Key {
		return nil, fmt.Errorf("%w: %s: sidecar key does not match its own fields (edited by hand?)", ErrForeign, name)
	}
	plan := PlanPath(repo, name)
	st, err := os.Stat(plan)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrForeign, name, err)
	}
	if st.Size() != sc.PlanBytes {
		return nil, fmt.Errorf("%w: %s: %s has %d bytes, the sidecar describes a %d-byte plan (replaced?)", ErrForeign, name, plan, st.Size(), sc.PlanBytes)
	}
	if !e.SkipPlanHash {
		sum, err := fileSHA256(plan)
		if err != nil {
			return nil, err
		}
		if sum != sc.PlanSHA256 {
			return nil, fmt.Errorf("%w: %s: %s is not the plan the sidecar describes (sha256 %s, sidecar %s)", ErrForeign, name, plan, short(sum), short(sc.PlanSHA256))
		}
	}
	var diffs []string
	if sc.ComputeCapability != e.Target.ComputeCapability {
		diffs = append(diffs, fmt.Sprintf("built for compute capability %s, this GPU (%s) is %s", sc.ComputeCapability, e.Target.GPU, e.Target.ComputeCapability))
	}
	if sc.TensorRT != e.Target.TensorRT {
		diffs = append(diffs, fmt.Sprintf("built with TensorRT %s, running %s", sc.TensorRT, e.Target.TensorRT))
	}
	if sc.ONNXSHA256 != e.ONNXSHA256 {
		diffs = append(diffs, fmt.Sprintf("built from onnx sha256 %s, the model is %s", short(sc.ONNXSHA256), short(e.ONNXSHA256)))
	}
	if c := e.Spec.Canonical(); sc.Spec != c {
		diffs = append(diffs, "spec changed since the build: "+specDiff(sc.Spec, c))
	}
	if len(diffs) > 0 {
		return sc, fmt.Errorf("%w: %s: %s (rebuild with `grefine plans build`)", ErrMismatch, name, strings.Join(diffs, "; "))
	}
	return sc, nil
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// specDiff names the first differing line of two canonical specs.
func specDiff(was, now string) string {
	a, b := strings.Split(was, "\n"), strings.Split(now, "\n")
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("%q became %q", strings.TrimSpace(x), strings.TrimSpace(y))
		}
	}
	return "no difference"
}
