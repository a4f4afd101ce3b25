"""The `pasd` group: pasd_text, pasd_unet (ControlNet + UNet in one graph), pasd_vae_encoder,
pasd_vae_decoder, and (tiny) the stage-2 goldens.

Tiny: a stand-in with PASD's contract: SD-1.5-style CLIP text encoder (last hidden state),
a diffusers ControlNetModel whose conditioning embedding takes the full-resolution RGB
control image in [0,1] and downsamples it ÷8 (conv 3x3 + SiLU, then per stage a same-width
conv and a stride-2 conv, like PASD's), and a UNet2DConditionModel that adds the ControlNet
residuals. PASD's pixel-aware cross-attention is not part of the stand-in.

Real: the text encoder, VAE and scheduler come from `--sd15` (diffusers SD-1.5 directory).
pasd_unet is PASD's own pixel-aware ControlNet and UNet (`pasd.models.pasd.controlnet`,
`pasd.models.pasd.unet_2d_condition`), imported from a yangxy/PASD checkout
(`--pasd-checkout`, put first on sys.path; nothing of it is copied here) and loaded from
`--pasd-weights` (runs/pasd/checkpoint-100000: `controlnet/`, `unet/`) as PASD's
test_pasd.py does, in float32 with plain attention. `PixelAwareUnet` wires them as
pipeline_pasd.py does per step: controlnet(sample, t, text, control in [0,1],
conditioning_scale 1.0, guess_mode off, return_dict False) -> (training-only RGB heads,
down residuals, mid residual); unet(sample, t, text, down, mid), where PASD's up blocks
also attend to the raw down residuals (pixel-aware cross-attention). PASD's modules need
`einops` (its requirements pin diffusers 0.29.2; they import and run unchanged under the
pinned diffusers 0.31.0). Only the default `pasd` variant is wired (not pasd_light, not
the RRDB ones, which need basicsr).

Stage-2 goldens (DESIGN §1.4): a PyTorch loop written here (PASD's pipeline is not a
diffusers class) with diffusers' UniPCMultistepScheduler (bh2, order 2) built from SD-1.5's
scheduler settings; strength 0.15 and 10 steps (num_inference_steps round(10/0.15) = 67,
the last int(67·0.15) = 10 run), CFG 9.0, the PASD negative prompt, img2img start:
latents = add_noise(vae_mean(2·img−1)·0.18215, noise, t_first), control = the stage-1
golden image. Then decode and PASD's wavelet colour fix (5 levels, kernel
[[1,2,1],[2,4,2],[1,2,1]]/16, dilation 2^i, replicate padding): high bands from the
output, low band from the stage-1 image, clamped to [0,1].
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

import clip_consts
import common
import diffusion

SEED_TEXT = 3000
SEED_UNET = 3001
SEED_CONTROL = 3002
SEED_VAE = 3003
SEED_NOISE = 3004

VAE_SCALE = 0.18215
TEXT_DIM = 8

STEPS = 10
STRENGTH = 0.15
GUIDANCE = 9.0
PROMPT_SUFFIX = ", clean, high-resolution, 8k"
NEGATIVE = "blurry, dotted, noise, raster lines, unclear, lowres, over-smoothed"


def unipc_config() -> dict:
    """SD-1.5's scheduler settings as UniPCMultistepScheduler.from_pretrained(sd15,
    subfolder="scheduler") reads them (PASD's test_pasd.py), UniPC defaults otherwise."""
    return dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                prediction_type="epsilon", steps_offset=1, solver_order=2, solver_type="bh2",
                predict_x0=True, lower_order_final=True, timestep_spacing="linspace")


def tiny_components() -> dict:
    from diffusers import ControlNetModel, UNet2DConditionModel, UniPCMultistepScheduler

    common.seed(SEED_TEXT)
    text = diffusion.tiny_text(diffusion.tiny_text_config(TEXT_DIM, 3, 2), False)
    blocks = dict(block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
                  down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                  cross_attention_dim=TEXT_DIM, attention_head_dim=(2, 4))
    common.seed(SEED_UNET)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4,
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), **blocks)
    common.seed(SEED_CONTROL)
    control = ControlNetModel(in_channels=4, conditioning_embedding_out_channels=(8, 8, 16, 16), **blocks)
    diffusion.randomise_zeros(control, common.generator(SEED_CONTROL + 1))
    common.seed(SEED_VAE)
    vae = diffusion.tiny_vae(VAE_SCALE)
    return {"text_encoder": text, "unet": diffusion.default_attn(unet).eval(),
            "controlnet": diffusion.default_attn(control).eval(), "vae": vae,
            "scheduler": UniPCMultistepScheduler(**unipc_config())}


def _io(name, dtype, shape):
    return {"name": name, "dtype": dtype, "shape": shape}


