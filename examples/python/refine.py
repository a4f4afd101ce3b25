#!/usr/bin/env python3
"""refine.py: G-Refine one image through libgrefine with ctypes (standard library only).

    refine.py MODELS IMAGE PROMPT OUTDIR [SEED [STEPS1 STEPS2]]

Writes OUTDIR/refined.png (the same bytes as `grefine refine` for the same inputs and seed)
and OUTDIR/report.json (the pipeline's report). The library is found through $GREFINE_LIB,
else build/prefix/lib/libgrefine.so.1 of the source tree, else the loader's search path.
The structs below mirror include/grefine.h (ABI 1); the script checks their sizes against
the library's struct_size fields before trusting them.
"""
import ctypes as C
import os
import sys

ABI = 1


class Options(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("models", C.c_char_p), ("backend", C.c_char_p),
                ("backend_lib", C.c_char_p), ("device", C.c_char_p), ("hash_cache", C.c_char_p),
                ("threads", C.c_int), ("slots", C.c_int), ("max_queue", C.c_int), ("assess_only", C.c_int),
                ("log_level", C.c_int), ("log", C.c_void_p), ("log_user", C.c_void_p)]


class Image(C.Structure):
    _fields_ = [("width", C.c_int), ("height", C.c_int), ("stride", C.c_int), ("rgb", C.POINTER(C.c_uint8))]


PROGRESS = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_char_p, C.c_int, C.c_int)


class Params(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("seed", C.c_uint64), ("steps1", C.c_int), ("steps2", C.c_int),
                ("strength_max", C.c_double), ("strength_min", C.c_double), ("strength1", C.c_double),
                ("strength2", C.c_double), ("guidance1", C.c_double), ("guidance2", C.c_double),
                ("emphasis", C.c_double), ("masked_blend", C.c_int), ("paste_pixels", C.c_int),
                ("skip_stage1", C.c_int), ("skip_stage2", C.c_int), ("long_side", C.c_int),
                ("process_size", C.c_int), ("perceptual_bound", C.c_double), ("perceptual_gate", C.c_double),
                ("align_bound", C.c_double), ("dilate", C.c_int), ("request_id", C.c_char_p),
                ("timeout_ms", C.c_int64), ("progress", PROGRESS), ("progress_user", C.c_void_p),
                # large images (appended after the first release's fields)
                ("tile", C.c_int), ("tile_overlap", C.c_int), ("tile_batch", C.c_int), ("vae_tile", C.c_int),
                ("vae_tile_overlap", C.c_double), ("crop", C.c_int), ("crop_padding", C.c_int)]


class Refinement(C.Structure):
    _fields_ = [("struct_size", C.c_size_t), ("request_id", C.c_char_p), ("assessment", C.c_void_p),
                ("image", Image), ("stage1_ran", C.c_int), ("stage2_ran", C.c_int),
                ("stage1_strength", C.c_double), ("stage2_strength", C.c_double),
                ("report_json", C.c_char_p), ("pipeline_ms", C.c_double)]


def load():
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.environ.get("GREFINE_LIB"), os.path.join(here, "..", "..", "build", "prefix", "lib", "libgrefine.so.1")):
        if path and os.path.exists(path):
            return C.CDLL(path)
    return C.CDLL("libgrefine.so.1")


def declare(lib):
    st, buf = C.c_int, C.c_char_p
    lib.grefine_abi_version.restype = C.c_int
    lib.grefine_status_string.restype = C.c_char_p
    lib.grefine_status_string.argtypes = [C.c_int]
    lib.grefine_options_init.argtypes = [C.POINTER(Options)]
    lib.grefine_params_init_sized.argtypes = [C.POINTER(Params), C.c_size_t]
    lib.grefine_open.restype = st
    lib.grefine_open.argtypes = [C.POINTER(Options), C.POINTER(C.c_void_p), buf, C.c_size_t]
    lib.grefine_close.argtypes = [C.c_void_p]
    lib.grefine_image_decode.restype = st
    lib.grefine_image_decode.argtypes = [C.c_void_p, C.c_char_p, C.c_size_t, C.POINTER(C.POINTER(Image)), buf, C.c_size_t]
    lib.grefine_image_free.argtypes = [C.POINTER(Image)]
    lib.grefine_refine.restype = st
    lib.grefine_refine.argtypes = [C.c_void_p, C.POINTER(Image), C.c_char_p, C.POINTER(Params),
                                   C.POINTER(C.POINTER(Refinement)), buf, C.c_size_t]
    lib.grefine_refinement_free.argtypes = [C.POINTER(Refinement)]
    lib.grefine_encode_png.restype = st
    lib.grefine_encode_png.argtypes = [C.POINTER(Image), C.POINTER(C.POINTER(C.c_uint8)), C.POINTER(C.c_size_t), buf, C.c_size_t]
    lib.grefine_free.argtypes = [C.c_void_p]


