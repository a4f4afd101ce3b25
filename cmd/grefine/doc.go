// Command grefine is the G-Refine engine's command-line interface.
//
//	grefine --models DIR [global flags] COMMAND [flags]
//
// Commands: doctor (what this machine can run), parse (a prompt's parts, nouns and
// ancestors), assess (PQ/AQ quality maps and scores), refine (the two-stage refiner),
// plans build (TensorRT plans for a model set), serve (the HTTP server of package
// server: REST, KServe v2, metrics; on SIGINT/SIGTERM it drains and exits 0),
// triton-repo (a Triton Inference Server model repository for the grefine backend,
// package triton). Global
// flags (also accepted after the command name) choose the model set (--models, required: no fallback to the tiny test
// set), the backend and device, and logging. The commands only marshal: the request flow
// is package pipeline's. Cheap checks (flags, parameters, the image, --out) come before any
// model loads; outputs are staged inside --out and moved into place at the end. Exit
// statuses come from the pipeline's one table (README, Exit status); SIGINT/SIGTERM exit
// 130 within a second with nothing written, a second signal at once.
package main
