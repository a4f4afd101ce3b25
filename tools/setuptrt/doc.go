// Command setuptrt is the Go half of `make setup-trt` (tools/setup-trt.sh): it reads the
// pinned manifest (manifest.json beside it, embedded) of NVIDIA's TensorRT redistributable
// as Maven Central carries it (org.bytedeco:tensorrt, classifier linux-x86_64-redist: a
// jar, which is a zip like a wheel) and
//
//	go run ./tools/setuptrt -m2 DIR -out DIR need      # the Maven coordinate to fetch, or nothing
//	go run ./tools/setuptrt -m2 DIR jar                # where mvn puts the jar under DIR
//	go run ./tools/setuptrt -m2 DIR -out DIR install   # check the jar's hash, extract, check each library
//	go run ./tools/setuptrt -out DIR verify            # exit 1 unless every pinned library is in place
//	go run ./tools/setuptrt headers INCLUDE_DIR        # exit 1 unless NvInferVersion.h is the pinned version
//	go run ./tools/setuptrt info tensorrt|tag|maven|cuda
//
// DIR (default .deps/trt) becomes a TensorRT_ROOT: lib/ holds the libraries (and the
// libnvinfer.so / libnvonnxparser.so links CMake looks for), include/ the headers that
// tools/setup-trt.sh exports. install writes DIR/INSTALLED, the list of what it put there.
// The hash checks and the extraction are package internal/wheel's: the jar is refused
// before anything is extracted when its SHA-256 is not the pinned one, and each library
// is written beside its destination and renamed into place only once its size and SHA-256
// match, so nothing half-written ever carries a library's name.
//
// Every failure is one line on stderr naming what is missing and what to do.
package main
