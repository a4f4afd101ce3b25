/*
 * grefine.h — libgrefine, the C API of grefine (G-Refine: a quality refiner for
 * text-to-image output).
 *
 * This header is the product's contract. It is hand-written (never the cgo-generated
 * header), C99, and versioned: GREFINE_ABI_VERSION changes whenever a struct or a
 * signature changes incompatibly, and grefine_abi_version() returns the value the library
 * was built with. Structs that may grow start with `size_t struct_size`: set it with the
 * matching *_init function (or to sizeof the struct) before passing the struct in; the
 * library sets it in the structs it returns. Fields are only ever appended.
 *
 * Build (pkg-config):   cc app.c $(pkg-config --cflags --libs grefine)
 * Build (CMake):        find_package(grefine REQUIRED)
 *                       target_link_libraries(app PRIVATE grefine::grefine)
 *
 * CALLS AND ERRORS
 *   Every call that can fail returns a grefine_status and writes a one-line message into
 *   the caller's buffer `err` of `errlen` bytes in the same call (truncated, always
 *   NUL-terminated; the empty string on success). `err` may be NULL (errlen is then
 *   ignored). There is no thread-local "last error". On failure every out-parameter is set
 *   to NULL.
 *
 * OWNERSHIP
 *   "borrowed": the caller owns the memory; the library reads it during the call only and
 *   keeps no pointer to it after the call returns.
 *   "library-owned": allocated by the library with C malloc; free it with the named
 *   grefine_*_free function (never with free(), never partially).
 *
 * THREADING
 *   A grefine_pipeline is safe for concurrent use from many threads: grefine_assess and
 *   grefine_refine run on the pipeline's slots (grefine_options.slots at once, the others
 *   wait in arrival order). grefine_cancel is safe from any thread, including from inside a
 *   progress callback. Callbacks (progress, log) run on a thread of the library's choosing,
 *   possibly not the caller's, and must not throw C++ exceptions or longjmp out.
 *   grefine_close may race with other calls on the same pipeline: the calls already under
 *   way finish (grefine_close waits for them), later ones get GREFINE_ERR_UNAVAILABLE.
 *
 * THE GO RUNTIME (libgrefine is written in Go; these rules are Go's, not grefine's)
 *   - One Go runtime per process: do not load libgrefine into a Go program, and do not
 *     load a second Go shared library (or a second copy of libgrefine) in the same
 *     process. Two Go runtimes in one process crash (golang/go#18976, #65050).
 *   - Never dlclose libgrefine: a Go runtime cannot be unloaded (golang/go#11100).
 *   - Signals: when the library loads, the Go runtime installs handlers for the
 *     synchronous signals (SIGSEGV, SIGBUS, SIGFPE) and SIGPIPE, not for asynchronous ones
 *     such as SIGINT. It keeps the handlers installed before and forwards to them the
 *     signals that arrive while non-Go code runs. Host signal handlers must use SA_ONSTACK
 *     (a signal may arrive on a Go thread's small stack). A handler for those signals that
 *     is installed after the library loaded replaces Go's and must chain to it
 *     (golang/go#11794, #14899, #62337).
 *   - Do not fork() without exec() once the library is loaded: the child has one thread
 *     and a Go runtime that expects several.
 *   - No Go memory outlives a call: every pointer the library returns is C memory.
 *   - No Go panic crosses the boundary: a panic on the calling thread becomes
 *     GREFINE_ERR_INTERNAL with the panic's message.
 *
 * Ownership of every pointer is stated beside it below.
 */
#ifndef GREFINE_H
#define GREFINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes; compare with grefine_abi_version() at start-up. */
#define GREFINE_ABI_VERSION 1

#if defined(__GNUC__) || defined(__clang__)
#define GREFINE_API __attribute__((visibility("default")))
#else
#define GREFINE_API
#endif

/* Outcome of a call. The values equal the Go pipeline's Status (the one table that also
 * gives the CLI's exit codes and the server's HTTP codes). */
