// Package modelset loads a grefine model set: a directory holding the exported engines
// (ONNX files or TensorRT plans), constant tensors and tokenizer files, described by a
// manifest, models.json (written by tools/export).
//
// Load verifies the set before anything runs: every listed file exists and has the
// SHA-256 the manifest records (ErrMismatch names the file and both digests), every
// engine the manifest lists declares the tensors grefine's contract requires (DESIGN §2:
// names and dtypes; sizes may differ, e.g. in the tiny set), and every constant's byte
// size fits its dtype and shape. OpenEngine then opens an engine with a backend and
// checks the engine's own I/O descriptors against the manifest (engine.ErrContract on
// any difference), so a model swapped behind the manifest's back is refused with a
// message naming the tensor.
//
// Manifest format 1:
//
//	{"format": 1, "name": "tiny", "tiny": true,
//	 "engines":   {"clip_surgery": {"file": "clip_surgery.onnx", "sha256": "…",
//	                "inputs":  [{"name": "pixel_values", "dtype": "float32", "shape": [-1,3,224,224]}],
//	                "outputs": [{"name": "tokens", "dtype": "float32", "shape": [-1,197,512]}]}},
//	 "constants": {"pq_text": {"file": "pq_text.bin", "sha256": "…", "dtype": "float32", "shape": [4,2,512]}},
//	 "files":     {"bpe_vocab": {"file": "bpe_simple_vocab_16e6.txt.gz", "sha256": "…"}},
//	 "config":    {…free-form per-component settings…}}
//
// Constants are raw little-endian arrays in C order.
//
// Optional engines: clip_text_kv (the prefix-cached text encoder, see Contracts) extends
// DESIGN §2. A set without it still loads and assesses with the plain clip_text.
//
// Hashing a real set (tens of GB) takes a while; Options.HashCache names a file that
// remembers verified files by path, size and modification time, so only changed files are
// hashed again (the CLI keeps it in the user cache directory).
package modelset
