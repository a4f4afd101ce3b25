package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// ErrFormat is wrapped by every parse error.
var ErrFormat = errors.New("npy: bad format")

// Array is a decoded .npy array. Exactly one of F32, I32, I64 is set.
type Array struct {
	Shape []int64
	DType string // "float32", "int32", "int64"
	F32   []float32
	I32   []int32
	I64   []int64
}

var (
	descrRe = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	orderRe = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	shapeRe = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// ReadFile reads one .npy file.
func ReadFile(path string) (*Array, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	a, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return a, nil
}

// Decode parses the bytes of a .npy file.
func Decode(b []byte) (*Array, error) {
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return nil, fmt.Errorf("%w: missing magic", ErrFormat)
	}
	major := b[6]
	var hlen, off int
	switch major {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, fmt.Errorf("%w: short header", ErrFormat)
		}
		hlen, off = int(binary.LittleEndian.Uint32(b[8:12])), 12
	default:
		return nil, fmt.Errorf("%w: version %d", ErrFormat, major)
	}
	if off+hlen > len(b) {
		return nil, fmt.Errorf("%w: header overruns file", ErrFormat)
	}
	h := string(b[off : off+hlen])
	data := b[off+hlen:]
	m := descrRe.FindStringSubmatch(h)
	if m == nil {
		return nil, fmt.Errorf("%w: no descr", ErrFormat)
	}
	if o := orderRe.FindStringSubmatch(h); o == nil || o[1] != "False" {
		return nil, fmt.Errorf("%w: only C order is supported", ErrFormat)
	}
	s := shapeRe.FindStringSubmatch(h)
	if s == nil {
		return nil, fmt.Errorf("%w: no shape", ErrFormat)
	}
	a := &Array{Shape: []int64{}}
	n := int64(1)
	for _, f := range strings.Split(s[1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := strconv.ParseInt(f, 10, 64)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%w: shape %q", ErrFormat, s[1])
		}
		a.Shape = append(a.Shape, d)
		n *= d
	}
	var size int64
	switch m[1] {
	case "<f4":
		a.DType, size = "float32", 4
	case "<i4":
		a.DType, size = "int32", 4
	case "<i8":
		a.DType, size = "int64", 8
	default:
		return nil, fmt.Errorf("%w: unsupported descr %q", ErrFormat, m[1])
	}
	if int64(len(data)) != n*size {
		return nil, fmt.Errorf("%w: %d data bytes for %d elements of %s", ErrFormat, len(data), n, a.DType)
	}
	switch a.DType {
	case "float32":
		a.F32 = make([]float32, n)
		for i := range a.F32 {
			a.F32[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
	case "int32":
		a.I32 = make([]int32, n)
		for i := range a.I32 {
			a.I32[i] = int32(binary.LittleEndian.Uint32(data[4*i:]))
		}
	case "int64":
		a.I64 = make([]int64, n)
		for i := range a.I64 {
			a.I64[i] = int64(binary.LittleEndian.Uint64(data[8*i:]))
		}
	}
	return a, nil
}

// WriteFloat32 writes a float32 array as .npy version 1.0.
func WriteFloat32(w io.Writer, shape []int64, data []float32) error {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	if n != int64(len(data)) {
		return fmt.Errorf("%w: %d values for shape %v", ErrFormat, len(data), shape)
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.FormatInt(d, 10)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	h := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	pad := 64 - (10+len(h)+1)%64
	h += strings.Repeat(" ", pad%64) + "\n"
	var buf bytes.Buffer
	buf.WriteString("\x93NUMPY\x01\x00")
	_ = binary.Write(&buf, binary.LittleEndian, uint16(len(h)))
	buf.WriteString(h)
	for _, v := range data {
		_ = binary.Write(&buf, binary.LittleEndian, math.Float32bits(v))
	}
	_, err := w.Write(buf.Bytes())
	return err
}
