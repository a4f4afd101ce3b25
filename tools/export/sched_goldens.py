#!/usr/bin/env python3
"""Goldens for the Go diffusion schedulers (pipeline/sched).

The reference is diffusers 0.31.0 (EulerDiscreteScheduler, UniPCMultistepScheduler,
DDIMScheduler) on torch's CPU in float32, driven the way diffusers' img2img/inpainting
pipelines drive them: set_timesteps(N); get_timesteps(N, strength) gives t_start and calls
set_begin_index(t_start * order); the start latent is add_noise(x0, noise, timesteps[:1]);
then for each timestep scale_model_input, a "model output" and step. After every step but
the last the pipeline's masked blending noises the original to the next timestep with
add_noise; that output is recorded too.

The model outputs are seeded torch.randn tensors (no network); the Go tests feed the same
values and compare every intermediate.

This script writes, relative to the repository root:

  pipeline/sched/testdata/tables.json  float32 alphas_cumprod of the beta schedules
  pipeline/sched/testdata/euler.json   EulerDiscreteScheduler runs (SDXL-inpainting config)
  pipeline/sched/testdata/unipc.json   UniPCMultistepScheduler runs (PASD: from SD-1.5 config)
  pipeline/sched/testdata/ddim.json    DDIMScheduler runs (SD-1.5 config)
  pipeline/sched/testdata/strength.json  diffusers' get_timesteps for a grid of (N, strength)

Usage:
  .venv/bin/python tools/export/sched_goldens.py [--root DIR] [--check]

--check regenerates everything in memory and exits non-zero if a written file differs.
"""

import argparse
import json
import os
import sys

import diffusers
import numpy as np
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler, UniPCMultistepScheduler

