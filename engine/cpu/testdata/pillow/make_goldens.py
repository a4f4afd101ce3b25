"""Goldens for engine/cpu's Pillow-exact resize (ResizeImage): seeded random RGB images and Pillow's
BICUBIC resizes of them. Run from the repo root: .venv/bin/python engine/cpu/testdata/pillow/make_goldens.py
Deterministic (fixed seed, PNG output without timestamps)."""
import json
import os

import numpy as np
import PIL
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(1234)
cases = []
# (in_w, in_h, out_w, out_h): down, up, ragged, one side unchanged, CLIP squash, and CLIP's
# squash of a tall image (Pillow 13 runs the vertical pass first: in_h-out_h > 2*(in_w-out_w))
for i, (iw, ih, ow, oh) in enumerate([(320, 240, 224, 224), (61, 47, 224, 224), (97, 13, 31, 40),
                                      (50, 50, 50, 17), (333, 200, 71, 200), (7, 5, 3, 2), (1, 1, 4, 3),
                                      (60, 400, 224, 224), (300, 700, 224, 224)]):
    # smooth field + noise so both flat and sharp regions are exercised
    yy, xx = np.mgrid[0:ih, 0:iw]
    base = np.stack([(xx * 255 / max(iw - 1, 1)), (yy * 255 / max(ih - 1, 1)), ((xx + yy) % 64) * 4], -1)
    noise = rng.integers(-60, 61, size=(ih, iw, 3))
    img = np.clip(base + noise, 0, 255).astype(np.uint8)
    src = f"src{i}.png"
    dst = f"pil{i}_{ow}x{oh}.png"
    Image.fromarray(img, "RGB").save(os.path.join(here, src))
    Image.fromarray(img, "RGB").resize((ow, oh), Image.BICUBIC).save(os.path.join(here, dst))
    cases.append({"src": src, "dst": dst, "w": ow, "h": oh})
with open(os.path.join(here, "resize_cases.json"), "w") as f:
    json.dump({"pillow": PIL.__version__, "cases": cases}, f, indent=1)
