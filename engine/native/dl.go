package native

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

// grf_native_dlopen opens path with RTLD_NOW | RTLD_LOCAL and copies dlerror on failure.
static void* grf_native_dlopen(const char* path, char* err, size_t errlen) {
	void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char* e = dlerror();
		snprintf(err, errlen, "%s", e != NULL ? e : "dlopen failed");
	}
	return h;
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Handle is a library opened by Dlopen (a dlopen handle). The shims' cgo code resolves
// their symbols from it with dlsym.
type Handle struct{ p unsafe.Pointer }

// Dlopen opens a shared library (RTLD_NOW | RTLD_LOCAL: every symbol resolved at once,
// none added to the global scope). path is absolute, or a bare name for the system
// loader. The error is dlerror's message.
func Dlopen(path string) (Handle, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var buf [1024]C.char
	h := C.grf_native_dlopen(cpath, &buf[0], C.size_t(len(buf)))
	if h == nil {
		return Handle{}, fmt.Errorf("%s", C.GoString(&buf[0]))
	}
	return Handle{p: h}, nil
}

// Close dlcloses the handle (after a failed symbol resolution; a library in use is never
// closed).
func (h Handle) Close() {
	if h.p != nil {
		C.dlclose(h.p)
	}
}

// Pointer is the handle as a C pointer (void*), for the shims' cgo code.
func (h Handle) Pointer() unsafe.Pointer { return h.p }
