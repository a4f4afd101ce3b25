package ort

// A hand-rolled protobuf writer for a one-node ONNX model (y = x + x), so the backend's
// tests need no generated fixtures. Field numbers follow onnx.proto3.

func pbVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func pbBytes(b []byte, field int, data []byte) []byte {
	b = pbVarint(b, uint64(field<<3|2))
	b = pbVarint(b, uint64(len(data)))
	return append(b, data...)
}

func pbInt(b []byte, field int, v int64) []byte {
	b = pbVarint(b, uint64(field<<3))
	return pbVarint(b, uint64(v))
}

// valueInfo encodes a ValueInfoProto for a tensor; a negative dim becomes dim_param "N".
func valueInfo(name string, elemType int64, dims []int64) []byte {
	var shape []byte
	for _, d := range dims {
		var dim []byte
		if d < 0 {
			dim = pbBytes(nil, 2, []byte("N")) // dim_param
		} else {
			dim = pbInt(nil, 1, d) // dim_value
		}
		shape = pbBytes(shape, 1, dim)
	}
	tensorType := pbInt(nil, 1, elemType)      // elem_type
	tensorType = pbBytes(tensorType, 2, shape) // shape
	typ := pbBytes(nil, 1, tensorType)         // TypeProto.tensor_type
	vi := pbBytes(nil, 1, []byte(name))
	return pbBytes(vi, 2, typ)
}

// addModel returns an ONNX model computing y = x + x for x of the given element type
// (1 float, 6 int32) and dims.
func addModel(elemType int64, dims []int64) []byte {
	node := pbBytes(nil, 1, []byte("x"))
	node = pbBytes(node, 1, []byte("x"))
	node = pbBytes(node, 2, []byte("y"))
	node = pbBytes(node, 4, []byte("Add"))
	graph := pbBytes(nil, 1, node)
	graph = pbBytes(graph, 2, []byte("g"))
	graph = pbBytes(graph, 11, valueInfo("x", elemType, dims))
	graph = pbBytes(graph, 12, valueInfo("y", elemType, dims))
	model := pbInt(nil, 1, 8) // ir_version
	opset := pbInt(nil, 2, 17)
	model = pbBytes(model, 8, opset)
	return pbBytes(model, 7, graph)
}
