// Package gpu holds the scripts of grefine's GPU runs and tests them without a GPU.
//
// The TensorRT run: `make gpu-bundle` (tools/gpu-bundle.sh) packs .gpu/, .gpu-trt/,
// .gpu-py/ (and optionally .gpu-ptx/) sized for the device tool's per-call limit; on the GPU
// machine `bash .gpu/verify-gpu.sh` joins and verifies the parts and runs steps a to e (see
// README.md beside this file for the plan of device calls). The ONNX Runtime CUDA run:
// verify-ort.sh and pack-ort.sh (GRF_GPU_ORT=1). The Python scripts (sdxl_unet_step.py,
// clip_step.py) time the full-size networks with PyTorch on the GPU machine.
//
// This package has no code: its test builds a bundle with a fake TensorRT (random
// "libraries", the fake shim of cgo/trt/fake) and checks the bundle's limits and
// verify-gpu.sh's dry run, its no-GPU answers, and its refusal of damaged or missing parts.
package gpu