typedef enum grefine_status {
  GREFINE_OK = 0,
  GREFINE_ERR_INPUT = 1,       /* bad argument, image, prompt or parameter; retrying unchanged fails */
  GREFINE_ERR_BUSY = 2,        /* no slot became free before the deadline, or the queue is full */
  GREFINE_ERR_UNAVAILABLE = 3, /* model set, ONNX Runtime, GPU or the refiner missing; pipeline closed */
  GREFINE_ERR_CANCELED = 4,    /* grefine_cancel, a progress callback, or timeout_ms passed while running */
  GREFINE_ERR_INTERNAL = 5     /* a bug or an engine failure (a Go panic included); the message says which */
} grefine_status;

/* Log levels of grefine_options.log. */
enum {
  GREFINE_LOG_DEBUG = 0,
  GREFINE_LOG_INFO = 1,
  GREFINE_LOG_WARN = 2,
  GREFINE_LOG_ERROR = 3
};

/* Log callback: `message` is one log record as a JSON object (zerolog's format, no
 * trailing newline), borrowed for the duration of the callback. Called from any thread,
 * possibly from several at once, during grefine_open and every request. */
typedef void (*grefine_log_fn)(void *user, int level, const char *message);

/* The opaque loaded pipeline: model set verified once, every engine opened once. */
typedef struct grefine_pipeline grefine_pipeline;

/* What grefine_open needs. Initialise with grefine_options_init. Every string is
 * borrowed for the grefine_open call only. */
typedef struct grefine_options {
  size_t struct_size;      /* sizeof(grefine_options); set by grefine_options_init */
  const char *models;      /* model-set directory (models.json); required */
  const char *backend;     /* "ort" (NULL or "": ort) */
  const char *backend_lib; /* ONNX Runtime library path (NULL: $ONNXRUNTIME_SHARED_LIBRARY_PATH,
                              else .deps/ort/libonnxruntime.so.1 near the working directory or
                              the executable) */
  const char *device;      /* "cpu" or "cuda" (NULL or "": cpu) */
  const char *hash_cache;  /* file remembering verified model hashes (NULL: hash every file) */
  int threads;             /* intra-op threads per engine (0: the backend's default) */
  int slots;               /* requests that run at once (default 1) */
  int max_queue;           /* requests that may wait for a slot (0: unbounded); more: BUSY */
  int assess_only;         /* non-zero: load only the quality engines (grefine_refine: UNAVAILABLE) */
  int log_level;           /* least level passed to `log` (default GREFINE_LOG_WARN) */
  grefine_log_fn log;      /* NULL: no logs */
  void *log_user;          /* passed to `log`; must stay valid until grefine_close returns */
} grefine_options;

/* Interleaved RGB8 pixels, row-major: pixel (x, y) is rgb[y*stride + 3*x + {0,1,2}].
 * As an argument, the struct and its pixels are borrowed for the call only. */
typedef struct grefine_image {
  int width, height; /* >= 1 each (the pipeline needs at least 64 on each side) */
  int stride;        /* bytes per row, >= 3*width */
  const uint8_t *rgb;
} grefine_image;

/* Progress callback: stage is "queued" (step = position in the line, 1 = next; total 0),
 * "assess" (0, 0), "stage1" or "stage2" (step of total denoising steps done; step 0 when
 * the stage starts). `stage` is borrowed for the duration of the callback. A non-zero
 * return cancels the call, which then returns GREFINE_ERR_CANCELED. */
typedef int (*grefine_progress_fn)(void *user, const char *stage, int step, int total);

/* Use for long_side, process_size, tile and vae_tile: the pipeline's default for its model
 * set. */
#define GREFINE_SIZE_DEFAULT (-1)

/* Per-request settings. Initialise with grefine_params_init (the defaults of DESIGN), then
 * change fields. Passing NULL instead of a grefine_params means the defaults. Borrowed for
 * the call only; out-of-range values give GREFINE_ERR_INPUT naming the field. Each
 * parameter's comment starts with its range, as the parameter table (`grefine params`)
 * writes it (a test keeps them equal); booleans are ints, non-zero for true. */
