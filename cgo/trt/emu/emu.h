/*
 * emu.h: the ONNX Runtime executor of the TensorRT emulator (libgrefine_trt_emu.so).
 *
 * The emulator is cgo/trt/fake/fake_trt.c compiled with -DGRF_TRT_EMU plus ort_exec.c:
 * the fake's host-memory implementation of grefine_trt.h (handles, profiles, shapes,
 * addresses, scratch, destroy order, graph capture bookkeeping) with plans that name an
 * ONNX file, run here by ONNX Runtime's C API on the CPU. Internal to the emulator; not
 * part of the ABI and never included by Go.
 */
#ifndef GREFINE_TRT_EMU_H
#define GREFINE_TRT_EMU_H

#include <stddef.h>
#include <stdint.h>

#include "grefine_trt.h"

/* Most inputs, and most outputs, one model may have. */
#define EMU_MAX_IO 32

/* One tensor handed to or returned by the executor. data may be NULL in emu_run's outputs:
 * ONNX Runtime then allocates, the shape is written back and the data is dropped. */
typedef struct emu_tensor {
  const char *name;
  int32_t dtype; /* GRF_TRT_DTYPE_* */
  int32_t nb_dims;
  int64_t dims[GRF_TRT_MAX_DIMS];
  void *data;
} emu_tensor;

/* One I/O tensor of a model, as ONNX Runtime lists it (-1: dynamic dimension). */
typedef struct emu_io {
  char name[GRF_TRT_MAX_NAME];
  int32_t mode; /* GRF_TRT_MODE_* */
  int32_t dtype;
  int32_t nb_dims;
  int64_t dims[GRF_TRT_MAX_DIMS];
} emu_io;

typedef struct emu_model emu_model;

/* emu_version writes the ONNX Runtime version string ("1.30.0") after loading it. */
int32_t emu_ort_version(const char **version, char *err, size_t errlen);
/* emu_model_open creates an ONNX Runtime session for the file and lists up to max I/O
 * tensors (inputs first) into io, their count into *nio. */
int32_t emu_model_open(const char *onnx_path, emu_model **out, emu_io *io, int max, int *nio, char *err,
                       size_t errlen);
/* emu_model_close releases the session (NULL is fine). */
void emu_model_close(emu_model *m);
/* emu_run runs the model once: every input bound (host memory), outputs bound to host
 * memory of the right size or left NULL (see emu_tensor). Safe to call concurrently. */
int32_t emu_run(emu_model *m, const emu_tensor *in, int nin, emu_tensor *out, int nout, char *err, size_t errlen);

#endif /* GREFINE_TRT_EMU_H */
