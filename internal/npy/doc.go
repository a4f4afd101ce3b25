// Package npy reads and writes NumPy .npy files (format 1.0/2.0, little-endian, C order)
// holding float32, int32 or int64 arrays. The exporter writes its golden tensors with
// numpy.save; tests load them with Read.
package npy