typedef struct grefine_params {
  size_t struct_size;      /* sizeof(grefine_params); set by grefine_params_init */
  uint64_t seed;           /* [0, 2^64-1]: noise seed; same image, prompt, params and seed: same bytes */
  int steps1;              /* [1, 1000]: denoising steps that run in stage 1 */
  int steps2;              /* [1, 1000]: denoising steps that run in stage 2 */
  double strength_max;     /* (0, 1]: stage-1 strength s1 = max - (max - min)*q, at q = 0 */
  double strength_min;     /* (0, 1]: ... at q = 1 (at most strength_max) */
  double strength1;        /* [0, 1]: > 0: a fixed stage-1 strength instead; 0: quality-driven */
  double strength2;        /* (0, 1]: stage-2 strength */
  double guidance1;        /* [0, 100]: classifier-free guidance of stage 1 */
  double guidance2;        /* [0, 100]: classifier-free guidance of stage 2 */
  double emphasis;         /* (0, 10]: prompt weight of defective parts */
  int masked_blend;        /* boolean: reset latents outside the mask after each stage-1 step */
  int paste_pixels;        /* boolean: take the pixels outside the mask from the input */
  int skip_stage1;         /* boolean: do not run stage 1 */
  int skip_stage2;         /* boolean: do not run stage 2 */
  int long_side;           /* a multiple of 8 in [64, 4096]: stage-1 working long side
                              (GREFINE_SIZE_DEFAULT: 1024; 256 with a tiny model set) */
  int process_size;        /* 0 (off) or [64, 4096]: stage-2 minimum short side
                              (GREFINE_SIZE_DEFAULT: 768; off with a tiny model set) */
  double perceptual_bound; /* [0, 1]: P below this is a perceptual defect */
  double perceptual_gate;  /* [0, 1]: ... and the raw cask map below this too */
  double align_bound;      /* [0, 1]: A above this is an alignment defect */
  int dilate;              /* [0, 64]: mask dilation radius in pixels */
  const char *request_id;  /* names the call for grefine_cancel (at most 128 bytes; must not be
                              in flight already). NULL or "": a generated id, reported in the
                              result. Borrowed. */
  int64_t timeout_ms;      /* > 0: deadline of the call; passed while waiting for a slot: BUSY,
                              while running: CANCELED. 0: none */
  grefine_progress_fn progress; /* NULL: no progress */
  void *progress_user;     /* passed to `progress`; borrowed */
  /* Large images (README, Large images); added after progress_user, so a struct_size that
   * ends before them keeps their defaults. */
  int tile;                /* [8, 512]: denoising tile in latent pixels; a larger latent is
                              denoised in overlapping tiles (GREFINE_SIZE_DEFAULT: 128; 64 with
                              a tiny model set) */
  int tile_overlap;        /* [0, 256]: latent pixels neighbouring tiles share (at most half the tile) */
  int tile_batch;          /* 0 (as memory allows) or [1, 64]: denoising tiles per UNet call */
  int vae_tile;            /* a multiple of 8 in [64, 4096]: VAE tile in pixels (GREFINE_SIZE_DEFAULT:
                              1024; 512 with a tiny model set) */
  double vae_tile_overlap; /* [0, 0.5]: share of a VAE tile its neighbours overlap (must line up
                              with the latent grid: a multiple of 32 with 0.25) */
  int crop;                /* boolean: stage 1 repairs the padded box around the mask when that
                              gains resolution */
  int crop_padding;        /* [0, 4096]: pixels of context around the mask's box */
} grefine_params;

/* Defect kinds of a prompt part. */
typedef enum grefine_defect {
  GREFINE_DEFECT_NONE = 0,
  GREFINE_DEFECT_MISSING = 1,  /* the object is not in the image */
  GREFINE_DEFECT_ATTRIBUTE = 2 /* the object is there, its attributes are not */
} grefine_defect;

/* One part of the parsed prompt. Element of grefine_assessment.parts (an array: this
 * struct does not grow within an ABI version). */
