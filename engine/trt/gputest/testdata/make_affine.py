"""Writes affine.onnx, the GPU test model of engine/trt/gputest: y = 2*x + 1 for
x float32 [N, 3] (N dynamic). Run: .venv/bin/python engine/trt/gputest/testdata/make_affine.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

here = os.path.dirname(os.path.abspath(__file__))
two = numpy_helper.from_array(np.array([2.0], dtype=np.float32), "two")
one = numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one")
graph = helper.make_graph(
    [helper.make_node("Mul", ["x", "two"], ["x2"]), helper.make_node("Add", ["x2", "one"], ["y"])],
    "affine",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    initializer=[two, one],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="grefine-gputest")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, os.path.join(here, "affine.onnx"))
