// Package server is `grefine serve`: the loaded pipeline behind HTTP, as a REST API
// (/v1) and as the KServe v2 Open Inference Protocol (/v2), with Prometheus metrics,
// limits, bearer tokens and a graceful drain. It only marshals: every decision about
// an image, a prompt or a parameter is the pipeline's, and every error status comes
// from the pipeline's one table (pipeline.HTTPStatus), plus the HTTP layer's own 401,
// 404, 405, 406, 413 and 415.
//
// # Using it
//
//	p, _ := pipeline.Open(ctx, pipeline.Config{Models: dir, Slots: 2, MaxQueue: 16})
//	s, _ := server.New(server.Config{Pipeline: p, Timeout: 2 * time.Minute})
//	err := s.ListenAndServe(ctx, "127.0.0.1:8080") // until ctx ends, then drains
//
// Handler gives the routes behind their middleware for embedding (httptest in the
// tests). The routing table (routeTable) and openapi.json, served at /openapi.json,
// list the same operations; a test keeps them in step.
//
// # REST
//
// POST /v1/assess and /v1/refine take multipart/form-data (an image file part, a
// prompt field, parameters as fields by their JSON names: seed=7, masked_blend=false,
// parsed by pipeline.ParamTable) or JSON ({"image": base64, "prompt": ..., "params":
// {...}}). Unknown parameter names, wrong types, a field or JSON key given twice and data
// after the JSON are 400; values are checked by the pipeline. Accept chooses the
// answer: JSON (the report: scores, parts, defects, timings, params with the seed;
// refine's adds the stage decisions and the image as base64 PNG), image/png or
// image/jpeg (refine's image alone), or text/event-stream: "progress" events
// (pipeline.Event: queued with position, assess, stage1/stage2 with step and total),
// then one "result" or "error" event. The stream opens at the first event, so the cheap
// checks still answer with their status code. PNGs come from imageio.EncodePNG, the
// CLI's encoder: the same seed gives the same bytes through both (tested).
//
// Every request has an id: the client's X-Request-Id (printable ASCII, at most 128
// bytes) or a generated one (128 random bits), echoed in the response, written in the
// access log and passed to the pipeline. A request belongs to its bearer token (the
// token's SHA-256 is its owner in the pipeline; without tokens everyone is one owner):
// GET /v1/requests/{id} is its state (admitted, queued with position, or running with
// stage and step) and DELETE cancels it (the request ends with 499 within one denoising
// step), both only for that token (404 for another), and a client's own id is scoped to
// its token. A client that disconnects cancels its request the same way (its context
// ends). GET /v1/info is pipeline.Info.
//
// # KServe v2
//
// /v2 (server metadata), /v2/health/live and /ready, /v2/models/{assess,refine}
// (metadata, with a "parameters" extension: the parameter table rows the model takes and
// the work limits), /ready and /config (Triton's model configuration extension, which
// perf_analyzer reads first; tests/triton runs perf_analyzer against it), and POST
// /v2/models/{model}/infer, with Triton's binary
// tensor data extension (Inference-Header-Content-Length), so tritonclient works
// unchanged (tested with tritonclient.http by tools/pyclients.sh). Inputs: image
// (BYTES [1], an encoded PNG/JPEG/GIF, base64 in JSON data; or UINT8 [H,W,3]) and
// prompt (BYTES [1]); request parameters are pipeline.Params fields (Triton's own keys
// such as binary_data_output and timeout are not). Outputs: p, a, q (FP32 [1]; a is
// absent when there is no prompt), report (BYTES [1], the REST JSON) and, for refine,
// image (BYTES [1], PNG); binary when asked for per output or by binary_data_output.
// Errors have the protocol's {"error": "..."} shape. The refine model is absent (404)
// from an assess-only pipeline.
//
// # Limits and safety
//
// Config.MaxBody bounds bodies (413, also from Content-Length alone). An inference is
// admitted (pipeline.Admit: its parameters and prompt validated, its place among the
// slots and the queue taken) before its image is decoded: a full pipeline answers 429
// with Retry-After at once. The image is then decoded through the ticket: header first
// (size limits and the request's work, pipeline.WorkLimits), then the pixels within the
// pipeline's decode budget. A deadline passed while waiting is 429 too; Config.Timeout is
// each inference's deadline (504 once running). Config.WriteTimeout bounds each write of
// an answer (a client that never reads is dropped after it). With Config.Tokens every
// route but health, /metrics and /openapi.json needs "Authorization: Bearer <token>" (the
// scheme in any case; 401 otherwise); tokens are compared as SHA-256 digests with
// subtle.ConstantTimeCompare, all of them every time. LoadTokens reads a tokens file (a
// UTF-8 BOM and CRLF line ends are fine). TLS with Config.TLSCert and TLSKey. /debug/pprof only with Config.Pprof
// (behind the tokens). A handler's panic is a 500 with the request id, logged with
// its stack. The access log is one zerolog JSON line per request (request_id, method,
// path, status, bytes, ms, remote).
//
// # Metrics
//
// /metrics (client_golang, a registry per server) has Triton's names:
// nv_inference_request_success, nv_inference_request_failure (reason: the pipeline's
// status name, or "request"), nv_inference_count, nv_inference_request_duration_us,
// nv_inference_queue_duration_us, nv_inference_compute_infer_duration_us (cumulative
// microseconds, as Triton's) and nv_inference_pending_request_count, each with model
// and version labels; grefine_stage_duration_seconds (a histogram per model and stage:
// assess, stage1, stage2), grefine_http_requests_total (route, code), and the Go and
// process collectors. With Config.GPU (a *monitor.Monitor) each scrape samples NVML:
// nv_gpu_utilization (0-1), nv_gpu_memory_used_bytes, nv_gpu_memory_total_bytes,
// nv_gpu_power_usage (W) and nv_energy_consumption (J since start, the trapezoid
// integral of the power readings between scrapes). Without a GPU they are absent;
// `grefine serve` logs why.
//
// # Drain
//
// Serve runs until its context ends (SIGTERM or SIGINT in `grefine serve`). Then ready
// turns false (/v2/health/ready is 503, new inferences on open connections are 503),
// http.Server.Shutdown closes the listener and waits for the requests in flight; those
// still running after Config.DrainTimeout are cancelled with a clear error (503, "the
// server is shutting down and the drain timeout passed"), and get up to 30 s more for
// that answer to be written before their connections are closed. Serve returns nil after the
// drain and the command exits 0.
package server
