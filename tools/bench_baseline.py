#!/usr/bin/env python3
"""The PyTorch competitor of `grefine bench --baseline` (the protocol: go doc ./bench).

  grefine bench --workload assess --baseline '.venv/bin/python tools/bench_baseline.py' ...

assess   the straightforward PyTorch implementation of the quality maths,
         tools/export/quality_ref.py's assess(): preprocess, CLIP-Surgery tokens, PQ, the
         85-template text ensembles of the prompt and of every part (no feature cache),
         AQ maps, mask; given grefine's parse of each prompt (the parts), so both sides
         score the same texts.
refine   assess as above, then stage 1 with diffusers' StableDiffusionXLInpaintPipeline
         (strength max − (max − min)·q, 10 steps run, CFG 7.5, long side 256) unless the
         mask is empty, then stage 2 as a PyTorch loop over the PASD stand-in with
         diffusers' UniPC (strength 0.15, 10 steps, CFG 9, PASD's negative prompt) and the
         wavelet colour fix, as tools/export/pasd_export.py builds its goldens. Tiny model
         set only (the real SDXL and PASD weights are not on this machine).

Models: with the tiny set (models.json "tiny": true) the CLIP, SDXL and PASD modules are
rebuilt exactly as the exporter builds them (seeded), and the CLIP modules are checked
against the committed goldens. With a full-size CLIP set pass --clip (a transformers
directory or ViT-B-16.pt: the weights the set was exported from, e.g.
.cache/random-full/clip from tools/bench-full.sh); pq_text.bin, aq_empty.bin and
templates.txt come from the model set.

Environment (set by grefine bench): GREFINE_BENCH_INPUTS, GREFINE_BENCH_WORKLOAD,
GREFINE_BENCH_MODELS, GREFINE_BENCH_COUNT, GREFINE_BENCH_WARMUP, GREFINE_BENCH_THREADS
(0: torch's default). Prints one JSON line per request on stdout; logs go to stderr.
Needs the exporter's venv (.venv, made by `make fixtures`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "export"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import quality_ref as qr  # noqa: E402


def log(msg: str) -> None:
    print(f"bench_baseline: {msg}", file=sys.stderr, flush=True)


def emit(obj) -> None:
    print(json.dumps(obj), flush=True)


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name, "")
    try:
        return int(v) if v else default
    except ValueError:
        sys.exit(f"bench_baseline: {name}={v!r} is not an integer")


def read_inputs(path: str):
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            d = json.loads(line)
            img = Image.open(d["image"]).convert("RGB")
            img.load()
            parts = [qr.Part(p["text"], p.get("noun", ""), int(p.get("ancestor", -1))) for p in d.get("parts") or []]
            out.append({"id": d.get("id", f"line-{n}"), "image": img, "prompt": d.get("prompt", ""), "parts": parts})
    if not out:
        sys.exit(f"bench_baseline: {path}: no inputs")
    return out


def quality_models(models_dir: str, clip: str):
    with open(os.path.join(models_dir, "models.json")) as f:
        man = json.load(f)
    if man.get("tiny"):
        if os.path.realpath(models_dir) != os.path.realpath(qr.TINY_DIR):
            sys.exit(f"bench_baseline: a tiny set other than {qr.TINY_DIR} cannot be rebuilt")
        m = qr.tiny_models("torch")
        return m, m.info["how"], True
    if not clip:
        sys.exit("bench_baseline: a full-size model set needs --clip (the CLIP weights it was exported from)")
    args = argparse.Namespace(clip=clip, model_dir=models_dir)
    m = qr.bench_models(args)
    return m, m.info["how"], False


class Refiner:
    """Stage 1 (diffusers SDXL inpainting) and stage 2 (PASD loop) on the tiny stand-ins."""

    def __init__(self, models_dir: str):
        import diffusion
        import pasd_export
        import sdxl_export
        from diffusers import StableDiffusionXLInpaintPipeline

        self.px, self.diffusion = pasd_export, diffusion
        with open(os.path.join(models_dir, "models.json")) as f:
            cfg = json.load(f)["config"]
        self.factor_sdxl = cfg["sdxl"]["vae_factor"]
        c = sdxl_export.tiny_components()
        with tempfile.TemporaryDirectory() as tmp:
            tok_l = diffusion.clip_tokenizer(tmp, "<|endoftext|>")
            tok_g = diffusion.clip_tokenizer(tmp, "!")
        self.sdxl = StableDiffusionXLInpaintPipeline(
            vae=c["vae"], text_encoder=c["text_encoder"], text_encoder_2=c["text_encoder_2"],
            tokenizer=tok_l, tokenizer_2=tok_g, unet=c["unet"], scheduler=c["scheduler"],
            requires_aesthetics_score=False, force_zeros_for_empty_prompt=True)
        self.sdxl.set_progress_bar_config(disable=True)
        p = pasd_export.tiny_components()
        self.pasd_text, self.pasd_vae, self.pasd_sched = p["text_encoder"], p["vae"], p["scheduler"]
        self.pasd_net = diffusion.PasdUnet(p["controlnet"], p["unet"]).eval()

    @torch.no_grad()
    def stage1(self, img: Image.Image, mask: np.ndarray, prompt: str, q: float) -> Image.Image:
        w, h = img.size
        s = 256 / max(w, h)
        f = self.factor_sdxl
        ww, hh = max(round(w * s / f) * f, f), max(round(h * s / f) * f, f)
        strength = 0.9 - (0.9 - 0.5) * q
        m = Image.fromarray((mask * 255).astype(np.uint8)).resize((ww, hh), Image.NEAREST)
        work = img.resize((ww, hh), Image.BICUBIC)
        out = self.sdxl(prompt=prompt, image=work, mask_image=m, height=hh, width=ww,
                        num_inference_steps=int(round(10 / strength)), strength=strength, guidance_scale=7.5,
                        generator=torch.Generator().manual_seed(0), output_type="pil").images[0]
        out = out.resize((w, h), Image.BICUBIC)
        keep = (mask < 0.5)[..., None]  # paste the pixels outside the mask from the input
        return Image.fromarray(np.where(keep, np.asarray(img), np.asarray(out)).astype(np.uint8))

    @torch.no_grad()
    def stage2(self, img: Image.Image, prompt: str) -> Image.Image:
        px, d = self.px, self.diffusion
        x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)[None].float() / 255
        ids = d.pad_ids(qr.clip_consts.tokenize([px.NEGATIVE, prompt + px.PROMPT_SUFFIX]), d.PAD_EOS)
        text = self.pasd_text(ids.long()).last_hidden_state
        sched, vae = self.pasd_sched, self.pasd_vae
        sf = vae.config.scaling_factor
        n = int(round(px.STEPS / px.STRENGTH))
        sched.set_timesteps(n)
        t_start = n - min(int(n * px.STRENGTH), n)
        timesteps = sched.timesteps[t_start * sched.order:]
        sched.set_begin_index(t_start * sched.order)
        z0 = vae.encode(x * 2 - 1).latent_dist.mean * sf
        noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(0))
        latents = sched.add_noise(z0, noise, timesteps[:1])
        control = torch.cat([x] * 2)
        for t in timesteps:
            eps = self.pasd_net(sched.scale_model_input(torch.cat([latents] * 2), t), t.float().reshape(1), text, control)
            u, c = eps.chunk(2)
            latents = sched.step(u + px.GUIDANCE * (c - u), t, latents).prev_sample
        out = px.wavelet_color_fix((vae.decode(latents / sf).sample / 2 + 0.5).clamp(0, 1), x)
        arr = (out[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
        return Image.fromarray(arr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", default="", help="CLIP weights of a full-size model set")
    args = ap.parse_args(argv)
    workload = os.environ.get("GREFINE_BENCH_WORKLOAD", "assess")
    models = os.environ.get("GREFINE_BENCH_MODELS", "")
    inputs_path = os.environ.get("GREFINE_BENCH_INPUTS", "")
    if workload not in ("assess", "refine") or not models or not inputs_path:
        sys.exit("bench_baseline: needs GREFINE_BENCH_WORKLOAD (assess or refine), GREFINE_BENCH_MODELS and "
                 "GREFINE_BENCH_INPUTS (run it through grefine bench --baseline)")
    count, warmup = env_int("GREFINE_BENCH_COUNT", 5), env_int("GREFINE_BENCH_WARMUP", 1)
    threads = env_int("GREFINE_BENCH_THREADS", 0)
    if threads > 0:
        torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    inputs = read_inputs(inputs_path)
    m, how, tiny = quality_models(models, args.clip)
    refiner = None
    if workload == "refine":
        if not tiny:
            sys.exit("bench_baseline: refine runs on the tiny model set only (no real SDXL/PASD weights here)")
        refiner = Refiner(models)
    desc = (f"PyTorch {torch.__version__} ({torch.get_num_threads()} threads, CPU): tools/export/quality_ref.py assess"
            + (" + diffusers StableDiffusionXLInpaintPipeline stage 1 + PyTorch PASD loop stage 2" if refiner else "")
            + f"; {how}")
    emit({"info": {"description": desc, "torch": torch.__version__, "threads": torch.get_num_threads(), "workload": workload}})
    log(desc)
    for i in range(warmup + count):
        x = inputs[i % len(inputs)]
        timer: dict = {}
        t0 = time.perf_counter()
        r = qr.assess(m, x["image"], x["prompt"], x["parts"], timer)
        stages = {k: timer[k] * 1e3 for k in ("preprocess", "clip_surgery", "pq", "text_ensembles", "aq_maps", "mask")
                  if k in timer}
        stages["assess"] = timer["total"] * 1e3
        if refiner is not None:
            cur = x["image"]
            t1 = time.perf_counter()
            mask = r["M"].numpy()
            if mask.any():
                cur = refiner.stage1(cur, mask, x["prompt"], float(r["q"]))
                stages["stage1"] = (time.perf_counter() - t1) * 1e3
            t2 = time.perf_counter()
            refiner.stage2(cur, x["prompt"])
            stages["stage2"] = (time.perf_counter() - t2) * 1e3
        ms = (time.perf_counter() - t0) * 1e3
        line = {"id": x["id"], "ms": ms, "stages_ms": stages}
        if i < warmup:
            line["warmup"] = True
        emit(line)
        log(f"{'warm-up' if i < warmup else 'request'} {x['id']}: {ms:.1f} ms")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (qr.QualityRefError, OSError, KeyError, ValueError) as e:
        print(f"bench_baseline: failed: {e}", file=sys.stderr)
        sys.exit(1)
