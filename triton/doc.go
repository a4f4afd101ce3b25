// Package triton runs grefine inside Triton Inference Server: it is the logic of the
// Triton backend named "grefine" (libtriton_grefine.so, built from cmd/tritonbackend),
// and it writes the model repositories that backend serves (`grefine triton-repo`).
//
// Triton brings what a fleet needs: HTTP and gRPC with the KServe v2 protocol, model
// repositories, instance groups per GPU, queueing and rate limits, Prometheus metrics and
// health checks. grefine brings the pipeline: each model instance is one loaded
// pipeline.Pipeline, and every request runs the pipeline's own flow (package pipeline);
// the backend only marshals Triton's tensors and parameters in and out.
//
// # Deploying
//
// Build the backend and write a repository for a model set:
//
//	bash tools/triton-build.sh      # build/triton/backends/grefine/libtriton_grefine.so
//	grefine --models /models/grefine triton-repo --out /repo --instances 2 --slots 1
//	tritonserver --model-repository=/repo --backend-directory=build/triton/backends
//
// Triton loads the backend from <backend-directory>/grefine/libtriton_grefine.so. Put it
// there only, never inside a model's directory: Triton would load one copy per model, and
// two copies are two Go runtimes in one process, which crash. The networks need ONNX
// Runtime: the "lib" parameter, or $ONNXRUNTIME_SHARED_LIBRARY_PATH in tritonserver's
// environment. The README (Triton; Kubernetes) has a deployment with GPU requests,
// readiness and autoscaling.
//
// # The repository
//
// WriteRepository (`grefine triton-repo`) writes grefine_assess and grefine_refine, each a
// config.pbtxt and an empty version directory 1/. A config.pbtxt says backend "grefine",
// max_batch_size 0 (one image per request; scale with instances and slots), the inputs,
// the outputs, an instance_group, and the model's settings as parameters (all strings, as
// Triton's parameters are):
//
//	task        assess or refine (required)
//	models      the model-set directory (required; relative paths are relative to the model's directory)
//	backend     ort (default) or trt; plans: a TensorRT plan repository, for trt
//	device      cpu, cuda or cuda-emu (default: cuda for KIND_GPU instances and backend trt, else cpu)
//	lib         the backend's native library (ONNX Runtime, or libgrefine_trt.so)
//	hash_cache  a file remembering verified model files (default: every file is hashed at load)
//	slots       requests one instance runs at once, 1 to 64 (default 1)
//	threads     intra-op threads per engine (default: the backend's)
//
// ParseModelConfig checks a configuration when Triton loads the model, so a wrong one is
// refused with the reason (unknown parameter, max_batch_size not 0, a tensor of the wrong
// type, a KIND_CPU instance with device cuda).
//
// Each instance of instance_group opens its own pipeline (model set verified, engines
// opened) in TRITONBACKEND_ModelInstanceInitialize, and closes it in
// TRITONBACKEND_ModelInstanceFinalize after the requests still running have answered.
// Execution hands each request to a goroutine once one of the instance's slots is free,
// so an instance runs up to slots requests at once and Triton's queue holds the others
// (its queue time is the time waited for a slot).
//
// KIND_GPU instances run on device cuda and pass their GPU index to the device (the
// ordinal of engine/cuda) and to the networks' backend (ort: the CUDA execution
// provider's device_id; trt: the shim's device). This has not run on a GPU: the machine
// that built it had none (tests/triton runs KIND_CPU instances).
//
// # Requests
//
// Inputs: image, TYPE_STRING (BYTES) [1], an encoded PNG, JPEG or GIF; prompt,
// TYPE_STRING [1], optional (without it alignment is skipped). Request parameters are the
// rows of the pipeline's parameter table (pipeline.ParamTable, `grefine params`) by their
// JSON names, as in the REST API and `grefine serve`'s KServe v2 (seed, steps1, steps2,
// strength2, dilate, ...): Triton's INT, DOUBLE, BOOL and STRING parameters keep their
// types and go through pipeline.ParseParams onto the model set's defaults, and an unknown
// name, a wrong type or an out-of-range value is bad input. As in `grefine serve`, a
// request is admitted (parameters, prompt and work limits checked) before its image is
// decoded, within the pipeline's decode budget. Outputs, in this order: image (refine
// only: the refined image as PNG bytes, the bytes `grefine refine` writes for the same
// seed), report (the JSON report of `grefine serve`), p, a, q (FP32 [1]), and the maps
// p_map, a_map and mask (FP32 [H, W]). Triton sends the outputs a request names, all of
// them when it names none; a and a_map are left out when alignment was skipped.
//
// # Errors, cancellation, statistics
//
// Errors keep the pipeline's message and map the pipeline's status table onto Triton's
// codes (CodeOf): input is INVALID_ARG (HTTP 400, gRPC INVALID_ARGUMENT), busy and
// unavailable are UNAVAILABLE (503), canceled is CANCELLED, internal is INTERNAL (500).
// A request is asked at every progress event, so once per denoising step, whether Triton
// cancelled it (TRITONBACKEND_RequestIsCancelled: a gRPC client cancelled it); if so it
// stops within that step and ends CANCELLED. A request's timeout
// (Triton's timeout parameter) becomes its deadline. Every request's statistics
// (TRITONBACKEND_ModelInstanceReportStatistics, and the batch statistics of its
// execution) are reported just after its response, so Triton's statistics extension
// and its metrics (nv_inference_request_success, _failure, nv_inference_exec_count,
// nv_inference_compute_infer_duration_us, ...) count grefine's work.
//
// The backend logs into Triton's log (JSON records): models and instances as they load,
// and each failed request with its status; with tritonserver --log-verbose 1 also a
// "request running" record when a request takes its slot.
//
// # The Go runtime inside Triton
//
// The backend is a Go c-shared library: one Go runtime, which cannot be unloaded. The
// library is linked with -z nodelete, so Triton's dlclose leaves it in place and a model
// loaded again finds it as it was. Triton installs its SIGINT/SIGTERM handlers without
// SA_ONSTACK; the backend adds the flag (until it has seen the handlers, at every
// execution), because a signal delivered to a Go thread would otherwise run on a small
// goroutine stack. Do not load a second Go library (libgrefine, another Go backend) into
// the same tritonserver.
//
// Why Go and not C over libgrefine: a C front end would turn Triton's typed request
// parameters into grefine_params field by field, and would need its own copy of the
// parameter names; in Go they go through the parameter table's parser
// (pipeline.ParseParams), the code path of `grefine serve`, and the request flow is the
// server's (admission, decoding within the budget, the run). Both designs need one Go
// runtime and nodelete; Go keeps the errors, reports and PNG encoding those of the other
// front ends.
//
// # Tests
//
// tools/triton-test.sh (run by make test) installs tritonserver 2.51.0 from the pinned
// nvidia-pytriton wheel and perf_analyzer from the tritonclient 2.41.0 wheel
// (tools/triton-setup.sh), builds the backend, starts tritonserver on a repository of the
// tiny model set and checks, with tritonclient over HTTP and gRPC (tests/triton):
// assess and refine equal `grefine assess` and `grefine refine` (scores, maps, PNG bytes;
// the PNG also equals `grefine serve`'s), bad requests are client errors, statistics,
// cancellation, unload and load through the repository API, perf_analyzer, and that
// SIGTERM lets the request in flight answer before tritonserver exits 0.
package triton
