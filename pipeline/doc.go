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
// A Pipeline is safe for concurrent use. Config.Slots requests run at once (default 1;
// on each GPU with Config.GPUs);
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
// Config.Device names a device of the registry (engine.NewDevice): "cpu" (default, pure
// Go), "cuda" (libgrefine_cuda.so's kernels on a GPU; the emulator when $GRF_CUDA_LIB names
// libgrefine_cuda_emu.so) or "cuda-emu" (the emulator). The program links the devices it
// offers by importing their packages (the front ends import engine/cpu and engine/cuda);
// this package imports neither, nor TensorRT: the trt backend's plan repository comes
// from Config.PlanOpener. Every slot gets a stream of the device, and a request runs on
// its slot's stream end to end:
//
//   - the image is uploaded once (uint8); the CLIP preprocessing (Pillow-exact resize,
//     normalisation), the CLIP-Surgery tokens, the PQ softmax, the map fusion (P and the
//     perceptual mask), the text features (token ids up, ensemble on the device), the
//     alignment map A, the masks and their union stay on the device;
//   - the host reads back the CLS token with p and the four PQ dimensions (one copy), the
//     texts' features when they are not cached (one copy), the mask's pixel count (one
//     copy) and, unless Request.SkipMaps, the maps (one copy);
//   - Refine keeps the repair mask on the device; each stage resizes and converts the
//     image, encodes the prompt (token ids up; emphasis and the SDXL concatenation on the
//     device), encodes with the VAE, adds the seeded noise (generated on the host, uploaded
//     once per stage with the timesteps and time ids), runs its denoising loop, decodes,
//     colour-fixes, pastes and resizes back on the device; the host reads back the refined
//     image (one copy).
//
// Inside a denoising step nothing crosses: the UNet input is assembled on the device, the
// timestep is copied from the uploaded table into the UNet's bound input on the device,
// the UNet runs into its bound output (engine.RunInto; on TensorRT a stage captures its
// first step as a CUDA graph and replays it), and CFG + scheduler step + blending is one
// op. Transfers in the Assessment and the Refinement (and the JSON report, "transfers")
// count the request's copies (count and bytes, each way) and host syncs on its stream, its
// steps, the copies and syncs inside them, and the graph replays. On the emulated GPU pair
// (trt on cuda-emu) a tiny-set refine of 10 + 10 steps makes 0 copies and 0 syncs inside
// its steps, and 7 uploads, 4 downloads and 4 syncs in all (features not cached; the
// README states them; TestDevicePairCountsCopies checks them).
//
// The engines must read the device's tensors: trt engines read "cuda" tensors and
// enqueue on the slot's stream; ort engines read host tensors, so with a GPU device each is
// wrapped by engine.OnDevice, whose copies (every input down, every output up, per run)
// are counted in the same Transfers, and with the ort backend a GPU device also runs the
// networks on ONNX Runtime's CUDA execution provider. Any other pairing is refused with
// ErrUnavailable. Engines are opened once and shared by the slots where the backend
// allows it (ONNX Runtime), else once per slot (TensorRT execution contexts). The
// text-feature LRU cache is shared by the slots and lives in host memory (features come
// back in one small copy and go up in one); the template-prefix table (clip_text_kv) and
// the constants (pq_text, R) live on the device, written once at Open and synchronised
// before any slot reads them. clip_text_kv is used only on the cpu device pairing
// (behind OnDevice its prefix table would be copied at every call).
//
// # Several GPUs
//
// Config.GPUs (serve and bench --gpus 0,1; ParseGPUs reads the list) serves several GPUs
// from one pipeline. Each GPU is a group: its own device (the registry's Device with
// option ordinal), its own backend (built from Backend and BackendOptions with the GPU's
// index: trt's device, ort's device_id on cuda; so one BackendInstance cannot serve
// several GPUs), its own engines (TensorRT: the plan repository verifies each plan for
// that GPU, and each slot has its own execution contexts; ONNX Runtime: one set of
// sessions per GPU), its own constants, prefix table and text-feature cache (written by
// the GPU's first slot), and Config.Slots slots, each with a stream of that GPU. A slot's
// request never leaves its GPU: every allocation, copy, kernel and engine run names the
// slot's device, and every native call makes that device current for itself (engine/cuda
// and the TensorRT shim), so nothing depends on the calling thread's current device.
// engine/trt refuses a slot whose stream is on another GPU than its backend's, and a
// tensor of another GPU (trt.GPUTensor), before anything is enqueued.
//
// All the slots of all the GPUs share one line (the queue, admission, ownership, cancel,
// progress and deadlines are as with one device). A free slot goes to the GPU with the
// fewest busy slots, ties going round the GPUs, so serial requests alternate and concurrent
// ones spread; within a GPU the slot freed last runs next. Info.GPUs lists the GPUs with
// their slots (Info.Slots counts all), GPULoad says what each is doing and has run, and a
// request's Transfers.GPU (and RequestState.GPU while it runs) names its GPU. The GPU
// indices are checked before any model work: a repeated or negative index, too many slots
// in all (MaxSlots), GPUs on the cpu device are ErrInput; an index the machine does not
// have is ErrUnavailable from the device ("device 2 requested, 2 present"). Results do not
// depend on the GPU: the same request gives the same bytes on any of them (tested on two
// emulated GPUs, serial and concurrent).
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
