/*
 * grefine_cuda_loader.h: the Go side's view of libgrefine_cuda.so (engine/cuda/lib.go).
 *
 * engine/cuda does not link the kernel library: it dlopens it at run time, so the Go binary
 * builds and runs without CUDA. Each grf_go_* wrapper (defined in engine/cuda/lib.go's cgo
 * preamble) selects device dev and forwards to its grf_* namesake of grefine_cuda.h with the
 * same status codes and error buffer.
 */
#ifndef GREFINE_CUDA_LOADER_H
#define GREFINE_CUDA_LOADER_H

#include "grefine_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

int grf_go_versions(int* rt, int* drv, char* err, size_t errlen);
int grf_go_device_count(int* n, int* ce, char* err, size_t errlen);
int grf_go_device_info(int dev, char* name, size_t namelen, int* major, int* minor, size_t* mem, int* sms, char* err, size_t errlen);
int grf_go_set_device(int dev, char* err, size_t errlen);
int grf_go_malloc(int dev, void** p, size_t n, char* err, size_t errlen);
int grf_go_free(int dev, void* p, char* err, size_t errlen);
int grf_go_stream_create(int dev, grf_stream** s, char* err, size_t errlen);
int grf_go_stream_destroy(int dev, grf_stream* s, char* err, size_t errlen);
int grf_go_stream_sync(int dev, grf_stream* s, char* err, size_t errlen);
int grf_go_memcpy_htod(int dev, void* d, const void* s, size_t n, grf_stream* st, char* err, size_t errlen);
int grf_go_memcpy_dtoh(int dev, void* d, const void* s, size_t n, grf_stream* st, char* err, size_t errlen);
int grf_go_memcpy_dtod(int dev, void* d, const void* s, size_t n, grf_stream* st, char* err, size_t errlen);
int grf_go_memset(int dev, void* p, int v, size_t n, grf_stream* st, char* err, size_t errlen);
int grf_go_resize(int dev, const grf_resize_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_fuse_maps_workspace_size(const grf_fuse_maps_params* p, size_t* n, char* err, size_t errlen);
int grf_go_fuse_maps(int dev, const grf_fuse_maps_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_blend_step(int dev, const grf_blend_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_inpaint_input(int dev, const grf_inpaint_params* p, grf_stream* st, char* err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* GREFINE_CUDA_LOADER_H */
