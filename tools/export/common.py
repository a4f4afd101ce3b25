"""Shared helpers of the exporter: determinism, ONNX export and verification, files.

Everything here is deterministic: the same inputs give the same bytes. The exporter calls
`setup_determinism()` once before it builds any model; every model is built right after a
`seed(n)` so adding or removing one engine never changes another engine's weights.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
from typing import Dict, List, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import torch

OPSET = 17

# Precision of the exported graphs (export.py --precision). "fp16": engines run in float16
# inside the graph (fp16 weights and compute, float32 I/O so the contract is unchanged),
# except those in FP32_ENGINES; TensorRT 11 is strongly typed and takes precision from the
# graph. FP16_TOL states the fp16-vs-fp32 parity limit (see fp16_parity).
PRECISION = "fp32"
FP32_ENGINES = {"sdxl_vae_encoder", "sdxl_vae_decoder"}  # the SDXL VAE overflows in fp16
FP16_TOL = 2e-2

# ONNX TensorProto element types -> manifest dtype names (the Go side's names).
_ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.UINT8: "uint8",
}


class ExportError(RuntimeError):
    """An export or a verification failed; the message says which engine and why."""


def setup_determinism() -> None:
    """Single-threaded, deterministic torch on the CPU. Call once, before any torch work."""
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (tests call this more than once)
        pass
    torch.backends.mkldnn.enabled = False


def seed(n: int) -> None:
    """Seeds torch's global generator (transformers and diffusers init their weights with it)."""
    torch.manual_seed(n)
    np.random.seed(n)


