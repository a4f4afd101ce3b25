// Command tritonbackend is grefine's Triton Inference Server backend,
// libtriton_grefine.so: built with -buildmode=c-shared by tools/triton-build.sh into
// build/triton/backends/grefine/ (point tritonserver's --backend-directory at
// build/triton/backends). `go doc github.com/grefine/grefine/triton` is the manual:
// deployment, the model configuration, inputs, outputs, parameters, errors.
//
// The package only marshals. It implements Triton's backend entry points
// (TRITONBACKEND_Initialize, _ModelInitialize, _ModelInstanceInitialize,
// _ModelInstanceExecute and their finalisers) and calls the server's C API, declared by
// us in cgo/include/grefine_triton.h from the documented API (the server ships no header;
// libtritonserver binds the symbols when it loads the library). Each entry point converts
// Triton's objects into package triton's values (the model configuration's JSON, a Call of
// inputs, parameters and requested outputs) and back (output tensors, a
// TRITONSERVER_Error from the pipeline's status table, the statistics' steady-clock
// timestamps), and turns a Go panic into an INTERNAL error.
//
// Only the TRITONBACKEND_* entry points are exported (exports.map). The library is
// linked with -z nodelete: a Go runtime cannot be unloaded, and Triton dlcloses a backend
// when it is done with it. helpers.c holds the C helpers (steady clock, SA_ONSTACK on the
// server's signal handlers, Triton's log).
package main
