# grefine: every target is a verb that calls a script in tools/; no logic lives here.
.PHONY: setup setup-gpu build native cuda-emu trt-emu lib test demo bench fixtures gpu-bundle lint clean

setup:        ## install ONNX Runtime, Go modules (and the CUDA toolkit for `native`)
	@bash tools/setup.sh

setup-gpu:    ## install onnxruntime-gpu + CUDA 13 runtime libraries from PyPI into .deps/ort-gpu (not in setup)
	@bash tools/setup-gpu.sh

.PHONY: setup-trt
setup-trt: setup ## TensorRT 10.15.1 from Maven Central into .deps/trt + build/libgrefine_trt.so (not in setup)
	@bash tools/setup-trt.sh

build: setup  ## build bin/grefine
	@bash tools/build.sh

native: setup ## build libgrefine_cuda.so (and libgrefine_trt.so with TensorRT_ROOT)
	@bash tools/native.sh

cuda-emu:     ## build build/libgrefine_cuda_emu.so (the GPU emulator: libgrefine_cuda's ABI in plain C)
	@bash tools/cuda-emu.sh

trt-emu: setup ## build build/libgrefine_trt_emu.so (the TensorRT shim ABI on cuda-emu + ONNX Runtime)
	@bash tools/trt-emu.sh

lib: setup    ## build libgrefine.so/.a (C API, include/grefine.h) and install it into build/prefix
	@bash tools/lib.sh

test: setup   ## set up, build the native libraries, run every test
	@bash tools/test.sh

demo: build   ## run the G-Refine demo on the bundled sample with the tiny model set
	@bash tools/demo.sh

bench: build  ## run the benchmarks (results go to bench/RESULTS.md by hand)
	@bash tools/bench.sh

fixtures:     ## regenerate testdata/ (tiny model set + goldens) with the Python exporter
	@bash tools/fixtures.sh

gpu-bundle: setup ## the TensorRT GPU run: .gpu/ (+ .gpu-bin/, .gpu-trt/, .gpu-py/) for tools/gpu/verify-gpu.sh (needs setup-trt)
	@bash tools/gpu-bundle.sh

lint:
	@bash tools/lint.sh

clean:
	rm -rf build bin .gpu .gpu-bin .gpu-trt .gpu-ptx .gpu-py .gpu-run .gpu-stamps
