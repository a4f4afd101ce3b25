// Package cudaemu builds cuda-emu, the GPU emulator (libgrefine_cuda_emu.so, sources in
// cgo/emu, see cgo/emu/grefine_cuda_emu.h), for tests, so that the GPU code paths of
// engine/cuda, engine/trt and the packages above them run on machines without a GPU:
//
//	dir := t.TempDir()
//	lib, err := cudaemu.Build(dir)            // bash tools/cuda-emu.sh DIR
//	d, err := cuda.Open(cuda.Options{LibPath: lib})
//
// Build runs the same script as `make cuda-emu`, so tests and the build use one command.
// A process loads one copy of the emulator: the TensorRT emulator that engine/trt/emutest
// builds into the same directory links this copy by soname.
package cudaemu
