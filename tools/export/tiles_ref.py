#!/usr/bin/env python3
"""Goldens for large images (issue 22): diffusers' tiled VAE, diffusers' mask-cropped
inpainting (`padding_mask_crop`) and a reference loop of tiled denoising, on the tiny
model set. Writes testdata/goldens/tiles/ (README.md there lists every file).

Usage
  tiles_ref.py            # write testdata/goldens/tiles/ (runs twice in-process, compares sha256)
  tiles_ref.py --check    # regenerate into a temp dir; fail if the committed goldens differ
  tiles_ref.py --once     # one run only (no determinism check)

The script re-executes itself with the exporter's pinned environment (ATEN_CPU_CAPABILITY=avx2,
one thread, PYTHONHASHSEED=0; see tools/fixtures.sh) so the bytes do not depend on the CPU.
It rebuilds the tiny SDXL and PASD components exactly as tools/export/sdxl_export.py and
pasd_export.py build them (same seeds), and refuses to write anything unless every rebuilt
network equals the committed ONNX file (onnxruntime, <= 1e-4) and the committed goldens it
reuses. Run it after `make fixtures` (the tiny models change every golden here).

1. Tiled VAE (diffusers 0.31 AutoencoderKL.enable_tiling: `_tiled_encode`, `tiled_decode`,
   `blend_v`, `blend_h`), with tile_sample_min_size T, tile_latent_min_size T/8 and
   tile_overlap_factor f set on the model so that the tiny images really tile, with ragged
   last tiles (slivers down to one latent pixel) and non-square images. Per case: the input
   image, every tile's raw network output in diffusers' order (rows, then columns), the
   blended result; the decode case decodes the tiled encoding. Only configurations where
   T·(1-f) and T·f/8 are whole multiples of the VAE grid are used: elsewhere diffusers'
   tiles do not line up with the latent grid (its output size then differs from H/8).

2. Mask crop (diffusers 0.31 StableDiffusionXLInpaintPipeline with padding_mask_crop):
   `VaeImageProcessor.get_crop_region` on many masks (JSON), `_resize_and_fill` /
   `_resize_and_crop` (Lanczos, PIL) on several boxes (PNG), and two full pipeline runs on
   the tiny SDXL-Inpainting set with the stage-1 parity patches (VAE latent mean instead of a
   sample, fixed initial noise): the crop box, the cropped and filled working image and mask,
   the latents per step, the working-size result handed to `apply_overlay`, and the final
   image. diffusers' `apply_overlay` pastes the box into a canvas of the *working* size, so
   the pipeline runs use images whose size is the working size (as diffusers expects); the
   paste at another size is covered by `overlay_at` below (apply_overlay's body with the
   canvas at the original's size), checked equal to diffusers' where the sizes agree.

3. Tiled denoising (no diffusers reference exists for SDXL-Inpaint; PASD's own pipeline
   tiles its latents the same way). The reference loop, per denoising step i:
     x_in  = scheduler.scale_model_input(latents, t_i)               (full latent)
     for each tile k (raster order: rows top to bottom, columns left to right):
        window (y, x, th, tw) from the tile grid (below), in latent pixels
        pred_k = unet(tile of the UNet inputs at the window (the control image at 8x the
                 window), CFG batch [uncond; cond])                   [2, 4, th, tw]
        acc[:, :, y:y+th, x:x+tw] += pred_k * w_k                     (float32)
        wsum[y:y+th, x:x+tw]     += w_k                               (float32)
     eps = acc / wsum ; eps = u + g·(c - u) ; latents = scheduler.step(eps, t_i, latents)
   Because CFG and every scheduler step used here are linear in the model output for a
   fixed sample, this equals MultiDiffusion (step each tile, then average the tiles'
   x_{t-1} with the same weights) exactly in real arithmetic.
   Tile grid per axis (size n, tile T, overlap o < T): n <= T: one tile [0, n); else
   k = ceil((n - T)/(T - o)) + 1 tiles starting at j·(T - o) for j < k-1 and the last at
   n - T (PASD's placement: the last tile is clamped to the end, so all tiles have the same
   size and batch together). Weights w_k: "uniform" (1 everywhere, MultiDiffusion) or
   "gaussian" (PASD's _gaussian_weights: outer(y_probs, x_probs) with
   x_probs[x] = exp(-(x - (tw-1)/2)^2 / tw^2 / (2·0.01)) / sqrt(2π·0.01) and
   y_probs[y] = exp(-(y - th/2)^2 / th^2 / (2·0.01)) / sqrt(2π·0.01), computed in float64
   and rounded to float32 here; PASD multiplies in float64). SDXL tiles get the time ids
   (8·th, 8·tw, 0, 0, 8·th, 8·tw): each tile is presented as a whole image of its size.
   md_pasd: PASD stand-in, UniPC, Gaussian weights; md_sdxl: SDXL-Inpainting, Euler,
   uniform weights, no masked latent blending (as the stage-1 parity golden). Both encode
   with the tiled VAE and decode with it.
"""

from __future__ import annotations

import os
import sys

_PINNED = {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "CUDA_VISIBLE_DEVICES": "", "ATEN_CPU_CAPABILITY": "avx2"}
if __name__ == "__main__" and any(os.environ.get(k) != v for k, v in _PINNED.items()):
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:],
              dict(os.environ, **_PINNED))

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402
from typing import Dict, List, Tuple  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import clip_consts  # noqa: E402
import common  # noqa: E402
import diffusion  # noqa: E402
import images  # noqa: E402
import pasd_export  # noqa: E402
import sdxl_export  # noqa: E402

OUT_DIR = os.path.join(ROOT, "testdata", "goldens", "tiles")
TINY_DIR = os.path.join(ROOT, "testdata", "models", "tiny")
GOLDENS = os.path.join(ROOT, "testdata", "goldens")
FACTOR = 8

SEED_CROP_CASES = 22000
SEED_MD_PASD = 22001
SEED_MD_SDXL = 22002
SEED_CROP_PIPE = 22003
SEED_VERIFY = 22004

