"""The committed sample image and the CLIP preprocessing reference (DESIGN §1.1).

`make_sample()` draws `testdata/images/sample.png` deterministically (320×240 RGB: smooth
gradients, a disc, a rectangle, a triangle, thin stripes; no randomness).

`clip_preprocess()` is CLIP-Surgery's `_transform(224)` without torchvision: PIL
`resize((224, 224), BICUBIC)` (a squash, antialiased PIL bicubic), RGB, then in float32
x/255, (x - mean)/std per channel, CHW. torchvision's ToTensor/Normalize do exactly these
float32 operations in this order.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

CLIP_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def make_sample(width: int = 320, height: int = 240) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / (width - 1), y / (height - 1)
    r = 40 + 180 * u
    g = 60 + 150 * v
    b = 128 + 100 * np.sin(2 * np.pi * (u + v) / 1.5)
    img = np.stack([r, g, b], axis=-1)
    # a soft-edged disc
    d = np.hypot(x - 0.3 * width, y - 0.45 * height)
    a = np.clip((0.18 * height - d) / 2.0, 0, 1)[..., None]
    img = img * (1 - a) + np.array([230.0, 40.0, 30.0]) * a
    # a hard rectangle
    m = (x > 0.6 * width) & (x < 0.85 * width) & (y > 0.15 * height) & (y < 0.5 * height)
    img[m] = (20.0, 70.0, 200.0)
    # a triangle
    t = (y > 0.6 * height) & (y < 0.9 * height) & (np.abs(x - 0.7 * width) < (y - 0.6 * height) * 0.8)
    img[t] = (250.0, 220.0, 40.0)
    # fine stripes (high frequency: exercises the antialiasing filter)
    s = (y > 0.05 * height) & (y < 0.25 * height) & (x > 0.05 * width) & (x < 0.4 * width)
    img[s & ((x.astype(int) // 2) % 2 == 0)] = (255.0, 255.0, 255.0)
    arr = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return Image.fromarray(arr, mode="RGB")


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


def clip_preprocess(img: Image.Image) -> torch.Tensor:
    """PIL image -> f32 [1,3,224,224]."""
    img = img.convert("RGB").resize((CLIP_SIZE, CLIP_SIZE), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(CLIP_STD, dtype=torch.float32)[:, None, None]
    return ((x - mean) / std)[None].contiguous()
