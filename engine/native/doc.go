// Package native finds and loads grefine's native libraries: ONNX Runtime (engine/ort),
// libgrefine_cuda.so or its emulator (engine/cuda) and the TensorRT shim or its emulator
// (engine/trt). The Go binary links none of them; each is loaded at run time, once per
// process, through one Library value per kind.
//
// # Search order
//
// Library.Load(explicit) looks in one order, and the first step that names a library
// decides:
//
//  1. the explicit path (a flag such as --trt-lib, or an Options field), if given;
//  2. else the environment variable of the library (GRF_CUDA_LIB, GRF_TRT_LIB,
//     ONNXRUNTIME_SHARED_LIBRARY_PATH), if set;
//  3. else the places beside the running binary (Spec.Beside, relative to its
//     directory, e.g. libgrefine_cuda.so and ../build/libgrefine_cuda.so), the first that
//     exists;
//  4. else the system loader (dlopen of the bare file name: LD_LIBRARY_PATH, the loader
//     cache, the system directories).
//
// An explicit path or a set variable is the only candidate: a missing or broken library
// there is an error, never a silent fall-through to a library elsewhere. Relative paths
// are made absolute against the working directory. Steps 3 and 4 skip places that do
// not exist; a library that exists but does not load (not an ELF file, missing symbols, a
// wrong ABI version) stops the search with its error. The error of a failed search lists
// every place tried, each with its reason, and ends with the Spec's hint:
//
//	cuda: libgrefine_cuda.so not found: tried option LibPath (not given), $GRF_CUDA_LIB
//	(not set), /opt/grefine/bin/libgrefine_cuda.so (no such file),
//	/opt/grefine/build/libgrefine_cuda.so (no such file), system loader
//	libgrefine_cuda.so (cannot open shared object file); run `make native`
//
// # Caching
//
// A process loads one library of each kind, so a Library caches its result. The first
// successful load is the library for the rest of the process: later calls without an
// explicit path return it, and a later explicit path that names another file is an error
// (ErrConflict) naming both, never silently ignored. A failed request is cached with its
// error: asking again the same way returns the same error without a new attempt (a
// failed dlopen loads nothing, so a different request may still succeed).
//
// # Loading
//
// Spec.Open performs the load of one candidate. For engine/cuda and engine/trt it calls
// Dlopen, the one place where the shims are dlopen'd (RTLD_NOW | RTLD_LOCAL), and then
// resolves the shim's symbols from the Handle in the package's own C code; ONNX Runtime is
// opened by github.com/yalue/onnxruntime_go, given the path. Errors wrap ErrNotFound,
// ErrLoad or ErrConflict; callers wrap them with engine.ErrUnavailable.
package native
