package cuda

/*
#cgo CFLAGS: -I${SRCDIR}/../../cgo/include
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "grefine_cuda_loader.h"

// The library's entry points, resolved once per process by grf_go_load.
static struct {
	void* handle;
	int (*abi_version)(void);
	int (*versions)(int*, int*, char*, size_t);
	int (*device_count)(int*, int*, char*, size_t);
	int (*device_info)(int, char*, size_t, int*, int*, size_t*, int*, char*, size_t);
	int (*set_device)(int, char*, size_t);
	int (*malloc_)(void**, size_t, char*, size_t);
	int (*free_)(void*, char*, size_t);
	int (*stream_create)(grf_stream**, char*, size_t);
	int (*stream_destroy)(grf_stream*, char*, size_t);
	int (*stream_sync)(grf_stream*, char*, size_t);
	int (*memcpy_htod)(void*, const void*, size_t, grf_stream*, char*, size_t);
	int (*memcpy_dtoh)(void*, const void*, size_t, grf_stream*, char*, size_t);
	int (*memcpy_dtod)(void*, const void*, size_t, grf_stream*, char*, size_t);
	int (*memset_)(void*, int, size_t, grf_stream*, char*, size_t);
	int (*resize)(const grf_resize_params*, grf_stream*, char*, size_t);
	int (*fuse_maps_workspace_size)(const grf_fuse_maps_params*, size_t*, char*, size_t);
	int (*fuse_maps)(const grf_fuse_maps_params*, grf_stream*, char*, size_t);
	int (*blend_step)(const grf_blend_params*, grf_stream*, char*, size_t);
	int (*inpaint_input)(const grf_inpaint_params*, grf_stream*, char*, size_t);
	// ABI 2
	int (*memcpy2d_dtod)(void*, size_t, const void*, size_t, size_t, size_t, grf_stream*, char*, size_t);
	int (*resize_rgb8_workspace_size)(const grf_resize_rgb8_params*, size_t*, char*, size_t);
	int (*resize_rgb8)(const grf_resize_rgb8_params*, grf_stream*, char*, size_t);
	int (*to_planar)(const grf_planar_params*, grf_stream*, char*, size_t);
	int (*from_planar)(const grf_planar_params*, grf_stream*, char*, size_t);
	int (*paste_rgb8)(const grf_paste_params*, grf_stream*, char*, size_t);
	int (*pointwise)(const grf_pointwise_params*, grf_stream*, char*, size_t);
	int (*dilate)(const grf_dilate_params*, grf_stream*, char*, size_t);
	int (*count_at_least)(const grf_count_params*, grf_stream*, char*, size_t);
	int (*pq_probs)(const grf_pq_params*, grf_stream*, char*, size_t);
	int (*scatter_rows)(const grf_scatter_params*, grf_stream*, char*, size_t);
	int (*text_ensemble)(const grf_ensemble_params*, grf_stream*, char*, size_t);
	int (*text_maps)(const grf_text_maps_params*, grf_stream*, char*, size_t);
	int (*emphasis)(const grf_emphasis_params*, grf_stream*, char*, size_t);
	int (*color_fix_workspace_size)(const grf_color_fix_params*, size_t*, char*, size_t);
	int (*color_fix)(const grf_color_fix_params*, grf_stream*, char*, size_t);
	// ABI 3
	int (*bounding_box)(const grf_bbox_params*, grf_stream*, char*, size_t);
	int (*tile_gather)(const grf_tile_params*, grf_stream*, char*, size_t);
	int (*tile_accumulate)(const grf_tile_params*, grf_stream*, char*, size_t);
	int (*vae_blend)(const grf_vae_blend_params*, grf_stream*, char*, size_t);
} grf_go;

#define GRF_GO_SYM(field, name)                                        \
	do {                                                               \
		*(void**)(&grf_go.field) = dlsym(h, name);                     \
		if (grf_go.field == NULL) {                                    \
			snprintf(err, errlen, "missing symbol %s (not a libgrefine_cuda.so?)", name); \
			memset(&grf_go, 0, sizeof grf_go);                         \
			return 2;                                                  \
		}                                                              \
	} while (0)

// grf_go_bind resolves every symbol from h, a library engine/native dlopen'd; 2 = a symbol
// is missing, 3 = ABI version mismatch (h is left to the caller to close). *emulated is 1
// when the library is cuda-emu (it exports grf_emu_version).
static int grf_go_bind(void* h, int* emulated, char* err, size_t errlen) {
	GRF_GO_SYM(abi_version, "grf_cuda_abi_version");
	GRF_GO_SYM(versions, "grf_cuda_versions");
	GRF_GO_SYM(device_count, "grf_cuda_device_count");
	GRF_GO_SYM(device_info, "grf_cuda_device_info");
	GRF_GO_SYM(set_device, "grf_cuda_set_device");
	GRF_GO_SYM(malloc_, "grf_cuda_malloc");
	GRF_GO_SYM(free_, "grf_cuda_free");
	GRF_GO_SYM(stream_create, "grf_cuda_stream_create");
	GRF_GO_SYM(stream_destroy, "grf_cuda_stream_destroy");
	GRF_GO_SYM(stream_sync, "grf_cuda_stream_sync");
	GRF_GO_SYM(memcpy_htod, "grf_cuda_memcpy_htod");
	GRF_GO_SYM(memcpy_dtoh, "grf_cuda_memcpy_dtoh");
	GRF_GO_SYM(memcpy_dtod, "grf_cuda_memcpy_dtod");
	GRF_GO_SYM(memset_, "grf_cuda_memset");
	GRF_GO_SYM(resize, "grf_resize");
	GRF_GO_SYM(fuse_maps_workspace_size, "grf_fuse_maps_workspace_size");
	GRF_GO_SYM(fuse_maps, "grf_fuse_maps");
	GRF_GO_SYM(blend_step, "grf_blend_step");
	GRF_GO_SYM(inpaint_input, "grf_inpaint_input");
	GRF_GO_SYM(memcpy2d_dtod, "grf_cuda_memcpy2d_dtod");
	GRF_GO_SYM(resize_rgb8_workspace_size, "grf_resize_rgb8_workspace_size");
	GRF_GO_SYM(resize_rgb8, "grf_resize_rgb8");
	GRF_GO_SYM(to_planar, "grf_to_planar");
	GRF_GO_SYM(from_planar, "grf_from_planar");
	GRF_GO_SYM(paste_rgb8, "grf_paste_rgb8");
	GRF_GO_SYM(pointwise, "grf_pointwise");
	GRF_GO_SYM(dilate, "grf_dilate");
	GRF_GO_SYM(count_at_least, "grf_count_at_least");
	GRF_GO_SYM(pq_probs, "grf_pq_probs");
	GRF_GO_SYM(scatter_rows, "grf_scatter_rows");
	GRF_GO_SYM(text_ensemble, "grf_text_ensemble");
	GRF_GO_SYM(text_maps, "grf_text_maps");
	GRF_GO_SYM(emphasis, "grf_emphasis");
	GRF_GO_SYM(color_fix_workspace_size, "grf_color_fix_workspace_size");
	GRF_GO_SYM(color_fix, "grf_color_fix");
	GRF_GO_SYM(bounding_box, "grf_bounding_box");
	GRF_GO_SYM(tile_gather, "grf_tile_gather");
	GRF_GO_SYM(tile_accumulate, "grf_tile_accumulate");
	GRF_GO_SYM(vae_blend, "grf_vae_blend");
	int v = grf_go.abi_version();
	if (v != GRF_CUDA_ABI_VERSION) {
		snprintf(err, errlen, "library ABI version %d, this program needs %d", v, GRF_CUDA_ABI_VERSION);
		memset(&grf_go, 0, sizeof grf_go);
		return 3;
	}
	*emulated = dlsym(h, "grf_emu_version") != NULL;
	grf_go.handle = h;
	return 0;
}

// The wrappers below are non-static: device.go and ops.go call them through the
// prototypes in cgo/include/grefine_cuda_loader.h.
// Every wrapper below first makes dev current on the calling OS thread (dev < 0: skip),
// in the same C call, so goroutines may move between threads.
#define GRF_GO_DEV(dev) \
	if ((dev) >= 0) { int rc_ = grf_go.set_device((dev), err, errlen); if (rc_ != 0) return rc_; }

int grf_go_versions(int* rt, int* drv, char* err, size_t errlen) { return grf_go.versions(rt, drv, err, errlen); }
int grf_go_device_count(int* n, int* ce, char* err, size_t errlen) { return grf_go.device_count(n, ce, err, errlen); }
int grf_go_device_info(int dev, char* name, size_t namelen, int* major, int* minor, size_t* mem, int* sms, char* err, size_t errlen) {
	return grf_go.device_info(dev, name, namelen, major, minor, mem, sms, err, errlen);
}
int grf_go_set_device(int dev, char* err, size_t errlen) { return grf_go.set_device(dev, err, errlen); }
int grf_go_malloc(int dev, void** p, size_t n, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.malloc_(p, n, err, errlen); }
int grf_go_free(int dev, void* p, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.free_(p, err, errlen); }
int grf_go_stream_create(int dev, grf_stream** s, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.stream_create(s, err, errlen); }
int grf_go_stream_destroy(int dev, grf_stream* s, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.stream_destroy(s, err, errlen); }
int grf_go_stream_sync(int dev, grf_stream* s, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.stream_sync(s, err, errlen); }
int grf_go_memcpy_htod(int dev, void* d, const void* s, size_t n, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.memcpy_htod(d, s, n, st, err, errlen); }
int grf_go_memcpy_dtoh(int dev, void* d, const void* s, size_t n, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.memcpy_dtoh(d, s, n, st, err, errlen); }
int grf_go_memcpy_dtod(int dev, void* d, const void* s, size_t n, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.memcpy_dtod(d, s, n, st, err, errlen); }
int grf_go_memset(int dev, void* p, int v, size_t n, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.memset_(p, v, n, st, err, errlen); }
int grf_go_resize(int dev, const grf_resize_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.resize(p, st, err, errlen); }
int grf_go_fuse_maps_workspace_size(const grf_fuse_maps_params* p, size_t* n, char* err, size_t errlen) { return grf_go.fuse_maps_workspace_size(p, n, err, errlen); }
int grf_go_fuse_maps(int dev, const grf_fuse_maps_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.fuse_maps(p, st, err, errlen); }
int grf_go_blend_step(int dev, const grf_blend_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.blend_step(p, st, err, errlen); }
int grf_go_inpaint_input(int dev, const grf_inpaint_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.inpaint_input(p, st, err, errlen); }
int grf_go_memcpy2d_dtod(int dev, void* d, size_t dp, const void* s, size_t sp, size_t w, size_t rows, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.memcpy2d_dtod(d, dp, s, sp, w, rows, st, err, errlen); }
int grf_go_resize_rgb8_workspace_size(const grf_resize_rgb8_params* p, size_t* n, char* err, size_t errlen) { return grf_go.resize_rgb8_workspace_size(p, n, err, errlen); }
int grf_go_resize_rgb8(int dev, const grf_resize_rgb8_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.resize_rgb8(p, st, err, errlen); }
int grf_go_to_planar(int dev, const grf_planar_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.to_planar(p, st, err, errlen); }
int grf_go_from_planar(int dev, const grf_planar_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.from_planar(p, st, err, errlen); }
int grf_go_paste_rgb8(int dev, const grf_paste_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.paste_rgb8(p, st, err, errlen); }
int grf_go_pointwise(int dev, const grf_pointwise_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.pointwise(p, st, err, errlen); }
int grf_go_dilate(int dev, const grf_dilate_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.dilate(p, st, err, errlen); }
int grf_go_count_at_least(int dev, const grf_count_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.count_at_least(p, st, err, errlen); }
int grf_go_pq_probs(int dev, const grf_pq_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.pq_probs(p, st, err, errlen); }
int grf_go_scatter_rows(int dev, const grf_scatter_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.scatter_rows(p, st, err, errlen); }
int grf_go_text_ensemble(int dev, const grf_ensemble_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.text_ensemble(p, st, err, errlen); }
int grf_go_text_maps(int dev, const grf_text_maps_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.text_maps(p, st, err, errlen); }
int grf_go_emphasis(int dev, const grf_emphasis_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.emphasis(p, st, err, errlen); }
int grf_go_color_fix_workspace_size(const grf_color_fix_params* p, size_t* n, char* err, size_t errlen) { return grf_go.color_fix_workspace_size(p, n, err, errlen); }
int grf_go_color_fix(int dev, const grf_color_fix_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.color_fix(p, st, err, errlen); }
int grf_go_bounding_box(int dev, const grf_bbox_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.bounding_box(p, st, err, errlen); }
int grf_go_tile_gather(int dev, const grf_tile_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.tile_gather(p, st, err, errlen); }
int grf_go_tile_accumulate(int dev, const grf_tile_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.tile_accumulate(p, st, err, errlen); }
int grf_go_vae_blend(int dev, const grf_vae_blend_params* p, grf_stream* st, char* err, size_t errlen) { GRF_GO_DEV(dev); return grf_go.vae_blend(p, st, err, errlen); }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/grefine/grefine/engine"
	"github.com/grefine/grefine/engine/native"
)

// LibName is the file name of the kernel library.
const LibName = "libgrefine_cuda.so"

// errLen is the size of the error buffer passed to every ABI call.
const errLen = 512

// Status codes of the C ABI (grefine_cuda.h).
const (
	statusOK       = 0
	statusInvalid  = 1
	statusCUDA     = 2
	statusNoDevice = 3
)

// CUDA runtime error codes that mean "no usable GPU".
const (
	cudaErrorInsufficientDriver = 35
	cudaErrorNoDevice           = 100
)

// errBuf is the error buffer of one ABI call. It is Go memory that C only writes during
// the call (STYLE: Go memory is never kept by C beyond one call).
type errBuf [errLen]C.char

func (e *errBuf) ptr() *C.char { return &e[0] }
func (e *errBuf) msg() string  { return C.GoString(&e[0]) }

// statusError converts an ABI status into an error wrapping a sentinel.
func statusError(op string, rc C.int, e *errBuf) error {
	if rc == statusOK {
		return nil
	}
	var s error
	switch {
	case rc == statusInvalid:
		s = engine.ErrShape
	case rc == statusNoDevice:
		s = engine.ErrUnavailable
	case rc == statusCUDA && strings.Contains(e.msg(), "cudaErrorMemoryAllocation"):
		s = engine.ErrOutOfMemory
	default:
		s = engine.ErrRun
	}
	return fmt.Errorf("%w: cuda: %s: %s", s, op, e.msg())
}

// EmuLibName is the file name of cuda-emu, the GPU emulator with the same ABI
// (tools/cuda-emu.sh); open it by path (Options.LibPath or $GRF_CUDA_LIB).
const EmuLibName = "libgrefine_cuda_emu.so"

// EnvLib is the environment variable naming the library (the real one or the emulator).
const EnvLib = "GRF_CUDA_LIB"

// EnvEmuLib names cuda-emu's path for Options.Emulator.
const EnvEmuLib = "GRF_CUDA_EMU_LIB"

// EmulatorPath finds cuda-emu for Options.Emulator: $GRF_CUDA_EMU_LIB, else
// libgrefine_cuda_emu.so beside the executable, else ../build/libgrefine_cuda_emu.so
// beside it. The error lists the places tried.
func EmulatorPath() (string, error) {
	if p := os.Getenv(EnvEmuLib); p != "" {
		return p, nil
	}
	tried := []string{"$" + EnvEmuLib + " (not set)"}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("%w: cuda: %s not found: the executable's path is unknown (%v); set %s", engine.ErrUnavailable, EmuLibName, err, EnvEmuLib)
	}
	for _, rel := range []string{EmuLibName, filepath.Join("..", "build", EmuLibName)} {
		p := filepath.Join(filepath.Dir(exe), rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, filepath.Clean(p)+" (no such file)")
	}
	return "", fmt.Errorf("%w: cuda: %s not found: tried %s; run `make cuda-emu` or set %s",
		engine.ErrUnavailable, EmuLibName, strings.Join(tried, ", "), EnvEmuLib)
}

// library is the once-per-process kernel library (engine/native: one search order, the
// result cached with its error).
var library = native.New(native.Spec{
	Name: "cuda", What: LibName, File: LibName, Flag: "option LibPath", Env: EnvLib,
	Beside: []string{LibName, filepath.Join("..", "build", LibName)},
	Hint:   "run `make native` (a GPU), or set " + EnvLib + " to build/" + EmuLibName + " (`make cuda-emu`, the emulator)",
	Open:   bind,
})

// libEmulated records whether the loaded library is cuda-emu (set once by bind).
var libEmulated bool

// bind opens the library at path and resolves its symbols.
func bind(path string) error {
	h, err := native.Dlopen(path)
	if err != nil {
		return err
	}
	var e errBuf
	var emu C.int
	if rc := C.grf_go_bind(h.Pointer(), &emu, e.ptr(), errLen); rc != 0 {
		h.Close()
		return errors.New(e.msg())
	}
	libEmulated = emu != 0
	return nil
}

// load loads the library once per process (see engine/native for the search order and
// the caching; a later explicit path naming another file is an error).
func load(explicit string) (native.Result, error) {
	r, err := library.Load(explicit)
	if err != nil {
		return r, fmt.Errorf("%w: %w", engine.ErrUnavailable, err)
	}
	return r, nil
}