# (name, vae, tile_sample_min_size, tile_overlap_factor, width, height)
VAE_CASES = [
    ("sdxl_t64_o25", "sdxl", 64, 0.25, 200, 152),
    ("sdxl_t32_o50", "sdxl", 32, 0.5, 88, 56),
    ("pasd_t64_o375", "pasd", 64, 0.375, 136, 104),
]


class TilesRefError(RuntimeError):
    pass


# --------------------------------------------------------------------------- files

class Out:
    """Collects the files written, with a line each for the README table."""

    def __init__(self, d: str):
        self.d = d
        self.rows: List[Tuple[str, str, str, str]] = []
        os.makedirs(d, exist_ok=True)

    def npy(self, name: str, arr, how: str) -> None:
        arr = arr.detach().numpy() if torch.is_tensor(arr) else np.asarray(arr)
        common.write_npy(os.path.join(self.d, name), arr)
        kind = "float32" if arr.dtype.kind == "f" else "int32"
        self.rows.append((name, kind, str(list(arr.shape)), how))

    def png(self, name: str, img: Image.Image, how: str) -> None:
        common.write_bytes(os.path.join(self.d, name), images.png_bytes(img))
        self.rows.append((name, f"PNG {img.mode}", f"{img.width}x{img.height}", how))

    def json(self, name: str, obj, how: str) -> None:
        common.write_json(os.path.join(self.d, name), obj)
        self.rows.append((name, "json", "-", how))