typedef struct grefine_part {
  char *text;          /* part text, stopwords removed; library-owned (with the assessment) */
  char *noun;          /* head noun, "" if none; library-owned (with the assessment) */
  int ancestor;        /* index of the ancestor part, -1 if none */
  float noun_score;    /* a_pn (0 when noun is ""; the report has null) */
  float phrase_score;  /* a_ph */
  grefine_defect defect;
  int map_from;        /* part whose map was merged into A, -1 if none */
} grefine_part;

/* The quality report of one image. Library-owned: free with grefine_assessment_free.
 * Maps are row-major height x width floats at the image's size. */
typedef struct grefine_assessment {
  size_t struct_size;   /* sizeof the library's struct */
  char *request_id;     /* the call's id */
  int width, height;
  float p;              /* perceptual quality in [0, 1] */
  float a;              /* alignment quality (0 when has_a is 0) */
  int has_a;            /* 0: alignment skipped (empty prompt) */
  float q;              /* fused quality */
  float technical, rationality, naturalness, overall; /* the four perceptual scores at CLS */
  float mask_fraction;  /* share of pixels in the repair mask */
  size_t n_parts;
  grefine_part *parts;  /* n_parts elements (NULL when 0) */
  float *p_map;         /* perceptual map P */
  float *a_map;         /* alignment map A (NULL when has_a is 0) */
  float *mask;          /* repair mask (1 = repair): union of the two below */
  float *perceptual_mask;
  float *align_mask;    /* NULL when has_a is 0 */
  char *report_json;    /* the full report as one JSON object (the pipeline's report, as the
                           CLI's report.json without its file-only fields) */
  double pipeline_ms;   /* wall time inside the pipeline for this call (queue included) */
} grefine_assessment;

/* The outcome of grefine_refine. Library-owned: free with grefine_refinement_free (which
 * frees `assessment` and the image too). */
typedef struct grefine_refinement {
  size_t struct_size;   /* sizeof the library's struct */
  char *request_id;     /* the call's id */
  grefine_assessment *assessment; /* the assessment refine ran on; owned by the refinement */
  grefine_image image;  /* the refined image at the input's size, stride 3*width;
                           image.rgb is owned by the refinement */
  int stage1_ran, stage2_ran;
  double stage1_strength, stage2_strength;
  char *report_json;    /* the full report (assessment, stage decisions, timings) as JSON */
  double pipeline_ms;   /* wall time inside the pipeline for this call (queue included) */
} grefine_refinement;

/* Version string of the library ("dev" or a git description). Static; never free. */
GREFINE_API const char *grefine_version(void);

/* The GREFINE_ABI_VERSION the library was built with. */
GREFINE_API int grefine_abi_version(void);

/* Lowercase name of a status ("ok", "input", ...). Static; never free. */
GREFINE_API const char *grefine_status_string(grefine_status status);

/* Fills *opts with the defaults (struct_size, slots 1, log level WARN, the rest 0/NULL).
 * NULL: nothing. */
GREFINE_API void grefine_options_init(grefine_options *opts);

/* Fills the first `size` bytes of *params with the defaults (DESIGN's constants, sizes
 * GREFINE_SIZE_DEFAULT, no request id, no callback) and sets struct_size to `size`: pass
 * sizeof your grefine_params. A size past this library's struct counts as its size; a size
 * that ends before `tile` (the first release's struct) writes only struct_size (when it
 * fits), and every call then refuses the struct naming its size. NULL: nothing. */
GREFINE_API void grefine_params_init_sized(grefine_params *params, size_t size);

/* The first release's initialiser: fills the struct as it was then (up to progress_user;
 * the fields after it keep their defaults in every call). A program built against this
 * header calls grefine_params_init_sized through the macro below; the symbol stays for
 * programs built against the first header and for FFI callers. NULL: nothing. */
GREFINE_API void grefine_params_init(grefine_params *params);
#define grefine_params_init(params) grefine_params_init_sized((params), sizeof *(params))

