// Command setupgpu is the Go half of `make setup-gpu` (tools/setup-gpu.sh): it reads the
// pinned wheel manifest (manifest.json beside it, embedded) and
//
//	go run ./tools/setupgpu -wheels DIR -out DIR need      # pip requirements still to download, one a line
//	go run ./tools/setupgpu -wheels DIR -out DIR install   # check wheel hashes, extract, check file hashes
//	go run ./tools/setupgpu -out DIR verify                # exit 1 unless every pinned file is in place
//
// install prints one line per library (destination, size, SHA-256 prefix, source wheel, and
// whether it was already in place) and writes DIR/INSTALLED with the same lines. The
// checks and the extraction live in package internal/wheel, which has the tests.
package main