def export(ms, c: dict, tiny: bool, tol: float) -> None:
    te, vae = c["text_encoder"], c["vae"]
    dt = te.config.hidden_size
    lat = vae.config.latent_channels
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    ids = diffusion.pad_ids(clip_consts.tokenize(["a cat" + PROMPT_SUFFIX, NEGATIVE, "word " * 90]),
                            diffusion.PAD_EOS)
    dyn_b = {0: "batch"}
    dyn_bhw = {0: "batch", 2: "height", 3: "width"}
    common.export_engine(
        ms, "pasd_text", diffusion.TextHidden(te, penultimate=False),
        [_io("input_ids", "int32", [-1, 77])], [_io("hidden_states", "float32", [-1, 77, dt])],
        {"input_ids": dyn_b, "hidden_states": dyn_b}, {"input_ids": ids[:1]}, [{"input_ids": ids}], tol)

    g = common.generator(SEED_NOISE + 100)
    img = torch.rand(1, 3, 48, 64, generator=g) * 2 - 1
    common.export_engine(
        ms, "pasd_vae_encoder", diffusion.VaeEncoder(vae),
        [_io("images", "float32", [-1, 3, -1, -1])], [_io("latent_mean", "float32", [-1, lat, -1, -1])],
        {"images": dyn_bhw, "latent_mean": dyn_bhw}, {"images": img}, [{"images": torch.cat([img, -img])}], tol)
    z = torch.randn(1, lat, 6, 8, generator=g) * 3
    common.export_engine(
        ms, "pasd_vae_decoder", diffusion.VaeDecoder(vae),
        [_io("latent", "float32", [-1, lat, -1, -1])], [_io("images", "float32", [-1, 3, -1, -1])],
        {"latent": dyn_bhw, "images": dyn_bhw}, {"latent": z}, [{"latent": torch.cat([z, -z])}], tol)

    import sdxl_export
    ms.manifest["config"]["pasd"] = {
        "vae_scale": float(vae.config.scaling_factor), "vae_factor": factor, "latent_channels": lat,
        "text_dim": dt, "unet_in_channels": lat, "unet_out_channels": lat, "pad_id": diffusion.PAD_EOS,
        "scheduler": sdxl_export.scheduler_json(c["scheduler"]),
    }

    unet, control = c["unet"], c["controlnet"]
    net = diffusion.PasdUnet(control, unet) if tiny else PixelAwareUnet(control, unet)

    def unet_feeds(b, h, w):
        return {"sample": torch.randn(b, lat, h, w, generator=g), "timestep": torch.tensor([801.0]),
                "encoder_hidden_states": torch.randn(b, 77, dt, generator=g),
                "control": torch.rand(b, 3, h * factor, w * factor, generator=g)}

    # odd latent sizes: the traced graph takes the upsample-to-skip-size path whatever the up factor
    trace = unet_feeds(2, 7, 5) if tiny else unet_feeds(2, 35, 27)
    # real: a multiple of the up factor and a ragged batch-4 size, beside the trace shape
    verify = [unet_feeds(2, 6, 8), unet_feeds(4, 4, 4)] if tiny else [unet_feeds(2, 24, 40), unet_feeds(4, 17, 23)]
    common.export_engine(
        ms, "pasd_unet", net,
        [_io("sample", "float32", [-1, lat, -1, -1]), _io("timestep", "float32", [1]),
         _io("encoder_hidden_states", "float32", [-1, 77, dt]), _io("control", "float32", [-1, 3, -1, -1])],
        [_io("noise_pred", "float32", [-1, unet.config.out_channels, -1, -1])],
        {"sample": dyn_bhw, "encoder_hidden_states": dyn_b,
         "control": {0: "batch", 2: "image_height", 3: "image_width"}, "noise_pred": dyn_bhw},
        trace, verify, tol, external_data=not tiny)


def wavelet_blur(x: torch.Tensor, radius: int) -> torch.Tensor:
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    k = k.expand(x.shape[1], 1, 3, 3)
    x = F.pad(x, (radius,) * 4, mode="replicate")
    return F.conv2d(x, k, groups=k.shape[0], dilation=radius)


def wavelet_decompose(x: torch.Tensor, levels: int = 5):
    high = torch.zeros_like(x)
    for i in range(levels):
        low = wavelet_blur(x, 2 ** i)
        high = high + (x - low)
        x = low
    return high, x