/* Loads the pipeline: verifies the model set, opens every engine. *pipeline receives a
 * handle to close with grefine_close: an opaque value, never a pointer to memory.
 * Missing models: GREFINE_ERR_UNAVAILABLE. */
GREFINE_API grefine_status grefine_open(const grefine_options *opts, grefine_pipeline **pipeline,
                                        char *err, size_t errlen);

/* Waits for the calls in flight and releases everything; GREFINE_OK (also for NULL).
 * The handle is invalid afterwards: every later call with it (a second grefine_close
 * included) returns GREFINE_ERR_UNAVAILABLE ("the pipeline was closed"), grefine_cancel
 * returns 0; a value that was never a handle gives GREFINE_ERR_INPUT. Neither crashes. */
GREFINE_API grefine_status grefine_close(grefine_pipeline *pipeline);

/* Writes a JSON description of the pipeline (version, model set, backend, device, slots,
 * limits, defaults) into *json: library-owned, free with grefine_free. */
GREFINE_API grefine_status grefine_info(grefine_pipeline *pipeline, char **json, char *err, size_t errlen);

/* Assesses one image. prompt: UTF-8, borrowed (NULL or "": alignment skipped). params:
 * NULL for the defaults. *assessment: library-owned, free with grefine_assessment_free. */
GREFINE_API grefine_status grefine_assess(grefine_pipeline *pipeline, const grefine_image *image,
                                          const char *prompt, const grefine_params *params,
                                          grefine_assessment **assessment, char *err, size_t errlen);

/* Assesses the image, repairs the defect mask (stage 1) and polishes the whole image
 * (stage 2). *refinement: library-owned, free with grefine_refinement_free. */
GREFINE_API grefine_status grefine_refine(grefine_pipeline *pipeline, const grefine_image *image,
                                          const char *prompt, const grefine_params *params,
                                          grefine_refinement **refinement, char *err, size_t errlen);

/* Cancels the call in flight (waiting or running) whose grefine_params.request_id is
 * request_id; it returns GREFINE_ERR_CANCELED within one denoising step. Returns 1 if
 * such a call was in flight, 0 otherwise (or for NULL arguments). Safe from any thread. */
GREFINE_API int grefine_cancel(grefine_pipeline *pipeline, const char *request_id);

/* Decodes an encoded image (PNG, JPEG, GIF; data borrowed) within the pipeline's limits.
 * *image: library-owned, stride 3*width, free with grefine_image_free. */
GREFINE_API grefine_status grefine_image_decode(grefine_pipeline *pipeline, const uint8_t *data, size_t len,
                                                grefine_image **image, char *err, size_t errlen);

/* Encodes an image (borrowed) as PNG with the encoder the CLI and the server use (same
 * bytes). *png (library-owned, free with grefine_free) receives *len bytes. */
GREFINE_API grefine_status grefine_encode_png(const grefine_image *image, uint8_t **png, size_t *len,
                                              char *err, size_t errlen);

/* THE FREE FUNCTIONS return GREFINE_OK (also for NULL), or GREFINE_ERR_INPUT and free
 * nothing when the pointer is not a live result of that kind from this library: freed
 * already (a double free), never returned by it, or owned by another result (the
 * assessment inside a refinement). Freed structs are kept from reuse for the next 4096
 * frees, so a double free within them is always recognised; a buffer of grefine_free is
 * released at once, so a stale pointer to it can be mistaken for a newer buffer that
 * malloc placed at the same address. */

/* Frees what grefine_assess returned. */
GREFINE_API grefine_status grefine_assessment_free(grefine_assessment *assessment);

/* Frees what grefine_refine returned, its assessment and image included. */
GREFINE_API grefine_status grefine_refinement_free(grefine_refinement *refinement);

/* Frees what grefine_image_decode returned. */
GREFINE_API grefine_status grefine_image_free(grefine_image *image);

/* Frees a buffer from grefine_info or grefine_encode_png. */
GREFINE_API grefine_status grefine_free(void *ptr);

#ifdef __cplusplus
}
#endif

#endif /* GREFINE_H */
