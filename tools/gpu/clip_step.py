"""Full-size CLIP-Surgery image encoder and CLIP text encoder (ViT-B/16, seeded random
weights) timed with PyTorch on the GPU, for tools/gpu/verify-gpu.sh step c.

NOT YET RUN on a GPU. The weights are the transformers directory that
tools/export/make_random_full.py writes; tools/export/export.py exports the same weights to
the ONNX files TensorRT builds plans from, so both sides run identical networks.

    python3 tools/gpu/clip_step.py --clip DIR/clip --out DIR/pytorch-clip.json [--runs 50]
    python3 tools/gpu/clip_step.py --clip DIR/clip --out F --smoke     # CPU, 2 runs: checks the script

Times (median and min over --runs, after 3 warm-ups, inputs already on the device, one
torch.cuda.synchronize per run): the image encoder at batch 1 (224²: what assess runs per
image) and the text encoder at batch 85 (one prompt part times the 85 templates), each in
float32 (TF32 off), float32 with TF32, and float16.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "export"))
import clip_engines  # noqa: E402  (tools/export; in the bundle beside this file)


def timed(fn, runs, sync):
    with torch.inference_mode():
        for _ in range(3):
            fn()
        sync()
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            sync()
            ts.append(time.perf_counter() - t)
    ts.sort()
    return {"median_ms": ts[len(ts) // 2] * 1e3, "min_ms": ts[0] * 1e3, "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", required=True, help="transformers CLIP directory (make_random_full.py --out DIR: DIR/clip)")
    ap.add_argument("--out", required=True, help="JSON report")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--smoke", action="store_true", help="CPU, 2 runs")
    a = ap.parse_args()
    if a.smoke:
        dev, runs = torch.device("cpu"), 2
    else:
        assert torch.cuda.is_available(), "no CUDA device visible to PyTorch"
        dev, runs = torch.device("cuda"), a.runs
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    clip = clip_engines.load_clip(a.clip)
    image = clip_engines.ClipSurgery(clip).eval().to(dev)
    text = clip_engines.ClipText(clip).eval().to(dev)
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(1, 3, 224, 224, generator=g).to(dev)
    ids = torch.randint(1, clip_engines.EOS_ID, (85, clip_engines.CONTEXT), generator=g, dtype=torch.int32)
    ids[:, 20] = clip_engines.EOS_ID  # EOS position (argmax of the ids)
    ids = ids.to(dev)
    rep = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu (smoke)",
           "note": "random weights; inputs on the device; host copies excluded", "image_batch": 1, "text_batch": 85}
    modes = [("fp32", torch.float32, False), ("tf32", torch.float32, True), ("fp16", torch.float16, False)]
    if dev.type == "cpu":
        modes = modes[:1]
    for name, dtype, tf32 in modes:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        im, tx = image.to(dtype), text.to(dtype)
        px = pixels.to(dtype)
        rep[f"image_{name}"] = timed(lambda: im(px), runs, sync)
        rep[f"text_{name}"] = timed(lambda: tx(ids), runs, sync)
        print(name, json.dumps({k: v for k, v in rep.items() if k.endswith(name)}), flush=True)
    with open(a.out, "w") as f:
        json.dump(rep, f, indent=1)
    print("pytorch clip:", json.dumps(rep), flush=True)


if __name__ == "__main__":
    main()