def wavelet_color_fix(output: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """PASD's wavelet_color_fix on [0,1] tensors: output's high bands + source's low band."""
    high, _ = wavelet_decompose(output)
    _, low = wavelet_decompose(source)
    return (high + low).clamp(0, 1)


@torch.no_grad()
def make_goldens(ms, c: dict, out: str, control_image: torch.Tensor, prompt: str) -> None:
    te, vae, sched = c["text_encoder"], c["vae"], c["scheduler"]
    net = diffusion.PasdUnet(c["controlnet"], c["unet"]).eval()
    sf = vae.config.scaling_factor
    factor = ms.manifest["config"]["pasd"]["vae_factor"]
    _, _, hh, ww = control_image.shape
    h, w = hh // factor, ww // factor

    ids = diffusion.pad_ids(clip_consts.tokenize([NEGATIVE, prompt + PROMPT_SUFFIX]), diffusion.PAD_EOS)
    text = te(ids.long()).last_hidden_state  # [negative; positive]
    num_inference_steps = int(round(STEPS / STRENGTH))
    sched.set_timesteps(num_inference_steps)
    init = min(int(num_inference_steps * STRENGTH), num_inference_steps)
    t_start = num_inference_steps - init
    timesteps = sched.timesteps[t_start * sched.order:]
    sched.set_begin_index(t_start * sched.order)
    if len(timesteps) != STEPS:
        raise common.ExportError(f"export: pasd goldens: {len(timesteps)} steps, want {STEPS}")

    z0 = vae.encode(control_image * 2 - 1).latent_dist.mean * sf
    noise = torch.randn(1, z0.shape[1], h, w, generator=common.generator(SEED_NOISE))
    latents = sched.add_noise(z0, noise, timesteps[:1])
    latents_init = latents.clone()
    control = torch.cat([control_image] * 2)
    steps, preds = [], []
    for t in timesteps:
        x = sched.scale_model_input(torch.cat([latents] * 2), t)
        eps = net(x, t.float().reshape(1), text, control)
        preds.append(eps)
        u, cnd = eps.chunk(2)
        latents = sched.step(u + GUIDANCE * (cnd - u), t, latents).prev_sample
        steps.append(latents)
    decoded = (vae.decode(latents / sf).sample / 2 + 0.5).clamp(0, 1)
    fixed = wavelet_color_fix(decoded, control_image)

    def save(file, arr, how):
        arr = arr.numpy() if torch.is_tensor(arr) else arr
        common.write_npy(os.path.join(out, file), arr)
        ms.goldens.append((file, np.asarray(arr, dtype=np.float32 if arr.dtype.kind == "f" else np.int32), how))

    save("pasd_image.npy", control_image, "stage-2 input = sdxl_decoded.npy (control image, [0,1])")
    save("pasd_ids.npy", ids.int(), "[negative; prompt + suffix] ids (pad 49407)")
    save("pasd_text_hidden.npy", text, "pasd_text output for pasd_ids.npy")
    save("pasd_noise.npy", noise, f"noise (torch.randn, Generator seed {SEED_NOISE})")
    save("pasd_image_latents.npy", z0, "vae latent mean of image*2-1, times vae_scale")
    save("pasd_timesteps.npy", timesteps.float(), f"the {STEPS} UniPC timesteps run (num_inference_steps "
                                                  f"{num_inference_steps}, strength {STRENGTH})")
    save("pasd_latents_init.npy", latents_init, "scheduler.add_noise(image_latents, noise, timesteps[0])")
    save("pasd_noise_pred.npy", torch.stack(preds), "raw pasd_unet output per step (before CFG)")
    save("pasd_latents_steps.npy", torch.stack(steps), "latents after each UniPC step")
    save("pasd_decoded.npy", decoded, "decode(latents/vae_scale)/2+0.5, clamped")
    save("pasd_colorfix.npy", fixed, "wavelet colour fix of pasd_decoded.npy with pasd_image.npy (final output)")
    common.write_json(os.path.join(out, "pasd_params.json"), {
        "prompt": prompt + PROMPT_SUFFIX, "negative": NEGATIVE, "steps": STEPS, "strength": STRENGTH,
        "num_inference_steps": num_inference_steps, "guidance_scale": GUIDANCE, "height": hh, "width": ww,
        "latent_mean_not_sample": True, "colorfix_levels": 5,
        "scheduler": ms.manifest["config"]["pasd"]["scheduler"]})
    ms.golden_files.append(("pasd_params.json", "stage-2 golden settings (prompts, steps, strength, scheduler)"))


PASD_MODULES = ("pasd.models.pasd.unet_2d_condition", "pasd.models.pasd.controlnet")


def pasd_classes(checkout: str):
    """PASD's UNet2DConditionModel and ControlNetModel (the default `pasd` variant, as
    test_pasd.py without --use_pasd_light), imported from the checkout at `checkout`."""
    checkout = os.path.abspath(checkout)
    if not os.path.isfile(os.path.join(checkout, "pasd", "models", "pasd", "controlnet.py")):
        raise common.ExportError(f"export: pasd: {checkout} is not a yangxy/PASD checkout "
                                 "(no pasd/models/pasd/controlnet.py)")
    try:
        import einops  # noqa: F401  (pasd/models/pasd/unet_2d_blocks.py imports it)
    except ImportError as e:
        raise common.ExportError("export: pasd: PASD's modules need einops (pip install einops)") from e
    loaded = sys.modules.get("pasd")
    if loaded is not None and not os.path.abspath(getattr(loaded, "__file__", "") or "").startswith(checkout + os.sep):
        raise common.ExportError(f"export: pasd: a module 'pasd' is already imported from "
                                 f"{getattr(loaded, '__file__', None)}, not from {checkout}")
    if checkout not in sys.path:
        sys.path.insert(0, checkout)
    import importlib

    try:
        unet_mod, control_mod = (importlib.import_module(m) for m in PASD_MODULES)
    except ImportError as e:
        raise common.ExportError(f"export: pasd: importing PASD's modules from {checkout}: {e}") from e
    return unet_mod.UNet2DConditionModel, control_mod.ControlNetModel


def load_pasd(cls, weights: str, subfolder: str):
    """cls.from_pretrained(weights, subfolder=...) in float32, as test_pasd.py loads it, but
    refusing a checkpoint whose tensors do not all match the model (diffusers would
    otherwise leave the missing ones at their random init with only a warning)."""
    if not os.path.isfile(os.path.join(weights, subfolder, "config.json")):
        raise common.ExportError(f"export: pasd: no {subfolder}/config.json under --pasd-weights {weights}")
    try:
        model, info = cls.from_pretrained(weights, subfolder=subfolder, torch_dtype=torch.float32,
                                          low_cpu_mem_usage=False, output_loading_info=True)
    except ImportError as e:  # use_rrdb checkpoints import basicsr
        raise common.ExportError(f"export: pasd: loading {subfolder}: {e}") from e
    bad = {k: v for k, v in info.items() if v}
    if bad:
        raise common.ExportError(f"export: pasd: {subfolder} weights do not match PASD's model: {bad}")
    return diffusion.default_attn(model.float()).eval()


class PixelAwareUnet(torch.nn.Module):
    """PASD's ControlNet + pixel-aware UNet in one graph, wired as one denoising step of
    pipeline_pasd.py (untiled latent, conditioning_scale 1.0, guess_mode off):
    sample [N,4,h,w], timestep f32 [1] (broadcast over N by both models), text [N,77,768],
    control [N,3,8h,8w] RGB in [0,1] -> noise_pred [N,4,h,w]."""

    def __init__(self, controlnet, unet, conditioning_scale: float = 1.0):
        super().__init__()
        self.controlnet = controlnet
        self.unet = unet
        self.scale = conditioning_scale

    def forward(self, sample, timestep, encoder_hidden_states, control):
        _, down, mid = self.controlnet(sample, timestep, encoder_hidden_states, controlnet_cond=control,
                                       conditioning_scale=self.scale, guess_mode=False, return_dict=False)
        return self.unet(sample, timestep, encoder_hidden_states, down_block_additional_residuals=list(down),
                         mid_block_additional_residual=mid, return_dict=False)[0]


def real_components(args) -> dict:
    from diffusers import AutoencoderKL, UniPCMultistepScheduler
    from transformers import CLIPTextModel

    missing = [f for f, v in (("--sd15", args.sd15), ("--pasd-checkout", args.pasd_checkout),
                              ("--pasd-weights", args.pasd_weights)) if not v]
    if missing:
        raise common.ExportError("export: pasd: the real export needs " + ", ".join(missing) +
                                 " (diffusers SD-1.5 directory, yangxy/PASD checkout, PASD checkpoint directory)")
    unet_cls, control_cls = pasd_classes(args.pasd_checkout)
    return {
        "text_encoder": CLIPTextModel.from_pretrained(args.sd15, subfolder="text_encoder", torch_dtype=torch.float32,
                                                      attn_implementation="eager").eval(),
        "vae": diffusion.default_attn(AutoencoderKL.from_pretrained(
            args.sd15, subfolder="vae", torch_dtype=torch.float32, low_cpu_mem_usage=False)).eval(),
        "scheduler": UniPCMultistepScheduler.from_pretrained(args.sd15, subfolder="scheduler"),
        "controlnet": load_pasd(control_cls, args.pasd_weights, "controlnet"),
        "unet": load_pasd(unet_cls, args.pasd_weights, "unet"),
    }


def run(ms, args, goldens: str) -> None:
    if args.tiny:
        c = tiny_components()
        export(ms, c, True, 1e-5)
    else:
        c = real_components(args)
        export(ms, c, False, 1e-3)
    if args.tiny and goldens:
        control = getattr(ms, "sdxl_decoded", None)
        if control is None:
            raise common.ExportError("export: pasd goldens need the sdxl group's stage-1 output (--groups sdxl,pasd)")
        import sdxl_export
        make_goldens(ms, c, goldens, control, sdxl_export.PROMPT.split(",")[0])
