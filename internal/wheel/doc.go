// Package wheel installs native libraries out of Python wheels without Python: a wheel is
// a zip file, and a Manifest pins, for each wheel, its file name and SHA-256 and the
// members to extract with their own SHA-256 and size.
//
// `make setup-gpu` (tools/setup-gpu.sh, tools/setupgpu) uses it to put the ONNX Runtime
// GPU library and the CUDA 13 runtime libraries from PyPI into .deps/ort-gpu/: pip
// downloads the wheels (Manifest.Missing says which), Install checks and extracts them.
//
// Guarantees:
//   - a wheel whose SHA-256 differs from the pin is refused before anything is extracted;
//   - every member is streamed to a temporary file beside its destination, hashed on the
//     way, and renamed into place only when size and SHA-256 match: a failure never leaves
//     a half-written or unverified library under its final name;
//   - destinations are plain relative paths inside the output directory (no "..", no
//     absolute paths), checked when the manifest is loaded;
//   - files already installed with the pinned hash are left alone (Verify), so a second
//     run only re-hashes.
package wheel
