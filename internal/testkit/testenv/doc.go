// Package testenv holds what tests across the repository share: the repository root,
// the ONNX Runtime backend (skip with the reason, or fail under GRF_REQUIRE_ORT=1 as
// `make test` sets it), the committed tiny model set and the goldens, and Buffer, a
// buffer safe for concurrent use (logs, a child process's stderr).
package testenv
