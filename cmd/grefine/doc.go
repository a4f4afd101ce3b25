// Command grefine is the G-Refine engine's command-line interface.
//
//	grefine [global flags] COMMAND [flags]
//
// Commands: doctor (what this machine can run), parse (a prompt's parts, nouns and
// ancestors), assess (PQ/AQ quality maps and scores), refine (the two-stage refiner),
// plans build (TensorRT plans for a model set), demo (the whole pipeline on the bundled
// sample). Global flags choose the model set (--models), the backend (--backend ort|trt),
// and logging (--log-level, --log-format console|json). Logs go to stderr; results to
// stdout or the --out directory.
package main