def to_np01(img: Image.Image) -> np.ndarray:
    """PIL RGB -> float32 [1,3,H,W] in [0,1]."""
    return (np.asarray(img, dtype=np.uint8).astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()


# --------------------------------------------------------------------------- components

def build() -> Dict[str, dict]:
    return {"sdxl": sdxl_export.tiny_components(), "pasd": pasd_export.tiny_components()}


def verify(c: Dict[str, dict]) -> Dict:
    """The rebuilt modules must be the committed ONNX engines and reproduce the committed
    goldens this script reuses; returns the sha256s for version.json."""
    import onnxruntime as ort

    g = common.generator(SEED_VERIFY)
    worst = {}

    def check(name, module, feeds):
        path = os.path.join(TINY_DIR, name + ".onnx")
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = sess.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
        with torch.no_grad():
            want = module(*feeds.values()).numpy()
        d = float(np.abs(got - want).max())
        worst[name] = d
        if not d <= 1e-4:
            raise TilesRefError(f"tiles_ref: rebuilt {name} differs from the committed ONNX by {d:.3g}: "
                                "run `make fixtures` first, or the exporter's seeds changed")

    img = torch.rand(1, 3, 40, 56, generator=g) * 2 - 1
    z = torch.randn(1, 4, 5, 7, generator=g) * 3
    for grp in ("sdxl", "pasd"):
        vae = c[grp]["vae"]
        check(f"{grp}_vae_encoder", diffusion.VaeEncoder(vae), {"images": img})
        check(f"{grp}_vae_decoder", diffusion.VaeDecoder(vae), {"latent": z})
    s = c["sdxl"]
    check("sdxl_unet", diffusion.SdxlUnet(s["unet"]), {
        "sample": torch.randn(2, 9, 5, 7, generator=g), "timestep": torch.tensor([637.0]),
        "encoder_hidden_states": torch.randn(2, 77, 24, generator=g),
        "text_embeds": torch.randn(2, 20, generator=g),
        "time_ids": torch.tensor([[40.0, 56.0, 0.0, 0.0, 40.0, 56.0]] * 2)})
    p = c["pasd"]
    check("pasd_unet", diffusion.PasdUnet(p["controlnet"], p["unet"]).eval(), {
        "sample": torch.randn(2, 4, 5, 7, generator=g), "timestep": torch.tensor([801.0]),
        "encoder_hidden_states": torch.randn(2, 77, 8, generator=g),
        "control": torch.rand(2, 3, 40, 56, generator=g)})
    # the committed PASD text hidden states (md_pasd reuses the prompt) and SDXL embeddings
    hidden = pasd_text(p)
    want = np.load(os.path.join(GOLDENS, "pasd_text_hidden.npy"))
    if not np.array_equal(hidden.numpy(), want):
        raise TilesRefError("tiles_ref: pasd_text_hidden.npy differs from the rebuilt text encoder: run `make fixtures`")
    sums = {}
    for name in sorted(worst):
        sums[name + ".onnx"] = common.sha256_file(os.path.join(TINY_DIR, name + ".onnx"))
    return {"rebuilt_vs_onnx_max_abs": {k: float(f"{v:.3g}") for k, v in sorted(worst.items())},
            "onnx_sha256": sums, "models_json_sha256": common.sha256_file(os.path.join(TINY_DIR, "models.json")),
            "torch": torch.__version__, "diffusers": __import__("diffusers").__version__,
            "numpy": np.__version__, "pillow": Image.__version__}


@torch.no_grad()
def pasd_text(p: dict) -> torch.Tensor:
    prompt = sdxl_export.PROMPT.split(",")[0] + pasd_export.PROMPT_SUFFIX
    ids = diffusion.pad_ids(clip_consts.tokenize([pasd_export.NEGATIVE, prompt]), diffusion.PAD_EOS)
    return p["text_encoder"](ids.long()).last_hidden_state


# --------------------------------------------------------------------------- 1. tiled VAE

def set_tiling(vae, tile: int, overlap: float) -> None:
    vae.enable_tiling()
    vae.tile_sample_min_size = tile
    vae.tile_latent_min_size = tile // FACTOR
    vae.tile_overlap_factor = overlap


def vae_layout(n: int, tile: int, overlap: float, encode: bool) -> Dict:
    """diffusers' tile starts along one axis of size n (input units), as its loops make them."""
    tl = tile // FACTOR
    if encode:
        stride, blend, keep, tin = int(tile * (1 - overlap)), int(tl * overlap), tl - int(tl * overlap), tile
    else:
        stride, blend, keep, tin = int(tl * (1 - overlap)), int(tile * overlap), tile - int(tile * overlap), tl
    starts = list(range(0, n, stride))
    return {"stride": stride, "blend": blend, "keep": keep, "tile": tin, "starts": starts,
            "sizes": [min(tin, n - s) for s in starts]}


@torch.no_grad()
def tiled(vae, x: torch.Tensor, encode: bool):
    """diffusers' tiled encode (latent mean) or decode of x, with every tile's raw output
    (captured by a forward hook, cloned before diffusers blends it in place)."""
    tiles: List[torch.Tensor] = []
    mod = vae.quant_conv if encode else vae.decoder
    h = mod.register_forward_hook(lambda _m, _a, out: tiles.append(out.detach().clone()))
    try:
        if encode:
            y = vae.encode(x).latent_dist.mean
            tiles = [t[:, : vae.config.latent_channels] for t in tiles]
        else:
            y = vae.decode(x).sample
    finally:
        h.remove()
    return y, tiles


def vae_goldens(out: Out, c: Dict[str, dict]) -> None:
    cases = []
    for name, grp, tile, ov, W, H in VAE_CASES:
        vae = c[grp]["vae"]
        if (tile * (1 - ov)) % FACTOR or (tile // FACTOR * ov) % 1 or int(tile * (1 - ov)) != \
                FACTOR * (tile // FACTOR - int(tile // FACTOR * ov)):
            raise TilesRefError(f"tiles_ref: {name}: tile {tile} overlap {ov} does not line up with the latent grid")
        img = torch.from_numpy(to_np01(images.make_sample(W, H))) * 2 - 1
        set_tiling(vae, tile, ov)
        try:
            enc, enc_tiles = tiled(vae, img, True)
            dec, dec_tiles = tiled(vae, enc, False)
        finally:
            vae.disable_tiling()
        ly, lx = vae_layout(H, tile, ov, True), vae_layout(W, tile, ov, True)
        dy, dx = vae_layout(H // FACTOR, tile, ov, False), vae_layout(W // FACTOR, tile, ov, False)
        if len(enc_tiles) != len(ly["starts"]) * len(lx["starts"]) or \
                len(dec_tiles) != len(dy["starts"]) * len(dx["starts"]):
            raise TilesRefError(f"tiles_ref: {name}: diffusers ran {len(enc_tiles)}/{len(dec_tiles)} tiles, "
                                "the layout says otherwise")
        for t, (i, j) in zip(enc_tiles, [(i, j) for i in range(len(ly["starts"])) for j in range(len(lx["starts"]))]):
            if tuple(t.shape[2:]) != (ly["sizes"][i] // FACTOR, lx["sizes"][j] // FACTOR):
                raise TilesRefError(f"tiles_ref: {name}: encode tile {i},{j} has shape {tuple(t.shape)}")
        if tuple(enc.shape) != (1, 4, H // FACTOR, W // FACTOR) or tuple(dec.shape) != (1, 3, H, W):
            raise TilesRefError(f"tiles_ref: {name}: tiled shapes {tuple(enc.shape)} {tuple(dec.shape)}")
        with torch.no_grad():
            e0 = vae.encode(img).latent_dist.mean
        out.npy(f"vae_{name}_image.npy", img, f"input image, sample.png drawn at {W}x{H}, x*2-1")
        out.npy(f"vae_{name}_enc_tiles.npy", torch.cat([t.flatten() for t in enc_tiles]),
                "every encode tile's latent mean (quant_conv output, first 4 channels), flattened and "
                "concatenated in diffusers' order (rows, then columns)")
        out.npy(f"vae_{name}_enc.npy", enc, "tiled encode: latent mean (unscaled)")
        out.npy(f"vae_{name}_dec_tiles.npy", torch.cat([t.flatten() for t in dec_tiles]),
                "every decode tile's output (decoder of post_quant_conv(tile)), flattened, same order")
        out.npy(f"vae_{name}_dec.npy", dec, f"tiled decode of vae_{name}_enc.npy (not clamped)")
        cases.append({"name": name, "vae": grp, "tile_sample_min_size": tile,
                      "tile_latent_min_size": tile // FACTOR, "tile_overlap_factor": ov,
                      "width": W, "height": H,
                      "encode": {"y": ly, "x": lx}, "decode": {"y": dy, "x": dx},
                      "untiled_vs_tiled_encode_max_abs": round(float((e0 - enc).abs().max()), 4)})
    out.json("vae_cases.json", {"factor": FACTOR, "cases": cases},
             "per case: VAE, tiling settings, size, diffusers' tile starts/sizes, stride, blend extent "
             "and kept size per axis for encode (pixels in, latents out) and decode (latents in, pixels out)")


# --------------------------------------------------------------------------- 2. mask crop

def draw_mask(w: int, h: int, rects) -> Image.Image:
    m = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(m)
    for x0, y0, x1, y1 in rects:  # half-open pixel ranges
        d.rectangle([x0, y0, x1 - 1, y1 - 1], fill=255)
    return m


def crop_cases() -> List[Dict]:
    from diffusers.image_processor import VaeImageProcessor

    rs = np.random.RandomState(SEED_CROP_CASES)
    sizes = [(64, 48), (200, 152), (97, 131), (300, 80), (80, 300), (1024, 768), (33, 17)]
    procs = [(64, 48), (1024, 1024), (1024, 768), (768, 1024), (1344, 768), (832, 1216)]
    pads = [0, 1, 4, 32, 100, 5000]
    cases = []

    def add(name, w, h, rects, pw, ph, pad):
        box = VaeImageProcessor.get_crop_region(draw_mask(w, h, rects), pw, ph, pad=pad)
        cases.append({"name": name, "mask_width": w, "mask_height": h, "rects": rects,
                      "width": pw, "height": ph, "pad": pad, "box": [int(v) for v in box]})

    for w, h in sizes:
        for pw, ph in procs:
            pad = pads[rs.randint(len(pads))]
            rects = []
            for _ in range(1 + rs.randint(3)):
                x0, y0 = rs.randint(w), rs.randint(h)
                rects.append([int(x0), int(y0), int(min(w, x0 + 1 + rs.randint(max(1, w // 3)))),
                              int(min(h, y0 + 1 + rs.randint(max(1, h // 3))))])
            add(f"random_{w}x{h}_{pw}x{ph}", w, h, rects, pw, ph, pad)
    for pad in (0, 7):
        add(f"corner_tl_p{pad}", 64, 48, [[0, 0, 1, 1]], 1024, 768, pad)
        add(f"corner_br_p{pad}", 64, 48, [[63, 47, 64, 48]], 1024, 768, pad)
        add(f"full_p{pad}", 64, 48, [[0, 0, 64, 48]], 1024, 1024, pad)
        add(f"wide_strip_p{pad}", 200, 152, [[0, 70, 200, 80]], 1024, 768, pad)
        add(f"tall_strip_p{pad}", 200, 152, [[90, 0, 97, 152]], 1024, 768, pad)
        add(f"wide_bottom_p{pad}", 200, 152, [[10, 140, 190, 152]], 768, 1024, pad)
        add(f"tall_right_p{pad}", 200, 152, [[195, 5, 200, 150]], 1344, 768, pad)
        add(f"two_far_p{pad}", 300, 80, [[2, 3, 10, 9], [280, 60, 297, 77]], 832, 1216, pad)
    return cases


def resize_goldens(out: Out) -> List[Dict]:
    """_resize_and_fill (image and mask, as preprocess(crops_coords, resize_mode='fill') runs
    them) and _resize_and_crop (apply_overlay's paste) on boxes that hit every branch."""
    from diffusers.image_processor import VaeImageProcessor

    ip = VaeImageProcessor(vae_scale_factor=FACTOR)
    mp = VaeImageProcessor(vae_scale_factor=FACTOR, do_normalize=False, do_binarize=True, do_convert_grayscale=True)
    src = images.make_sample(200, 152)
    mask = draw_mask(200, 152, [[30, 20, 90, 70], [120, 100, 170, 140]])
    cases = []
    # (box, working width, height): exact aspect, crop wider (fill top/bottom), crop taller
    # (fill left/right), a 1-pixel-off aspect, a downscale, and a box at the image's edge
    for k, (box, w, h) in enumerate([((20, 10, 100, 70), 64, 48), ((10, 40, 180, 90), 64, 48),
                                     ((60, 0, 100, 150), 96, 64), ((30, 20, 71, 50), 64, 48),
                                     ((0, 0, 200, 152), 48, 32), ((150, 100, 200, 152), 104, 72)]):
        crop = src.crop(box)
        filled = ip._resize_and_fill(crop, w, h)
        # what the pipeline's preprocess makes of it (crop, fill, to tensor): must be the same pixels
        t = ip.preprocess(src, height=h, width=w, crops_coords=box, resize_mode="fill")
        if not torch.equal(t, ip.normalize(torch.from_numpy(to_np01(filled)))):
            raise TilesRefError(f"tiles_ref: resize case {k}: preprocess differs from _resize_and_fill")
        mfill = mp._resize_and_fill(mask.crop(box), w, h).convert("L")
        mt = mp.preprocess(mask, height=h, width=w, crops_coords=box, resize_mode="fill")
        want = (torch.from_numpy(np.asarray(mfill, dtype=np.float32) / 255)[None, None] >= 0.5).float()
        if not torch.equal(mt, want):
            raise TilesRefError(f"tiles_ref: resize case {k}: mask preprocess differs from _resize_and_fill + binarize")
        back = ip._resize_and_crop(filled, box[2] - box[0], box[3] - box[1])
        out.png(f"resize_{k}_fill.png", filled, f"_resize_and_fill(sample 200x152 .crop({box}), {w}, {h})")
        out.png(f"resize_{k}_mask_fill.png", mfill, f"_resize_and_fill(resize_mask.png .crop({box}), {w}, {h}), L")
        out.png(f"resize_{k}_crop.png", back, f"_resize_and_crop(resize_{k}_fill.png, {box[2] - box[0]}, "
                                              f"{box[3] - box[1]})")
        cases.append({"name": f"resize_{k}", "box": list(box), "width": w, "height": h})
    out.png("resize_source.png", src, "source of the resize cases: sample.png drawn at 200x152")
    out.png("resize_mask.png", mask, "mask of the resize cases (L, 0/255)")
    return cases


PIL_CASES = [  # (name, source "rgb"|"l", filter, width, height, box or None)
    ("lanczos_down", "rgb", "lanczos", 73, 55, None),
    ("lanczos_up", "rgb", "lanczos", 311, 240, None),
    ("bicubic_box", "rgb", "bicubic", 64, 48, (10.5, 20.25, 150.75, 100.0)),
    ("lanczos_zero_width_box", "rgb", "lanczos", 5, 30, (30.0, 40.0, 30.0, 100.0)),
    ("lanczos_l", "l", "lanczos", 50, 40, None),
    ("bicubic_l_bottom_edge", "l", "bicubic", 200, 3, (0.0, 152.0, 200.0, 152.0)),
    ("lanczos_integral_box", "rgb", "lanczos", 64, 48, (20.0, 30.0, 84.0, 78.0)),
    ("bicubic_vertical_only", "rgb", "bicubic", 200, 77, None),
    # Pillow 13 runs the vertical pass first when H-h > 2(W-w): the pass order shows in the bytes
    ("lanczos_vertical_first", "rgb", "lanczos", 150, 40, None),
    ("bicubic_vertical_first", "rgb", "bicubic", 190, 33, None),
    ("lanczos_l_vertical_first_box", "l", "lanczos", 150, 20, (5.5, 10.0, 160.0, 150.0)),
]


def pil_goldens(out: Out) -> List[Dict]:
    """Pillow's Image.resize with both filters, boxes (fractional, zero-extent, integral),
    RGB and L: the resampler the crop path needs (pipeline/imageio.ResizePIL)."""
    srcs = {"rgb": images.make_sample(200, 152),
            "l": draw_mask(200, 152, [[30, 20, 90, 70], [120, 100, 170, 140]])}
    filters = {"lanczos": Image.LANCZOS, "bicubic": Image.BICUBIC}
    cases = []
    for name, src, f, w, h, box in PIL_CASES:
        r = srcs[src].resize((w, h), resample=filters[f], box=box)
        out.png(f"pil_{name}.png", r, f"resize_{'source' if src == 'rgb' else 'mask'}.png .resize(({w}, {h}), "
                                      f"{f.upper()}, box={box})")
        cases.append({"name": name, "source": src, "filter": f, "width": w, "height": h,
                      "box": list(box) if box else None})
    return cases


def overlay_at(ip, mask: Image.Image, init_image: Image.Image, image: Image.Image, box) -> Image.Image:
    """diffusers' apply_overlay with the canvas at the original's size (the box is in the
    original's pixels): the working-size result is resized ("crop" mode, Lanczos) into the
    box, pasted, and the original shows through outside the mask."""
    from PIL import ImageOps

    width, height = init_image.size
    masked = Image.new("RGBa", (width, height))
    masked.paste(init_image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(mask.convert("L")))
    masked = masked.convert("RGBA")
    x, y, x2, y2 = box
    base = Image.new("RGBA", (width, height))
    base.paste(ip.resize(image, height=y2 - y, width=x2 - x, resize_mode="crop"), (x, y))
    res = base.convert("RGB").convert("RGBA")
    res.alpha_composite(masked)
    return res.convert("RGB")


def crop_pipeline(out: Out, c: dict, name: str, image: Image.Image, mask: Image.Image, pad: int) -> Dict:
    from diffusers import StableDiffusionXLInpaintPipeline
    from diffusers.pipelines.stable_diffusion_xl import pipeline_stable_diffusion_xl_inpaint as sdxl_mod

    W, H = image.size
    h, w = H // FACTOR, W // FACTOR
    noise = torch.randn(1, 4, h, w, generator=common.generator(SEED_CROP_PIPE + len(name)))
    with tempfile.TemporaryDirectory() as tmp:
        pipe = StableDiffusionXLInpaintPipeline(
            vae=c["vae"], text_encoder=c["text_encoder"], text_encoder_2=c["text_encoder_2"],
            tokenizer=diffusion.clip_tokenizer(tmp, "<|endoftext|>"), tokenizer_2=diffusion.clip_tokenizer(tmp, "!"),
            unet=c["unet"], scheduler=c["scheduler"], requires_aesthetics_score=False,
            force_zeros_for_empty_prompt=True)
    pipe.set_progress_bar_config(disable=True)
    cap = {"unet": [], "latents": [], "pre": [], "overlay": None}
    orig_retrieve, orig_randn = sdxl_mod.retrieve_latents, sdxl_mod.randn_tensor
    orig_pre, orig_over = pipe.image_processor.preprocess, pipe.image_processor.apply_overlay
    orig_mpre = pipe.mask_processor.preprocess

    def pre(img, **kw):
        r = orig_pre(img, **kw)
        cap["pre"].append(("image", kw, r.clone()))
        return r

    def mpre(img, **kw):
        r = orig_mpre(img, **kw)
        cap["pre"].append(("mask", kw, r.clone()))
        return r

    def over(m, init, img, coords):
        cap["overlay"] = (img.copy(), coords)
        return orig_over(m, init, img, coords)

    def unet_hook(_mod, args, kwargs, output):
        cap["unet"].append({"sample": (args[0] if args else kwargs["sample"]).detach().clone(),
                            "timestep": float(args[1] if len(args) > 1 else kwargs["timestep"]),
                            "ehs": (args[2] if len(args) > 2 else kwargs["encoder_hidden_states"]).detach().clone(),
                            "pred": (output[0] if isinstance(output, tuple) else output.sample).detach().clone()})

    def on_step_end(_pipe, i, t, kw):
        cap["latents"].append(kw["latents"].detach().clone())
        return {}

    def fixed_noise(shape, generator=None, device=None, dtype=None, layout=None):
        if tuple(shape) != tuple(noise.shape):
            raise TilesRefError(f"tiles_ref: {name}: unexpected noise shape {shape}")
        return noise.clone()

    pipe.image_processor.preprocess, pipe.image_processor.apply_overlay = pre, over
    pipe.mask_processor.preprocess = mpre
    sdxl_mod.retrieve_latents = lambda enc, generator=None, sample_mode="sample": orig_retrieve(
        enc, generator=generator, sample_mode="argmax")
    sdxl_mod.randn_tensor = fixed_noise
    hook = c["unet"].register_forward_hook(unet_hook, with_kwargs=True)
    n_inf = int(round(sdxl_export.STEPS / sdxl_export.STRENGTH))
    try:
        with torch.no_grad():
            result = pipe(prompt=sdxl_export.PROMPT, image=image, mask_image=mask, height=H, width=W,
                          padding_mask_crop=pad, num_inference_steps=n_inf, strength=sdxl_export.STRENGTH,
                          guidance_scale=sdxl_export.GUIDANCE, output_type="pil",
                          callback_on_step_end=on_step_end, callback_on_step_end_tensor_inputs=["latents"]).images[0]
    finally:
        sdxl_mod.retrieve_latents, sdxl_mod.randn_tensor = orig_retrieve, orig_randn
        hook.remove()
    if len(cap["unet"]) != sdxl_export.STEPS or cap["overlay"] is None:
        raise TilesRefError(f"tiles_ref: {name}: ran {len(cap['unet'])} UNet steps")
    from diffusers.image_processor import VaeImageProcessor

    ip = VaeImageProcessor(vae_scale_factor=FACTOR)
    box = tuple(int(v) for v in VaeImageProcessor.get_crop_region(mask, W, H, pad=pad))
    if tuple(cap["overlay"][1]) != box:
        raise TilesRefError(f"tiles_ref: {name}: the pipeline cropped {cap['overlay'][1]}, get_crop_region says {box}")
    crop = image.crop(box)
    filled = ip._resize_and_fill(crop, W, H)
    mfill = ip._resize_and_fill(mask.crop(box), W, H).convert("L")
    init_t = [r for k, _, r in cap["pre"] if k == "image"][0]
    mask_t = [r for k, _, r in cap["pre"] if k == "mask"][0]
    if not torch.equal(init_t, ip.normalize(torch.from_numpy(to_np01(filled)))):
        raise TilesRefError(f"tiles_ref: {name}: the pipeline's working image is not _resize_and_fill of the crop")
    mbin = (torch.from_numpy(np.asarray(mfill, dtype=np.float32) / 255)[None, None] >= 0.5).float()
    if not torch.equal(mask_t, mbin):
        raise TilesRefError(f"tiles_ref: {name}: the pipeline's working mask is not the filled crop, binarised")
    decoded = cap["overlay"][0]
    again = overlay_at(ip, mask, image, decoded, box)
    if not np.array_equal(np.asarray(again), np.asarray(result)):
        raise TilesRefError(f"tiles_ref: {name}: overlay_at differs from diffusers' apply_overlay")
    golden_ehs = torch.from_numpy(np.load(os.path.join(GOLDENS, "sdxl_prompt_embeds.npy")))
    if not torch.equal(cap["unet"][0]["ehs"], golden_ehs):
        raise TilesRefError(f"tiles_ref: {name}: prompt embeddings differ from sdxl_prompt_embeds.npy")
    with torch.no_grad():
        vae, sf = c["vae"], c["vae"].config.scaling_factor
        img_lat = vae.encode(init_t).latent_dist.mean * sf
        masked_lat = vae.encode(init_t * (mask_t < 0.5)).latent_dist.mean * sf
    fill = {"fill_height": 0, "fill_width": 0}
    ratio, src_ratio = W / H, crop.width / crop.height
    src_w = W if ratio < src_ratio else crop.width * H // crop.height
    src_h = H if ratio >= src_ratio else crop.height * W // crop.width
    if ratio < src_ratio:
        fill["fill_height"] = H // 2 - src_h // 2
    elif ratio > src_ratio:
        fill["fill_width"] = W // 2 - src_w // 2

    p = f"crop_pipe_{name}"
    out.png(f"{p}_image.png", image, f"original image {W}x{H} (= the working size, as diffusers' apply_overlay needs)")
    out.png(f"{p}_mask.png", mask, "mask (L, 0/255)")
    out.png(f"{p}_init.png", filled, "working image: _resize_and_fill(image.crop(box), W, H) (the pipeline's, checked)")
    out.png(f"{p}_mask_fill.png", mfill, "working mask before binarising: _resize_and_fill(mask.crop(box)), L")
    out.npy(f"{p}_mask.npy", mask_t, "working mask as the pipeline has it (/255, >= 0.5)")
    out.npy(f"{p}_noise.npy", noise, "initial noise (fixed, patched into the pipeline)")
    out.npy(f"{p}_image_latents.npy", img_lat, "vae latent mean of the working image, times vae_scale")
    out.npy(f"{p}_masked_image_latents.npy", masked_lat, "vae latent mean of working image * (mask < 0.5), times vae_scale")
    out.npy(f"{p}_timesteps.npy", torch.tensor([u["timestep"] for u in cap["unet"]]), "the timesteps run")
    out.npy(f"{p}_noise_pred.npy", torch.stack([u["pred"] for u in cap["unet"]]), "raw UNet output per step")
    out.npy(f"{p}_latents_steps.npy", torch.stack(cap["latents"]), "latents after each scheduler step")
    out.png(f"{p}_decoded.png", decoded, "working-size result handed to apply_overlay (postprocess to PIL)")
    out.png(f"{p}_output.png", result, "the pipeline's output: apply_overlay(mask, image, decoded, box)")
    return {"name": name, "width": W, "height": H, "pad": pad, "box": list(box), **fill,
            "prompt": sdxl_export.PROMPT, "steps": sdxl_export.STEPS, "strength": sdxl_export.STRENGTH,
            "num_inference_steps": n_inf, "guidance_scale": sdxl_export.GUIDANCE,
            "latent_mean_not_sample": True, "masked_latent_blending": False,
            "prompt_embeds": "sdxl_prompt_embeds.npy, sdxl_text_embeds.npy (same prompt)",
            "time_ids": [H, W, 0, 0, H, W]}


def crop_goldens(out: Out, c: Dict[str, dict]) -> None:
    cases = crop_cases()
    out.json("crop_regions.json", {"cases": cases},
             "get_crop_region(mask, width, height, pad) -> box [x1, y1, x2, y2) for masks drawn as 255 "
             "rectangles [x0, y0, x1, y1) on 0 (L)")
    resize = resize_goldens(out)
    a_img = images.make_sample().resize((64, 48), Image.BICUBIC)
    a = crop_pipeline(out, c["sdxl"], "a", a_img, draw_mask(64, 48, [[40, 12, 52, 22]]), 4)
    b_img = images.make_sample(96, 72)
    b = crop_pipeline(out, c["sdxl"], "b", b_img, draw_mask(96, 72, [[56, 58, 96, 66], [80, 50, 90, 60]]), 3)
    if not (b["fill_height"] or b["fill_width"]):
        raise TilesRefError("tiles_ref: crop_pipe_b should exercise the fill branch of _resize_and_fill")
    out.json("crop_cases.json", {"resize": resize, "pil": pil_goldens(out), "pipelines": [a, b]},
             "resize cases (box, working size), Pillow resize cases and the two pipeline runs "
             "(settings, box, fill amounts)")


# --------------------------------------------------------------------------- 3. tiled denoising

def grid_axis(n: int, tile: int, overlap: int) -> List[int]:
    if n <= tile:
        return [0]
    stride = tile - overlap
    k = -(-(n - tile) // stride) + 1
    return [j * stride for j in range(k - 1)] + [n - tile]


def windows(h: int, w: int, tile: int, overlap: int) -> List[Tuple[int, int, int, int]]:
    th, tw = min(tile, h), min(tile, w)
    return [(y, x, th, tw) for y in grid_axis(h, tile, overlap) for x in grid_axis(w, tile, overlap)]


def gaussian_weights(th: int, tw: int) -> torch.Tensor:
    var = 0.01
    mx = (tw - 1) / 2
    xp = [math.exp(-(x - mx) * (x - mx) / (tw * tw) / (2 * var)) / math.sqrt(2 * math.pi * var) for x in range(tw)]
    my = th / 2
    yp = [math.exp(-(y - my) * (y - my) / (th * th) / (2 * var)) / math.sqrt(2 * math.pi * var) for y in range(th)]
    return torch.from_numpy(np.outer(yp, xp).astype(np.float32))


def tiled_step(x_in: torch.Tensor, wins, weights: torch.Tensor, unet_tile):
    """One step's averaged noise prediction [2, C, h, w] and the raw tile predictions."""
    acc = torch.zeros(2, 4, *x_in.shape[2:])
    wsum = torch.zeros(*x_in.shape[2:])
    preds = []
    for y, x, th, tw in wins:
        p = unet_tile(x_in[:, :, y:y + th, x:x + tw], (y, x, th, tw))
        preds.append(p)
        acc[:, :, y:y + th, x:x + tw] += p * weights
        wsum[y:y + th, x:x + tw] += weights
    return acc / wsum, preds


def img2img_schedule(sched, steps: int, strength: float):
    """diffusers' img2img schedule: num_inference_steps round(steps/strength), the last
    int(N·strength) run (get_timesteps), the scheduler's begin index set."""
    n_inf = int(round(steps / strength))
    sched.set_timesteps(n_inf)
    t_start = n_inf - min(int(n_inf * strength), n_inf)
    sched.set_begin_index(t_start * sched.order)
    timesteps = sched.timesteps[t_start * sched.order:]
    if len(timesteps) != steps:
        raise TilesRefError(f"tiles_ref: {len(timesteps)} timesteps run, want {steps}")
    return n_inf, timesteps


def md_loop(out: Out, prefix: str, sched, timesteps, latents, guidance, wins, weights, unet_tile):
    steps, step0 = [], None
    for i, t in enumerate(timesteps):
        x_in = sched.scale_model_input(torch.cat([latents] * 2), t)
        eps, preds = tiled_step(x_in, wins, weights, lambda xt, win: unet_tile(xt, t, win))
        if i == 0:
            step0 = (eps.clone(), preds)
        u, cnd = eps.chunk(2)
        latents = sched.step(u + guidance * (cnd - u), t, latents).prev_sample
        steps.append(latents)
    out.npy(f"{prefix}_tile_preds0.npy", torch.cat([p.flatten() for p in step0[1]]),
            "step 0: every tile's raw UNet output [2,4,th,tw] (CFG batch), flattened, raster order")
    out.npy(f"{prefix}_pred0.npy", step0[0], "step 0: the averaged prediction acc/wsum [2,4,h,w] (before CFG)")
    out.npy(f"{prefix}_latents_steps.npy", torch.stack(steps), "latents after each step")
    return latents


@torch.no_grad()
def md_pasd(out: Out, c: dict) -> Dict:
    W, H, tile, ov = 152, 112, 8, 3
    vt, vo = 64, 0.25
    h, w = H // FACTOR, W // FACTOR
    vae, sf, sched = c["vae"], c["vae"].config.scaling_factor, c["scheduler"]
    net = diffusion.PasdUnet(c["controlnet"], c["unet"]).eval()
    control = torch.from_numpy(to_np01(images.make_sample(W, H)))
    text = pasd_text(c)
    n_inf, timesteps = img2img_schedule(sched, pasd_export.STEPS, pasd_export.STRENGTH)
    set_tiling(vae, vt, vo)
    try:
        z0 = vae.encode(control * 2 - 1).latent_dist.mean * sf
        noise = torch.randn(1, 4, h, w, generator=common.generator(SEED_MD_PASD))
        latents = sched.add_noise(z0, noise, timesteps[:1])
        init = latents.clone()
        wins = windows(h, w, tile, ov)
        weights = gaussian_weights(wins[0][2], wins[0][3])

        def unet_tile(xt, t, win):
            y, x, th, tw = win
            ctl = torch.cat([control[:, :, FACTOR * y:FACTOR * (y + th), FACTOR * x:FACTOR * (x + tw)]] * 2)
            return net(xt, t.float().reshape(1), text, ctl)

        latents = md_loop(out, "md_pasd", sched, timesteps, latents, pasd_export.GUIDANCE, wins, weights, unet_tile)
        decoded = (vae.decode(latents / sf).sample / 2 + 0.5).clamp(0, 1)
    finally:
        vae.disable_tiling()
    fixed = pasd_export.wavelet_color_fix(decoded, control)
    out.npy("md_pasd_image.npy", control, f"stage-2 input / control image: sample.png drawn at {W}x{H}, [0,1]")
    out.npy("md_pasd_image_latents.npy", z0, f"tiled VAE encode (T {vt}, overlap {vo}) latent mean of image*2-1, x vae_scale")
    out.npy("md_pasd_noise.npy", noise, f"noise (torch.randn, Generator seed {SEED_MD_PASD})")
    out.npy("md_pasd_timesteps.npy", timesteps.float(), "the UniPC timesteps run")
    out.npy("md_pasd_latents_init.npy", init, "scheduler.add_noise(image_latents, noise, timesteps[0])")
    out.npy("md_pasd_weights.npy", weights, "the Gaussian tile weights [th,tw] (float32)")
    out.npy("md_pasd_decoded.npy", decoded, f"tiled VAE decode (T {vt}, overlap {vo}) of the last latents /2+0.5, clamped")
    out.npy("md_pasd_colorfix.npy", fixed, "wavelet colour fix of md_pasd_decoded.npy with md_pasd_image.npy")
    return {"name": "md_pasd", "width": W, "height": H, "tile": tile, "overlap": ov, "weights": "gaussian",
            "windows": [list(v) for v in wins], "vae_tile": vt, "vae_overlap": vo,
            "steps": pasd_export.STEPS, "strength": pasd_export.STRENGTH, "num_inference_steps": n_inf,
            "guidance_scale": pasd_export.GUIDANCE, "text": "pasd_text_hidden.npy (same prompts)",
            "scheduler": "UniPCMultistepScheduler, pasd_params.json's config", "colorfix_levels": 5}


@torch.no_grad()
def md_sdxl(out: Out, c: dict) -> Dict:
    W, H, tile, ov = 152, 112, 8, 4
    vt, vo = 64, 0.25
    h, w = H // FACTOR, W // FACTOR
    vae, sf, sched, unet = c["vae"], c["vae"].config.scaling_factor, c["scheduler"], c["unet"]
    img = torch.from_numpy(to_np01(images.make_sample(W, H)))
    mask = torch.from_numpy(np.asarray(draw_mask(W, H, [[20, 16, 100, 60], [110, 70, 150, 104]]),
                                       dtype=np.float32)[None, None] / 255)
    mask = (mask >= 0.5).float()
    ehs = torch.from_numpy(np.load(os.path.join(GOLDENS, "sdxl_prompt_embeds.npy")))
    temb = torch.from_numpy(np.load(os.path.join(GOLDENS, "sdxl_text_embeds.npy")))
    n_inf, timesteps = img2img_schedule(sched, sdxl_export.STEPS, sdxl_export.STRENGTH)
    set_tiling(vae, vt, vo)
    try:
        z0 = vae.encode(img * 2 - 1).latent_dist.mean * sf
        zm = vae.encode((img * 2 - 1) * (mask < 0.5)).latent_dist.mean * sf
        mlat = torch.nn.functional.interpolate(mask, size=(h, w))
        noise = torch.randn(1, 4, h, w, generator=common.generator(SEED_MD_SDXL))
        latents = sched.add_noise(z0, noise, timesteps[:1])
        init = latents.clone()
        wins = windows(h, w, tile, ov)
        weights = torch.ones(wins[0][2], wins[0][3])

        def unet_tile(xt, t, win):
            y, x, th, tw = win
            sl = (slice(None), slice(None), slice(y, y + th), slice(x, x + tw))
            sample = torch.cat([xt, torch.cat([mlat[sl]] * 2), torch.cat([zm[sl]] * 2)], dim=1)
            tid = torch.tensor([[FACTOR * th, FACTOR * tw, 0, 0, FACTOR * th, FACTOR * tw]] * 2, dtype=torch.float32)
            return unet(sample, t, ehs, added_cond_kwargs={"text_embeds": temb, "time_ids": tid}, return_dict=False)[0]

        latents = md_loop(out, "md_sdxl", sched, timesteps, latents, sdxl_export.GUIDANCE, wins, weights, unet_tile)
        decoded = (vae.decode(latents / sf).sample / 2 + 0.5).clamp(0, 1)
    finally:
        vae.disable_tiling()
    out.npy("md_sdxl_image.npy", img, f"stage-1 input: sample.png drawn at {W}x{H}, [0,1]")
    out.npy("md_sdxl_mask.npy", mask, "mask 0/1 (two rectangles)")
    out.npy("md_sdxl_mask_latents.npy", mlat, "mask resized to the latent grid (F.interpolate nearest)")
    out.npy("md_sdxl_image_latents.npy", z0, "tiled VAE encode latent mean of image*2-1, x vae_scale")
    out.npy("md_sdxl_masked_image_latents.npy", zm, "tiled VAE encode latent mean of (image*2-1)*(mask<0.5), x vae_scale")
    out.npy("md_sdxl_noise.npy", noise, f"noise (torch.randn, Generator seed {SEED_MD_SDXL})")
    out.npy("md_sdxl_timesteps.npy", timesteps.float(), "the Euler timesteps run")
    out.npy("md_sdxl_latents_init.npy", init, "scheduler.add_noise(image_latents, noise, timesteps[0])")
    out.npy("md_sdxl_decoded.npy", decoded, "tiled VAE decode of the last latents /2+0.5, clamped")
    return {"name": "md_sdxl", "width": W, "height": H, "tile": tile, "overlap": ov, "weights": "uniform",
            "windows": [list(v) for v in wins], "vae_tile": vt, "vae_overlap": vo,
            "steps": sdxl_export.STEPS, "strength": sdxl_export.STRENGTH, "num_inference_steps": n_inf,
            "guidance_scale": sdxl_export.GUIDANCE, "masked_latent_blending": False,
            "text": "sdxl_prompt_embeds.npy, sdxl_text_embeds.npy",
            "time_ids": "per tile (8·th, 8·tw, 0, 0, 8·th, 8·tw)",
            "scheduler": "EulerDiscreteScheduler, sdxl_params.json's config"}


# --------------------------------------------------------------------------- driver

README_HEAD = """# Tiling goldens (generated by tools/export/tiles_ref.py; DO NOT EDIT)

Goldens for large images (issue 22) on the tiny model set `testdata/models/tiny/`:
diffusers 0.31's tiled VAE (`vae_*`), diffusers' mask-cropped inpainting
(`padding_mask_crop`: `crop_*`, `resize_*`) and a reference loop of tiled denoising
(`md_*`). The exact semantics are the module doc of `tools/export/tiles_ref.py`; the Go
side is `pipeline/tile` (its doc.go states the tolerances). `version.json` has the tiny
set's sha256s and how far the rebuilt PyTorch modules are from the committed ONNX.
Regenerate: `.venv/bin/python tools/export/tiles_ref.py` (runs twice, compares sha256);
staleness check: `... tiles_ref.py --check`. Run it after `make fixtures`.

Arrays are `.npy` (little-endian float32, C order); images PNG. `*_tiles.npy` and
`*_tile_preds0.npy` are the per-tile outputs flattened and concatenated in the order the
JSON (or diffusers' loop) gives; their shapes follow from the layouts.

| file | type | shape | what |
|---|---|---|---|
"""


def generate(d: str) -> None:
    common.setup_determinism()
    c = build()
    ver = verify(c)
    out = Out(d)
    vae_goldens(out, c)
    crop_goldens(out, c)
    md = [md_pasd(out, c["pasd"]), md_sdxl(out, c["sdxl"])]
    out.json("md_cases.json", {"cases": md}, "tiled denoising cases: size, tile grid, windows (y, x, th, tw), "
                                             "weights, VAE tiling, schedule")
    out.json("version.json", ver, "sha256 of the tiny engines used, rebuilt-vs-ONNX differences, package versions")
    rows = sorted(out.rows)
    text = README_HEAD + "".join(f"| `{n}` | {k} | {s} | {h} |\n" for n, k, s, h in rows)
    common.write_bytes(os.path.join(d, "README.md"), text.encode())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tiles_ref.py", description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="fail if the committed goldens are stale")
    p.add_argument("--once", action="store_true", help="one run (skip the determinism check)")
    args = p.parse_args(argv)
    try:
        st, _ = common.publish_goldens("tiles_ref", generate, OUT_DIR, args.check, args.once)
        if st == 0 and not args.check:
            print(f"tiles_ref: wrote {len(os.listdir(OUT_DIR))} files to {os.path.relpath(OUT_DIR, ROOT)}")
        return st
    except (TilesRefError, common.ExportError, OSError) as e:
        print(f"tiles_ref: failed: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
