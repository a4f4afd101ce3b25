package ort

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/grefine/grefine/engine"
)

// readIO reads the graph inputs and outputs of an ONNX file straight from its protobuf
// (ModelProto.graph: input 11, output 12, initializer 5; ValueInfoProto: name 1, type 2;
// TypeProto.tensor_type 1: elem_type 1, shape 2; dim: dim_value 1, dim_param 2), skipping
// every other field, weights included, without decoding them. This spares a throw-away
// ONNX Runtime session just to list the I/O (it costs about as much as the real one:
// 0.77 s of 0.95 s for the full-size CLIP text encoder). Graph inputs that are also
// initializers are not inputs (IR >= 4, ONNX Runtime lists them apart). ok is false when
// the file uses something this reader does not describe (no tensor type or shape, an
// element type grefine does not use): Open then asks ONNX Runtime instead.
func readIO(path string) (inDescs, outDescs []engine.TensorDesc, ok bool, err error) {
	var ins, outs []onnxValue
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, false, err
	}
	defer f.Close()
	r := &pbReader{r: bufio.NewReaderSize(f, 1<<16)}
	sawGraph := false
	for {
		field, wt, err := r.key()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, false, err
		}
		if field == 7 && wt == 2 {
			// The graph holds the initializers (weights) of models without external data:
			// walk it as a stream too.
			n, err := r.varint()
			if err != nil {
				return nil, nil, false, err
			}
			gi, gout, inits, err := readGraph(&pbReader{r: bufio.NewReader(io.LimitReader(r.r, int64(n)))})
			if err != nil {
				return nil, nil, false, err
			}
			sawGraph = true
			ins, outs = nil, nil
			for _, v := range gi {
				if !inits[v.name] {
					ins = append(ins, v)
				}
			}
			outs = gout
			continue
		}
		if err := r.skip(wt); err != nil {
			return nil, nil, false, err
		}
	}
	if !sawGraph {
		return nil, nil, false, fmt.Errorf("no graph in the model")
	}
	descs := func(vs []onnxValue) ([]engine.TensorDesc, bool) {
		out := make([]engine.TensorDesc, 0, len(vs))
		for _, v := range vs {
			dt, known := onnxTypes[v.elem]
			if !known || !v.hasShape {
				return nil, false
			}
			out = append(out, engine.TensorDesc{Name: v.name, DType: dt, Shape: v.dims})
		}
		return out, true
	}
	di, ok1 := descs(ins)
	do, ok2 := descs(outs)
	return di, do, ok1 && ok2, nil
}

// onnxTypes maps TensorProto.DataType to engine dtypes.
var onnxTypes = map[int64]engine.DType{1: engine.Float32, 2: engine.Uint8, 6: engine.Int32, 7: engine.Int64, 9: engine.Bool, 10: engine.Float16}

type onnxValue struct {
	name     string
	elem     int64
	dims     engine.Shape
	hasShape bool
}

func readGraph(r *pbReader) (ins, outs []onnxValue, inits map[string]bool, err error) {
	inits = map[string]bool{}
	for {
		field, wt, err := r.key()
		if errors.Is(err, io.EOF) {
			return ins, outs, inits, nil
		}
		if err != nil {
			return nil, nil, nil, err
		}
		switch {
		case (field == 11 || field == 12) && wt == 2:
			b, err := r.bytes()
			if err != nil {
				return nil, nil, nil, err
			}
			v, err := parseValueInfo(b)
			if err != nil {
				return nil, nil, nil, err
			}
			if field == 11 {
				ins = append(ins, v)
			} else {
				outs = append(outs, v)
			}
		case field == 5 && wt == 2: // TensorProto initializer: only its name (field 8)
			n, err := r.varint()
			if err != nil {
				return nil, nil, nil, err
			}
			name, err := tensorName(&pbReader{r: bufio.NewReader(io.LimitReader(r.r, int64(n)))})
			if err != nil {
				return nil, nil, nil, err
			}
			inits[name] = true
		default:
			if err := r.skip(wt); err != nil {
				return nil, nil, nil, err
			}
		}
	}
}

func tensorName(r *pbReader) (string, error) {
	name := ""
	for {
		field, wt, err := r.key()
		if errors.Is(err, io.EOF) {
			return name, nil
		}
		if err != nil {
			return "", err
		}
		if field == 8 && wt == 2 {
			b, err := r.bytes()
			if err != nil {
				return "", err
			}
			name = string(b)
			continue
		}
		if err := r.skip(wt); err != nil {
			return "", err
		}
	}
}

