// Package plans builds and checks grefine's TensorRT plans.
//
// # Specs
//
// Each engine of DESIGN §2 has a YAML spec (plans/*.yaml, embedded: Builtin): the ONNX
// file name, the precision (fp32, fp16, bf16; the SDXL VAE is fp32), the builder workspace
// and the optimisation profiles, each a min/opt/max shape per input ("static" for a fixed
// shape). SDXL and PASD UNets and VAEs have a static 1024² profile first (CUDA graphs)
// and a dynamic fallback. Parse and LoadDir validate specs with errors that name the file,
// profile, input and dimension (ErrSpec).
//
// # Cache key and repository
//
// A plan is tied to a GPU compute capability, a TensorRT version, an ONNX model and its
// spec: Key hashes the four (ONNXDigest covers external-data files listed in the spec).
// Build writes a Triton model repository entry, each file atomically:
//
//	<out>/<engine>/1/model.plan       the plan
//	<out>/<engine>/config.pbtxt       platform "tensorrt_plan", max_batch_size 0, dims with -1
//	<out>/<engine>/grefine-plan.json  sidecar: key, GPU, TensorRT, ONNX digest, spec, plan hash
//
// Verify checks an entry against the running machine before use and names every
// difference (ErrMismatch: other GPU, TensorRT, ONNX or spec) or refuses plans it cannot
// vouch for (ErrForeign: no sidecar, replaced plan, edited sidecar). Both wrap
// engine.ErrModel.
//
// # Building
//
// BuildAll is `grefine plans build --models DIR --out DIR`: it builds every spec whose
// entry is missing or stale, continues past failures and reports each engine (built,
// up-to-date, failed, cancelled). The Builder is a *trt.Backend; tests use the fake shim
// of engine/trt/trttest, which "builds" by writing the spec into a text plan, and
// engine/trt/emutest builds the tiny set's real plans with the emulator.
//
// BuildAll uses the builtin specs, or plans/tiny/*.yaml (BuiltinTiny: the tiny set's
// widths, wide dynamic profiles) when the models directory's manifest says "tiny".
//
// # Using plans
//
// Open(dir, set, OpenOptions{}) returns a Repo whose OpenEngine(b, name, opts) has the
// shape of modelset.Set.OpenEngine: b must be a *trt.Backend; the first call per engine
// runs Verify against b.Target() with the ONNX SHA-256 taken from the verified model set
// (no re-hashing; the plan file itself is hashed unless SkipPlanHash), checks the plan's
// I/O against the manifest (engine.ErrContract), and deserializes it once; every call
// returns a new trt.Session in slot opts.Slot (engine.OpenOptions.Slot), which the caller
// closes. Repo.Close closes the engines once their sessions are closed.
//
// On TensorRT 11 networks are strongly typed: precision comes from the ONNX file (export
// fp16 weights for fp16 engines), and the spec's precision only documents the intent.
package plans
