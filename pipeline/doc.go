// Package pipeline is grefine's one loaded G-Refine: the request flow that every front
// end (the CLI, `grefine serve`, `grefine bench`, libgrefine) calls. Nothing else in the
// tree decodes, assesses, parses and refines in sequence; the front ends only marshal.
//
// # Opening
//
// Open(ctx, Config) verifies the model set once (SHA-256 through the hash cache), opens
// each engine once (CLIP-Surgery and the CLIP text encoder; with the refiner, the nine
// SDXL-Inpainting and PASD engines), and loads the prompt parser, the CLIP tokenizer and
// the text-feature cache. Config.Models is required: there is no fallback to the tiny
// test set. Info reports what was loaded (model set, tiny or real, backend and its
// version, device, slots, limits, default parameters). Close waits for the requests in
// flight and releases everything.
//
//	p, err := pipeline.Open(ctx, pipeline.Config{Models: "models/real"})
//	defer p.Close()
//	img, err := p.DecodeImage(pngBytes)
//	params := p.DefaultParams()
//	params.Seed = 7
//	res, err := p.Refine(ctx, pipeline.Request{Image: img, Prompt: "a red cat", Params: &params})
//	// res.Image is the refined image; res.Assessment the quality report.
//
// # Requests
//
// Assess and Refine take a decoded image (borrowed for the call), the prompt and
// per-request Params (seed, steps, strength bounds or fixed strengths, guidance,
// emphasis, the blend and paste switches, stage skips, thresholds, working sizes).
// ParamTable is the one description of those parameters: each row's JSON name, CLI flag,
// C field, type, range, default and the engine setting it feeds; the front ends are
// generated from it, Validate checks against it, and ParseParams and Params.Set read
// JSON objects and text values through it (strictly: unknown names, wrong types and
// repeated keys are refused).
//
// Validation happens once per request, at this edge, cheapest first and before any model
// work: parameters (NaN, ±Inf and out-of-range values are refused with the field's name),
// then the work the parameters cause (WorkLimits: a stage's scheduler schedule of about
// steps/strength timesteps, the denoising steps), the prompt's length and encoding, then
// the image's size and the work on it (the working pixels of each stage, the memory
// estimate). CheckWorkFor runs the same checks from a model set's manifest alone, for
// front ends that refuse before opening anything. Refine assesses the image itself,
// parsing the prompt once for both the alignment map and prompt emphasis, unless the
// request carries an Assessment.
//
// # Admission
//
// Admit takes a request's place before its image is decoded: the pipeline holds at most
// Config.Slots + Config.MaxQueue requests and refuses one more at once with ErrBusy. The
// returned Ticket decodes the image (header first: the size and the work are checked
// before any pixel is decoded) within Config.DecodeMemory, the memory all decodes in
// flight share, counted at their decoded size; Assess or Refine then run it
// (Request.Ticket). Requests without a ticket are admitted by the call itself. Request
// ids are scoped to an owner (Request.Owner, Admission.Owner): RequestFor and CancelFor
// find only the owner's own requests; generated ids are 128 random bits.
//
// Progress reaches Request.Observer as events: "queued" (with the position in line),
// "assess", then "stage1" and "stage2" with step and total. An observer that returns an
// error cancels the request.
//
// # Slots and concurrency
//
// A Pipeline is safe for concurrent use. Config.Slots requests run at once (default 1);
// the others wait in arrival order until their context's deadline (then ErrBusy), or fail
// at once with ErrBusy when Config.MaxQueue are already waiting (see Admission). The engines are opened
// once and shared by the slots (ONNX Runtime sessions run concurrently); a slot is the
// right to run, plus what one request needs on its device. Every request has an id;
// Cancel(id) ends it (queued or running) within one denoising step, and Request(id)
// reports its state. Concurrent requests' text-encoder calls of the same sequence length
// can be merged into one engine call (Config.TextBatch); the result is the same.
//
// # Devices
//
// Config.Device "cuda" runs the map fusion with the CUDA kernel and gives every slot a
// CUDA stream on which the denoising loops' non-network work runs (engine/cuda.Ops); the
// networks stay on ONNX Runtime on the CPU until the GPU backends land, so each step
// copies across explicitly and Refinement.Copies counts those copies.
//
// # Errors
//
// Every error wraps one sentinel: ErrInput, ErrBusy, ErrUnavailable, ErrCanceled or
// ErrInternal. StatusOf classifies an error; Status.ExitCode, Status.HTTPStatus and the
// numeric Status (libgrefine's grefine_status) are the one table the front ends share.
//
// # Reproducibility
//
// The same image, prompt, Params and seed give the same bytes, whether the request runs
// alone or beside others (tested under -race).
package pipeline