def generator(n: int) -> torch.Generator:
    """A private CPU generator for fixed inputs (does not disturb the global one)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(n)
    return g


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dir_hashes(d: str) -> Dict[str, str]:
    """SHA-256 of every file directly in d, by name."""
    return {f: sha256_file(os.path.join(d, f)) for f in sorted(os.listdir(d))}


def publish_goldens(tool: str, generate, out_dir: str, check: bool, once: bool):
    """The golden writers' driver: generate(dir) runs into a temporary folder; unless once
    or check it runs a second time and any file that differs fails (the goldens must be
    deterministic); with check the result is compared with out_dir (stale goldens fail) and
    nothing is written; else out_dir is replaced by the result. Returns (status, the first
    run's return value)."""
    with tempfile.TemporaryDirectory(prefix=tool + ".") as tmp:
        a = os.path.join(tmp, "a")
        res = generate(a)
        if not once and not check:
            b = os.path.join(tmp, "b")
            generate(b)
            ha, hb = dir_hashes(a), dir_hashes(b)
            if ha != hb:
                print(f"{tool}: FAIL: two runs differ: {[f for f in ha if ha.get(f) != hb.get(f)]}", file=sys.stderr)
                return 1, res
            print(f"{tool}: two runs identical ({len(ha)} files)")
        if check:
            if not os.path.isdir(out_dir):
                print(f"{tool}: FAIL: {out_dir} does not exist", file=sys.stderr)
                return 1, res
            hc, ha = dir_hashes(out_dir), dir_hashes(a)
            if hc != ha:
                diff = sorted(f for f in set(hc) | set(ha) if hc.get(f) != ha.get(f))
                print(f"{tool}: FAIL: committed goldens are stale: {diff}", file=sys.stderr)
                return 1, res
            print(f"{tool}: committed goldens are up to date ({len(hc)} files)")
            return 0, res
        if os.path.isdir(out_dir):
            shutil.rmtree(out_dir)
        shutil.copytree(a, out_dir)
    return 0, res


def write_bytes(path: str, data: bytes) -> None:
    """Writes atomically (temp file + rename) so a failed run never leaves half a file."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_f32(path: str, arr: np.ndarray) -> None:
    """Raw little-endian float32, C order (the `.bin` constants)."""
    write_bytes(path, np.ascontiguousarray(arr, dtype="<f4").tobytes())


def write_npy(path: str, arr: np.ndarray) -> None:
    """np.save of a little-endian C-order float32/int32 array (the goldens)."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype.kind == "f":
        arr = arr.astype("<f4")
    elif arr.dtype.kind in "iu" and arr.dtype != np.uint8:
        arr = arr.astype("<i4")
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    write_bytes(path, buf.getvalue())


def write_json(path: str, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def _value_desc(v: onnx.ValueInfoProto) -> Dict:
    t = v.type.tensor_type
    if t.elem_type not in _ONNX_DTYPES:
        raise ExportError(f"export: {v.name}: unsupported element type {t.elem_type}")
    dims = []
    for d in t.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else -1)
    return {"name": v.name, "dtype": _ONNX_DTYPES[t.elem_type], "shape": dims}


def io_desc(path: str) -> Dict[str, List[Dict]]:
    """Inputs and outputs of an ONNX file as manifest entries (-1 for dynamic dims)."""
    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    return {
        "inputs": [_value_desc(v) for v in m.graph.input if v.name not in inits],
        "outputs": [_value_desc(v) for v in m.graph.output],
    }


def check_contract(name: str, path: str, inputs: Sequence[Dict], outputs: Sequence[Dict]) -> Dict:
    """Checks the exported graph's I/O against the expected contract; returns the desc."""
    got = io_desc(path)
    want = {"inputs": list(inputs), "outputs": list(outputs)}
    if got != want:
        raise ExportError(f"export: {name}: graph I/O {got} does not match the contract {want}")
    return got


def export_onnx(
    name: str,
    module: torch.nn.Module,
    args: tuple,
    path: str,
    input_names: List[str],
    output_names: List[str],
    dynamic_axes: Dict[str, Dict[int, str]],
    external_data: bool = False,
    shapes: Dict[str, Sequence[int]] | None = None,
) -> None:
    """Legacy TorchScript export (dynamo=False), opset 17, constant folding, then
    `onnx.checker`. Writes to a temp name and renames, so a failure leaves no file.

    `shapes` (name -> dims, -1 = dynamic) pins the graph's declared I/O shapes to the
    contract where the tracer lost a static dim (e.g. after a concat)."""
    tmpdir = path + ".tmpdir"
    shutil.rmtree(tmpdir, ignore_errors=True)
    os.makedirs(tmpdir)
    try:
        raw = os.path.join(tmpdir, "raw.onnx")  # >2 GB models: torch writes external tensors here
        module.eval()
        with torch.no_grad():
            torch.onnx.export(
                module,
                args,
                raw,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        m = onnx.load(raw)
        # Strip anything that could vary between runs or machines (doc strings carry
        # source paths); the graph itself is deterministic.
        m.doc_string = ""
        for n in m.graph.node:
            n.doc_string = ""
        if shapes:
            _pin_shapes(m, shapes, dynamic_axes)
        m.producer_name = "grefine-export"
        m.producer_version = torch.__version__
        out = os.path.join(tmpdir, "out.onnx")
        if external_data:
            loc = os.path.basename(path) + ".data"
            onnx.save_model(m, out, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=loc, size_threshold=1024)
            onnx.checker.check_model(out)
            os.replace(os.path.join(tmpdir, loc), os.path.join(os.path.dirname(path), loc))
        else:
            onnx.checker.check_model(m, full_check=True)
            onnx.save_model(m, out)
        os.replace(out, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _pin_shapes(m: onnx.ModelProto, shapes, dynamic_axes) -> None:
    for v in list(m.graph.input) + list(m.graph.output):
        if v.name not in shapes:
            continue
        want = list(shapes[v.name])
        dims = v.type.tensor_type.shape.dim
        if len(dims) != len(want):
            raise ExportError(f"export: {v.name}: rank {len(dims)}, contract {want}")
        for i, (d, w) in enumerate(zip(dims, want)):
            if w == -1:
                name = dynamic_axes.get(v.name, {}).get(i)
                if name is None:
                    raise ExportError(f"export: {v.name}: dim {i} is dynamic in the contract only")
                d.Clear()
                d.dim_param = name
            elif d.HasField("dim_value"):
                if d.dim_value != w:
                    raise ExportError(f"export: {v.name}: dim {i} is {d.dim_value}, contract {w}")
            else:
                d.Clear()
                d.dim_value = w


def ort_session(path: str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


def verify_ort(name: str, path: str, feeds: Dict[str, np.ndarray], want: Dict[str, np.ndarray],
               tol: float = 1e-5) -> Dict[str, float]:
    """Runs the ONNX file with onnxruntime and compares every output with PyTorch's.
    Returns the max abs difference per output; raises ExportError above `tol`."""
    sess = ort_session(path)
    names = list(want.keys())
    outs = sess.run(names, feeds)
    diffs = {}
    for n, got in zip(names, outs):
        ref = want[n]
        if got.shape != ref.shape:
            raise ExportError(f"export: {name}: ort output {n} shape {got.shape}, torch {ref.shape}")
        if not np.all(np.isfinite(got)):
            raise ExportError(f"export: {name}: ort output {n} has non-finite values")
        d = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64)))) if got.size else 0.0
        diffs[n] = d
        if d > tol:
            raise ExportError(f"export: {name}: ort vs torch max abs diff {d:.3g} on {n} exceeds {tol:g}")
    return diffs


