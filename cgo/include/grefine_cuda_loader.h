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
/* ABI 2 */
int grf_go_memcpy2d_dtod(int dev, void* d, size_t dp, const void* s, size_t sp, size_t w, size_t rows, grf_stream* st, char* err, size_t errlen);
int grf_go_resize_rgb8_workspace_size(const grf_resize_rgb8_params* p, size_t* n, char* err, size_t errlen);
int grf_go_resize_rgb8(int dev, const grf_resize_rgb8_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_to_planar(int dev, const grf_planar_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_from_planar(int dev, const grf_planar_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_paste_rgb8(int dev, const grf_paste_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_pointwise(int dev, const grf_pointwise_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_dilate(int dev, const grf_dilate_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_count_at_least(int dev, const grf_count_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_pq_probs(int dev, const grf_pq_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_scatter_rows(int dev, const grf_scatter_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_text_ensemble(int dev, const grf_ensemble_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_text_maps(int dev, const grf_text_maps_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_emphasis(int dev, const grf_emphasis_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_color_fix_workspace_size(const grf_color_fix_params* p, size_t* n, char* err, size_t errlen);
int grf_go_color_fix(int dev, const grf_color_fix_params* p, grf_stream* st, char* err, size_t errlen);
/* ABI 3 */
int grf_go_bounding_box(int dev, const grf_bbox_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_tile_gather(int dev, const grf_tile_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_tile_accumulate(int dev, const grf_tile_params* p, grf_stream* st, char* err, size_t errlen);
int grf_go_vae_blend(int dev, const grf_vae_blend_params* p, grf_stream* st, char* err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* GREFINE_CUDA_LOADER_H */
