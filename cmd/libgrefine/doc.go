// Command libgrefine is grefine's C library: built with -buildmode=c-shared into
// build/libgrefine.so and with -buildmode=c-archive into build/libgrefine.a (`make lib`,
// tools/lib.sh). Its contract is the hand-written header include/grefine.h (and the
// C++17 wrapper include/grefine.hpp); the header cgo generates is never installed.
//
// The package only marshals: shim.c defines the public grefine_* functions with the
// header's exact prototypes and forwards each to its Go twin grf_lib_* (main.go), which
// converts the C structs (marshal.go) and calls package pipeline: grefine_open is
// pipeline.Open, grefine_assess and grefine_refine are Pipeline.Assess and Refine,
// grefine_cancel is Pipeline.Cancel. Statuses come from pipeline.StatusOf, so the
// numeric grefine_status equals pipeline.Status and agrees with the CLI's exit codes and
// the server's HTTP codes.
//
// # Memory
//
// No Go memory outlives a call: inputs (options, image, prompt, params) are read or copied
// during the call; results are allocated with C malloc and freed by the grefine_*_free
// functions in shim.c, each of which first asks handles.go whether the pointer is a live
// result of its kind (a double free or a foreign pointer is GREFINE_ERR_INPUT, nothing
// freed), and puts the freed struct through a quarantine. The opaque grefine_pipeline* is
// no pointer at all: a value naming an entry of a handle table by index and generation
// (handles.go), so a closed handle is GREFINE_ERR_UNAVAILABLE and a forged one
// GREFINE_ERR_INPUT. grefine_params is marshalled row by row of pipeline.ParamTable
// (by each row's C field, through cgo's struct type); tests check the struct and the
// header's comments against the table.
//
// # Failures
//
// Every exported function that returns a status defers guard, which turns a Go panic on
// the calling goroutine into GREFINE_ERR_INTERNAL with the panic's message. Errors are written into the
// caller's buffer, truncated on a UTF-8 boundary.
//
// # Go runtime constraints
//
// One Go runtime per process, never dlclose, SA_ONSTACK for host signal handlers: see
// the header. The version script exports.map keeps every symbol but grefine_* local in
// libgrefine.so.
//
// Tests: tools/test-lib.sh (run by `make test`) builds the library, installs it into
// build/prefix, builds tests/c and the examples against the installed CMake package and
// pkg-config file, runs them, and compares the examples' outputs with bin/grefine's.
package main