func parseValueInfo(b []byte) (onnxValue, error) {
	var v onnxValue
	err := eachField(b, func(field int, wt int, val []byte, num uint64) error {
		switch {
		case field == 1 && wt == 2:
			v.name = string(val)
		case field == 2 && wt == 2: // TypeProto
			return eachField(val, func(field int, wt int, val []byte, _ uint64) error {
				if field != 1 || wt != 2 { // tensor_type only
					return nil
				}
				return eachField(val, func(field int, wt int, val []byte, num uint64) error {
					switch {
					case field == 1 && wt == 0:
						v.elem = int64(num)
					case field == 2 && wt == 2:
						v.hasShape = true
						return eachField(val, func(field int, wt int, val []byte, _ uint64) error {
							if field != 1 || wt != 2 {
								return nil
							}
							d := int64(engine.Dynamic)
							err := eachField(val, func(field int, wt int, _ []byte, num uint64) error {
								if field == 1 && wt == 0 {
									d = int64(num)
								}
								return nil
							})
							v.dims = append(v.dims, d)
							return err
						})
					}
					return nil
				})
			})
		}
		return nil
	})
	return v, err
}

// eachField walks the fields of an in-memory message; val is set for length-delimited
// fields, num for varints (fixed32/64 are skipped).
func eachField(b []byte, f func(field, wt int, val []byte, num uint64) error) error {
	r := &pbReader{b: b}
	for {
		field, wt, err := r.key()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch wt {
		case 0:
			n, err := r.varint()
			if err != nil {
				return err
			}
			if err := f(field, wt, nil, n); err != nil {
				return err
			}
		case 2:
			v, err := r.bytes()
			if err != nil {
				return err
			}
			if err := f(field, wt, v, 0); err != nil {
				return err
			}
		default:
			if err := r.skip(wt); err != nil {
				return err
			}
		}
	}
}

// pbReader reads protobuf wire format from a stream (r) or a byte slice (b).
type pbReader struct {
	r *bufio.Reader
	b []byte
}

var errTruncated = errors.New("truncated protobuf")

func (p *pbReader) byte() (byte, error) {
	if p.r != nil {
		return p.r.ReadByte()
	}
	if len(p.b) == 0 {
		return 0, io.EOF
	}
	c := p.b[0]
	p.b = p.b[1:]
	return c, nil
}

func (p *pbReader) varint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		c, err := p.byte()
		if err != nil {
			if shift > 0 && errors.Is(err, io.EOF) {
				return 0, errTruncated
			}
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("varint overflow")
}

func (p *pbReader) key() (int, int, error) {
	k, err := p.varint()
	if err != nil {
		return 0, 0, err
	}
	return int(k >> 3), int(k & 7), nil
}

func (p *pbReader) bytes() ([]byte, error) {
	n, err := p.varint()
	if err != nil {
		return nil, errTrunc(err)
	}
	if p.r != nil {
		if n > 1<<26 { // value infos are tiny; refuse absurd lengths before allocating
			return nil, fmt.Errorf("field of %d bytes", n)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(p.r, b); err != nil {
			return nil, errTruncated
		}
		return b, nil
	}
	if uint64(len(p.b)) < n {
		return nil, errTruncated
	}
	b := p.b[:n]
	p.b = p.b[n:]
	return b, nil
}

func (p *pbReader) discard(n uint64) error {
	if p.r != nil {
		if d, err := p.r.Discard(int(n)); err != nil || uint64(d) != n {
			return errTruncated
		}
		return nil
	}
	if uint64(len(p.b)) < n {
		return errTruncated
	}
	p.b = p.b[n:]
	return nil
}

func (p *pbReader) skip(wt int) error {
	switch wt {
	case 0:
		_, err := p.varint()
		return errTrunc(err)
	case 1:
		return p.discard(8)
	case 2:
		n, err := p.varint()
		if err != nil {
			return errTrunc(err)
		}
		return p.discard(n)
	case 5:
		return p.discard(4)
	}
	return fmt.Errorf("unsupported wire type %d", wt)
}

func errTrunc(err error) error {
	if errors.Is(err, io.EOF) {
		return errTruncated
	}
	return err
}