class GrefineError(Exception):
    def __init__(self, lib, status, err):
        super().__init__("%s: %s" % (lib.grefine_status_string(status).decode(), err.value.decode()))
        self.status = status


def main(argv):
    if len(argv) not in (5, 6, 8):
        print("usage: refine.py MODELS IMAGE PROMPT OUTDIR [SEED [STEPS1 STEPS2]]", file=sys.stderr)
        return 2
    models, image_path, prompt, out = argv[1:5]
    lib = load()
    declare(lib)
    if lib.grefine_abi_version() != ABI:
        print("refine.py: libgrefine ABI %d, this script %d" % (lib.grefine_abi_version(), ABI), file=sys.stderr)
        return 1
    err = C.create_string_buffer(1024)

    def check(status):
        if status != 0:
            raise GrefineError(lib, status, err)

    opts = Options()
    lib.grefine_options_init(C.byref(opts))
    params = Params()
    lib.grefine_params_init_sized(C.byref(params), C.sizeof(Params))  # grefine.h's grefine_params_init macro
    if opts.struct_size != C.sizeof(Options) or params.struct_size != C.sizeof(Params):
        print("refine.py: struct layout differs from the library's", file=sys.stderr)
        return 1
    opts.models = models.encode()
    if len(argv) >= 6:
        params.seed = int(argv[5])
    if len(argv) == 8:
        params.steps1, params.steps2 = int(argv[6]), int(argv[7])

    @PROGRESS
    def progress(_user, stage, step, total):
        if stage in (b"stage1", b"stage2"):
            print("%s %d/%d" % (stage.decode(), step, total), file=sys.stderr)
        return 0

    params.progress = progress
    with open(image_path, "rb") as f:
        data = f.read()
    pipeline, img, res = C.c_void_p(), C.POINTER(Image)(), C.POINTER(Refinement)()
    png, n = C.POINTER(C.c_uint8)(), C.c_size_t()
    try:
        check(lib.grefine_open(C.byref(opts), C.byref(pipeline), err, len(err)))
        check(lib.grefine_image_decode(pipeline, data, len(data), C.byref(img), err, len(err)))
        check(lib.grefine_refine(pipeline, img, prompt.encode(), C.byref(params), C.byref(res), err, len(err)))
        r = res.contents
        if r.struct_size != C.sizeof(Refinement):
            raise RuntimeError("grefine_refinement layout differs from the library's")
        check(lib.grefine_encode_png(C.byref(r.image), C.byref(png), C.byref(n), err, len(err)))
        with open(os.path.join(out, "refined.png"), "wb") as f:
            f.write(C.string_at(png, n.value))
        with open(os.path.join(out, "report.json"), "wb") as f:
            f.write(r.report_json)
        print("stage1 %s (strength %.3f), stage2 %s (strength %.3f) -> %s" % (
            "ran" if r.stage1_ran else "skipped", r.stage1_strength,
            "ran" if r.stage2_ran else "skipped", r.stage2_strength, os.path.join(out, "refined.png")))
    except GrefineError as e:
        print("refine.py: %s" % e, file=sys.stderr)
        return 1
    finally:
        lib.grefine_free(png)
        lib.grefine_refinement_free(res)
        lib.grefine_image_free(img)
        lib.grefine_close(pipeline)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
