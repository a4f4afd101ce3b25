// Command grefine is the G-Refine engine's command-line interface.
//
//	grefine --models DIR [global flags] COMMAND [flags]
//
// Commands: doctor (what this machine can run), parse (a prompt's parts, nouns and
// ancestors), assess (PQ/AQ quality maps and scores), refine (the two-stage refiner),
// plans build (TensorRT plans for a model set), bench (the throughput harness), serve
// (the HTTP server of package server: REST, KServe v2, metrics), params (the request
// parameters: pipeline.ParamTable, from which the assess and refine flags are made),
// triton-repo (a Triton Inference Server model repository for the grefine backend,
// package triton).
// Global flags (also accepted after the command name) choose the model set (--models,
// required: no fallback to the tiny test set), the backend and device, and logging. The
// commands only marshal: the request flow is package pipeline's. Cheap checks (flags,
// parameters, the image's header and the request's work, --out) come before any model
// loads; outputs are staged inside --out and moved into place at the end, and a run
// replaces or removes only files that --out/.grefine-manifest.json records as grefine's
// (outdir.go). Exit statuses come from the pipeline's one table (README, Exit status).
// SIGINT/SIGTERM: one-shot commands exit 130 within a second with nothing written;
// serve drains (--drain-timeout, then cancels) and exits 0 once every request has
// answered; a second signal exits at once.
package main
