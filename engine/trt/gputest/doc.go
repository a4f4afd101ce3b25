// Package gputest runs engine/trt against the real shim (libgrefine_trt.so) on a GPU
// machine. Its tests skip, saying why, unless GRF_TRT_LIB names a built shim and a CUDA
// device is visible; with a real TensorRT they also build, load and run
// testdata/affine.onnx (y = 2x+1, made by testdata/make_affine.py).
//
// It is a separate package because a process loads one shim: engine/trt's own tests load
// the fake one.
//
//	GRF_TRT_LIB=build/libgrefine_trt.so go test -v ./engine/trt/gputest
//
// GRF_TRT_STUB=1 declares a shim linked against stub TensorRT libraries (link checks on a
// machine without TensorRT): CUDA paths are tested and TensorRT factories must fail cleanly.
package gputest