class HalfPrecision(torch.nn.Module):
    """Runs a copy of `inner` in float16 with float32 I/O: floating inputs are cast to half,
    parameters and buffers are half, floating outputs are cast back to float32. The exported
    graph keeps the engine contract (float32 I/O) and carries fp16 weights and compute."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = copy.deepcopy(inner).half().eval()

    def forward(self, *args):
        out = self.inner(*[a.half() if a.is_floating_point() else a for a in args])
        if isinstance(out, (tuple, list)):
            return tuple(o.float() if o.is_floating_point() else o for o in out)
        return out.float() if out.is_floating_point() else out


def fp16_parity(name: str, half: torch.nn.Module, ref: torch.nn.Module, in_names: Sequence[str],
                out_names: Sequence[str], feeds: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """Compares the fp16 module with its fp32 original on feeds. Rule: for every output,
    max |fp16 - fp32| <= FP16_TOL * max(1, max |fp32|) (fp16 keeps ~3 decimal digits; the
    limit leaves room for the error growing through the layers of the tiny random nets).
    Returns the max abs difference scaled by max(1, max |fp32|) per output."""
    with torch.no_grad():
        got = half(*[feeds[n] for n in in_names])
        want = ref(*[feeds[n] for n in in_names])
    if not isinstance(got, (tuple, list)):
        got, want = (got,), (want,)
    rel = {}
    for n, g, w in zip(out_names, got, want):
        if not torch.isfinite(g).all():
            raise ExportError(f"export: {name}: fp16 output {n} has non-finite values")
        scale = max(1.0, float(w.abs().max())) if w.numel() else 1.0
        d = float((g.double() - w.double()).abs().max()) / scale if w.numel() else 0.0
        rel[n] = d
        if d > FP16_TOL:
            raise ExportError(f"export: {name}: fp16 vs fp32 max abs diff {d:.3g} (scaled) on {n} exceeds {FP16_TOL:g}")
    return rel


def export_engine(ms, name: str, module: torch.nn.Module, inputs: Sequence[Dict], outputs: Sequence[Dict],
                  dynamic: Dict[str, Dict[int, str]], trace_feeds: Dict[str, torch.Tensor],
                  verify_feeds: Sequence[Dict[str, torch.Tensor]], tol: float = 1e-5,
                  external_data: bool = False) -> None:
    """Exports one engine into the model set `ms`, pins its I/O to the contract
    (`inputs`/`outputs`: name, dtype, shape with -1 = dynamic), checks the contract, runs
    onnxruntime against PyTorch on every feed of `verify_feeds`, and adds the manifest
    entry. `trace_feeds` is the example the tracer records (pick shapes that take the
    general code paths, e.g. a UNet latent that is not a multiple of its up factor)."""
    file = name + ".onnx"
    path = ms.path(file)
    in_names = [d["name"] for d in inputs]
    out_names = [d["name"] for d in outputs]
    shapes = {d["name"]: d["shape"] for d in list(inputs) + list(outputs)}
    module.eval()
    if PRECISION == "fp16" and name not in FP32_ENGINES:
        ref, module = module, HalfPrecision(module)
        for feeds in [trace_feeds] + list(verify_feeds):
            rel = fp16_parity(name, module, ref, in_names, out_names, feeds)
            ms.report.append(f"{name}: fp16 vs fp32 torch max abs diff / max(1,|ref|) "
                             + ", ".join(f"{k} {v:.3g}" for k, v in rel.items()) + f" (limit {FP16_TOL:g})")
        tol = max(tol, FP16_TOL)  # onnxruntime's fp16 kernels round differently from torch's
    export_onnx(name, module, tuple(trace_feeds[n] for n in in_names), path, in_names, out_names,
                dynamic, external_data=external_data, shapes=shapes)
    desc = check_contract(name, path, inputs, outputs)
    for feeds in [trace_feeds] + list(verify_feeds):
        with torch.no_grad():
            got = module(*[feeds[n] for n in in_names])
        if not isinstance(got, (tuple, list)):
            got = (got,)
        want = {n: g.detach().numpy() for n, g in zip(out_names, got)}
        np_feeds = {n: feeds[n].numpy() for n in in_names}
        d = verify_ort(name, path, np_feeds, want, tol=tol)
        shape = "x".join(str(s) for s in feeds[in_names[0]].shape)
        ms.report.append(f"{name}: ort vs torch max abs diff "
                         + ", ".join(f"{k} {v:.3g}" for k, v in d.items()) + f" ({in_names[0]} {shape})")
    ms.add_engine(name, file, desc, data_file=(file + ".data") if external_data else None)