# scheduler_config.json of diffusers/stable-diffusion-xl-1.0-inpainting-0.1 (the keys the
# published file carries; the rest are EulerDiscreteScheduler defaults).
SDXL_INPAINT = {
    "_class_name": "EulerDiscreteScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}

# scheduler/scheduler_config.json of runwayml/stable-diffusion-v1-5 (a PNDM config). PASD
# builds its UniPC scheduler from it with from_config; DDIM is built the same way.
SD15 = {
    "_class_name": "PNDMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

SHAPE = [2, 4, 3, 5]
SHORT = [1, 2, 3, 5]


def f32(v):
    """Shortest decimal that round-trips the float32 value (JSON-friendly)."""
    return float(f"{float(np.float32(v)):.9g}")


def flat(t):
    return [f32(v) for v in t.detach().reshape(-1).tolist()]


def public_config(s):
    """The scheduler's config as from_config produced it, without private keys."""
    out = {}
    for k, v in dict(s.config).items():
        if k.startswith("_"):
            continue
        out[k] = v
    out["_class_name"] = type(s).__name__
    return out


def gen(seed):
    g = torch.Generator(device="cpu")
    g.manual_seed(seed)
    return g


def get_timesteps(sched, n, strength):
    """StableDiffusionXLInpaintPipeline.get_timesteps (denoising_start None)."""
    init_timestep = min(int(n * strength), n)
    t_start = max(n - init_timestep, 0)
    timesteps = sched.timesteps[t_start * sched.order:]
    if hasattr(sched, "set_begin_index"):
        sched.set_begin_index(t_start * sched.order)
    return timesteps, t_start


def run_case(name, cls, config, n, strength, shape, seed):
    sched = cls.from_config(config)
    sched.set_timesteps(n)
    full_timesteps = sched.timesteps.clone()
    timesteps, t_start = get_timesteps(sched, n, strength)
    g = gen(seed)
    x0 = torch.randn(shape, generator=g)
    noise = torch.randn(shape, generator=g)
    if strength == 1.0:
        # is_strength_max: pure noise times init_noise_sigma.
        latents = noise * sched.init_noise_sigma
    else:
        latents = sched.add_noise(x0, noise, timesteps[:1])
    init = latents.clone()
    eps, scaled, samples, noised = [], [], [], []
    for i, t in enumerate(timesteps):
        x_in = sched.scale_model_input(latents, t)
        e = torch.randn(shape, generator=g)
        if cls is DDIMScheduler:
            latents = sched.step(e, t, latents, eta=0.0).prev_sample
        else:
            latents = sched.step(e, t, latents).prev_sample
        eps.append(flat(e))
        scaled.append(flat(x_in))
        samples.append(flat(latents))
        if i < len(timesteps) - 1:
            noised.append(flat(sched.add_noise(x0, noise, timesteps[i + 1:i + 2])))
        if not torch.isfinite(latents).all():
            raise RuntimeError(f"sched goldens: {name}: non-finite sample at step {i}")
    case = {
        "name": name,
        "config": public_config(sched),
        "num_inference_steps": n,
        "strength": strength,
        "t_start": t_start,
        "timesteps": [float(v) for v in full_timesteps.tolist()],
        "init_noise_sigma": f32(sched.init_noise_sigma),
        "shape": shape,
        "x0": flat(x0),
        "noise": flat(noise),
        "init": flat(init),
        "eps": eps,
        "scaled": scaled if cls is EulerDiscreteScheduler else None,
        "samples": samples,
        "noised": noised,
    }
    if hasattr(sched, "sigmas") and cls is not DDIMScheduler:
        case["sigmas"] = flat(sched.sigmas)
    return case


def euler_cases():
    linspace = dict(SDXL_INPAINT, timestep_spacing="linspace", steps_offset=0)
    trailing = dict(SDXL_INPAINT, timestep_spacing="trailing")
    sigma_min = dict(SDXL_INPAINT, final_sigmas_type="sigma_min")
    return [
        run_case("sdxl_n10_s0.625", EulerDiscreteScheduler, SDXL_INPAINT, 16, 0.625, SHAPE, 101),
        run_case("sdxl_reference_40_0.9", EulerDiscreteScheduler, SDXL_INPAINT, 40, 0.9, SHORT, 102),
        run_case("sdxl_full_10", EulerDiscreteScheduler, SDXL_INPAINT, 10, 1.0, SHAPE, 103),
        run_case("sdxl_n7_s0.5", EulerDiscreteScheduler, SDXL_INPAINT, 14, 0.5, SHAPE, 104),
        run_case("sdxl_n19_s0.55", EulerDiscreteScheduler, SDXL_INPAINT, 19, 0.55, SHORT, 105),
        run_case("linspace_12_0.8", EulerDiscreteScheduler, linspace, 12, 0.8, SHORT, 106),
        run_case("trailing_7_0.75", EulerDiscreteScheduler, trailing, 7, 0.75, SHORT, 107),
        run_case("trailing_3_1", EulerDiscreteScheduler, trailing, 3, 1.0, SHORT, 108),
        run_case("sigma_min_8_0.75", EulerDiscreteScheduler, sigma_min, 8, 0.75, SHORT, 109),
    ]


def unipc_cases():
    return [
        run_case("pasd_n10_s0.15", UniPCMultistepScheduler, SD15, 67, 0.15, SHAPE, 201),
        run_case("pasd_default_20", UniPCMultistepScheduler, SD15, 20, 1.0, SHORT, 202),
        run_case("pasd_10_0.5", UniPCMultistepScheduler, SD15, 10, 0.5, SHORT, 203),
        run_case("pasd_2_1", UniPCMultistepScheduler, SD15, 2, 1.0, SHAPE, 204),
        run_case("pasd_1_1", UniPCMultistepScheduler, SD15, 1, 1.0, SHAPE, 205),
        run_case("leading_12_0.75", UniPCMultistepScheduler, dict(SD15, timestep_spacing="leading"), 12, 0.75,
                 SHORT, 206),
        run_case("trailing_9_1", UniPCMultistepScheduler, dict(SD15, timestep_spacing="trailing"), 9, 1.0,
                 SHORT, 207),
        run_case("order3_10_1", UniPCMultistepScheduler, dict(SD15, solver_order=3), 10, 1.0, SHORT, 208),
        run_case("order1_6_1", UniPCMultistepScheduler, dict(SD15, solver_order=1), 6, 1.0, SHORT, 209),
        run_case("bh1_8_0.75", UniPCMultistepScheduler, dict(SD15, solver_type="bh1", final_sigmas_type="sigma_min"),
                 8, 0.75, SHORT, 210),
        run_case("no_corrector_8_1", UniPCMultistepScheduler, dict(SD15, disable_corrector=[0, 2]), 8, 1.0,
                 SHORT, 211),
        run_case("sigma_min_8_1", UniPCMultistepScheduler, dict(SD15, final_sigmas_type="sigma_min",
                                                                lower_order_final=False), 8, 1.0, SHORT, 212),
    ]


def ddim_cases():
    return [
        run_case("sd15_20_1", DDIMScheduler, SD15, 20, 1.0, SHORT, 301),
        run_case("sd15_16_0.625", DDIMScheduler, SD15, 16, 0.625, SHAPE, 302),
        run_case("sd15_67_0.15", DDIMScheduler, SD15, 67, 0.15, SHORT, 303),
        run_case("linspace_10_0.8", DDIMScheduler, dict(SD15, timestep_spacing="linspace"), 10, 0.8, SHORT, 304),
        run_case("trailing_10_0.8", DDIMScheduler, dict(SD15, timestep_spacing="trailing"), 10, 0.8, SHORT, 305),
        run_case("alpha_one_8_1", DDIMScheduler, dict(SD15, set_alpha_to_one=True), 8, 1.0, SHORT, 306),
    ]


def tables():
    out = {}
    for name, cfg in [("scaled_linear", dict(SD15)),
                      ("linear", dict(SD15, beta_schedule="linear", beta_start=0.0001, beta_end=0.02)),
                      ("squaredcos_cap_v2", dict(SD15, beta_schedule="squaredcos_cap_v2"))]:
        s = DDIMScheduler.from_config(cfg)
        out[name] = {"config": public_config(s), "alphas_cumprod": flat(s.alphas_cumprod)}
    return out


def strength_table():
    rows = []
    for s in [0.05, 0.1, 0.15, 0.29, 0.3, 0.33, 0.5, 0.55, 0.57, 0.6, 0.625, 0.7, 0.75, 0.82, 0.9, 0.99, 1.0]:
        for n in range(1, 101):
            init = min(int(n * s), n)
            rows.append([n, s, max(n - init, 0)])
    return {"rows": rows, "note": "[num_inference_steps, strength, t_start] of diffusers' get_timesteps"}


def dump(obj):
    return (json.dumps(obj, separators=(",", ":"), sort_keys=False) + "\n").encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    if diffusers.__version__ != "0.31.0":
        print(f"sched goldens: diffusers {diffusers.__version__}, want 0.31.0", file=sys.stderr)
        return 1
    meta = {"generator": "tools/export/sched_goldens.py", "diffusers": diffusers.__version__,
            "torch": torch.__version__}
    files = {
        "tables.json": dict(meta=meta, tables=tables()),
        "euler.json": dict(meta=meta, cases=euler_cases()),
        "unipc.json": dict(meta=meta, cases=unipc_cases()),
        "ddim.json": dict(meta=meta, cases=ddim_cases()),
        "strength.json": dict(meta=meta, **strength_table()),
    }
    outdir = os.path.join(args.root, "pipeline", "sched", "testdata")
    os.makedirs(outdir, exist_ok=True)
    stale = []
    for name, obj in files.items():
        data = dump(obj)
        path = os.path.join(outdir, name)
        if args.check:
            try:
                with open(path, "rb") as f:
                    if f.read() != data:
                        stale.append(name)
            except FileNotFoundError:
                stale.append(name)
            continue
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        print(f"wrote {path} ({len(data)} bytes)")
    if stale:
        print("sched goldens: stale: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
