"""The `sdxl` group: sdxl_text_l, sdxl_text_g, sdxl_unet, sdxl_vae_encoder, sdxl_vae_decoder,
and (tiny) the stage-1 parity goldens from diffusers' StableDiffusionXLInpaintPipeline.

Parity goldens (DESIGN §1.4 stage 1): the real diffusers pipeline with the tiny components,
EulerDiscreteScheduler, 10 denoising steps at strength 0.625 (num_inference_steps 16:
diffusers runs int(16·0.625) = 10), CFG 7.5, zero negative embeddings
(force_zeros_for_empty_prompt), two patches so the Go side can match it:
  * the VAE latent *mean* instead of a sample (`retrieve_latents` forced to "argmax");
  * the initial noise is the fixed tensor saved in the goldens (`randn_tensor` replaced).
The 9-channel pipeline does no masked latent blending and no pixel paste, so the Go
refiner runs with both switched off for this test.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import torch
from PIL import Image, ImageDraw

import clip_consts
import common
import diffusion
import images

SEED_TEXT_L = 2000
SEED_TEXT_G = 2001
SEED_UNET = 2002
SEED_VAE = 2003
SEED_NOISE = 2004

VAE_SCALE = 0.13025
TIME_EMBED = 8  # addition_time_embed_dim
TINY = {"text_l_dim": 8, "text_g_dim": 16, "text_embeds_dim": 20}

# Golden scenario.
GOLDEN_W, GOLDEN_H = 64, 48
PROMPT = "Mr. Beans wearing sun glasses with blue doctor suit and stripe tie, high quality, hyper detail"
STEPS = 10
STRENGTH = 0.625
GUIDANCE = 7.5


def euler_config() -> dict:
    """SDXL's EulerDiscreteScheduler settings (stable-diffusion-xl-1.0-inpainting-0.1
    scheduler_config.json: scaled_linear 0.00085..0.012, leading spacing, steps_offset 1)."""
    return dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                prediction_type="epsilon", timestep_spacing="leading", steps_offset=1,
                interpolation_type="linear", use_karras_sigmas=False)


def tiny_components() -> dict:
    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel

    common.seed(SEED_TEXT_L)
    text_l = diffusion.tiny_text(diffusion.tiny_text_config(TINY["text_l_dim"], 3, 2), False)
    common.seed(SEED_TEXT_G)
    text_g = diffusion.tiny_text(
        diffusion.tiny_text_config(TINY["text_g_dim"], 3, 2, TINY["text_embeds_dim"]), True)
    common.seed(SEED_UNET)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=9, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
        attention_head_dim=(2, 4), use_linear_projection=True, transformer_layers_per_block=(1, 2),
        cross_attention_dim=TINY["text_l_dim"] + TINY["text_g_dim"],
        addition_embed_type="text_time", addition_time_embed_dim=TIME_EMBED,
        projection_class_embeddings_input_dim=6 * TIME_EMBED + TINY["text_embeds_dim"])
    unet = diffusion.default_attn(unet).eval()
    common.seed(SEED_VAE)
    vae = diffusion.tiny_vae(VAE_SCALE)
    return {"text_encoder": text_l, "text_encoder_2": text_g, "unet": unet, "vae": vae,
            "scheduler": EulerDiscreteScheduler(**euler_config())}


def real_components(path: str) -> dict:
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    f32 = torch.float32
    return {
        "text_encoder": CLIPTextModel.from_pretrained(path, subfolder="text_encoder", torch_dtype=f32,
                                                      attn_implementation="eager").eval(),
        "text_encoder_2": CLIPTextModelWithProjection.from_pretrained(
            path, subfolder="text_encoder_2", torch_dtype=f32, attn_implementation="eager").eval(),
        "unet": diffusion.default_attn(UNet2DConditionModel.from_pretrained(
            path, subfolder="unet", torch_dtype=f32)).eval(),
        "vae": diffusion.default_attn(AutoencoderKL.from_pretrained(path, subfolder="vae", torch_dtype=f32)).eval(),
        "scheduler": EulerDiscreteScheduler.from_pretrained(path, subfolder="scheduler"),
    }


def scheduler_json(s) -> dict:
    return {k: v for k, v in dict(s.config).items() if not k.startswith("_") or k == "_class_name"}


def _io(name, dtype, shape):
    return {"name": name, "dtype": dtype, "shape": shape}


def export(ms, c: dict, tiny: bool, tol: float) -> None:
    te_l, te_g, unet, vae = c["text_encoder"], c["text_encoder_2"], c["unet"], c["vae"]
    dl, dg = te_l.config.hidden_size, te_g.config.hidden_size
    dp = te_g.config.projection_dim
    lat = vae.config.latent_channels
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    ids = clip_consts.tokenize([PROMPT, "", "a photo of a cat " * 30])
    ids_l, ids_g = diffusion.pad_ids(ids, diffusion.PAD_EOS), diffusion.pad_ids(ids, diffusion.PAD_BANG)
    dyn_b = {0: "batch"}

    common.export_engine(
        ms, "sdxl_text_l", diffusion.TextHidden(te_l, penultimate=True),
        [_io("input_ids", "int32", [-1, 77])], [_io("hidden_states", "float32", [-1, 77, dl])],
        {"input_ids": dyn_b, "hidden_states": dyn_b}, {"input_ids": ids_l[:1]}, [{"input_ids": ids_l}], tol)
    common.export_engine(
        ms, "sdxl_text_g", diffusion.TextG(te_g),
        [_io("input_ids", "int32", [-1, 77])],
        [_io("hidden_states", "float32", [-1, 77, dg]), _io("text_embeds", "float32", [-1, dp])],
        {"input_ids": dyn_b, "hidden_states": dyn_b, "text_embeds": dyn_b},
        {"input_ids": ids_g[:1]}, [{"input_ids": ids_g}], tol)
    # TextG must pool exactly like transformers (what the diffusers pipeline uses).
    with torch.no_grad():
        a = diffusion.TextG(te_g)(ids_g)[1]
        b = te_g(ids_g.long()).text_embeds
    if float((a - b).abs().max()) > 1e-6:
        raise common.ExportError("export: sdxl_text_g: pooled output differs from transformers'")

    g = common.generator(SEED_NOISE + 100)
    cin = unet.config.in_channels

    def unet_feeds(b, h, w):
        return {"sample": torch.randn(b, cin, h, w, generator=g),
                "timestep": torch.tensor([637.0]),
                "encoder_hidden_states": torch.randn(b, 77, dl + dg, generator=g),
                "text_embeds": torch.randn(b, dp, generator=g),
                "time_ids": torch.tensor([[48.0, 64.0, 0.0, 0.0, 48.0, 64.0]] * b)}

    dyn_bhw = {0: "batch", 2: "height", 3: "width"}
    # trace at a latent size that is not a multiple of the UNet's up factor so the traced
    # graph takes diffusers' general (upsample_size) path
    trace = unet_feeds(2, 7, 5) if tiny else unet_feeds(2, 36, 28)
    verify = [unet_feeds(2, GOLDEN_H // factor, GOLDEN_W // factor)] if tiny else []
    common.export_engine(
        ms, "sdxl_unet", diffusion.SdxlUnet(unet),
        [_io("sample", "float32", [-1, cin, -1, -1]), _io("timestep", "float32", [1]),
         _io("encoder_hidden_states", "float32", [-1, 77, dl + dg]),
         _io("text_embeds", "float32", [-1, dp]), _io("time_ids", "float32", [-1, 6])],
        [_io("noise_pred", "float32", [-1, unet.config.out_channels, -1, -1])],
        {"sample": dyn_bhw, "encoder_hidden_states": dyn_b, "text_embeds": dyn_b, "time_ids": dyn_b,
         "noise_pred": dyn_bhw}, trace, verify, tol, external_data=not tiny)

    img = torch.rand(1, 3, 48, 64, generator=g) * 2 - 1 if tiny else torch.rand(1, 3, 256, 192, generator=g) * 2 - 1
    common.export_engine(
        ms, "sdxl_vae_encoder", diffusion.VaeEncoder(vae),
        [_io("images", "float32", [-1, 3, -1, -1])], [_io("latent_mean", "float32", [-1, lat, -1, -1])],
        {"images": dyn_bhw, "latent_mean": dyn_bhw}, {"images": img},
        [{"images": torch.cat([img, -img]).flip(-1)[..., :40]}], tol)
    z = torch.randn(1, lat, img.shape[2] // factor, img.shape[3] // factor, generator=g) * 3
    common.export_engine(
        ms, "sdxl_vae_decoder", diffusion.VaeDecoder(vae),
        [_io("latent", "float32", [-1, lat, -1, -1])], [_io("images", "float32", [-1, 3, -1, -1])],
        {"latent": dyn_bhw, "images": dyn_bhw}, {"latent": z}, [{"latent": torch.cat([z, -z])[..., :3]}], tol)

    # the wrappers must equal diffusers' own encode()/decode()
    with torch.no_grad():
        d1 = (diffusion.VaeEncoder(vae)(img) - vae.encode(img).latent_dist.mean).abs().max()
        d2 = (diffusion.VaeDecoder(vae)(z) - vae.decode(z).sample).abs().max()
    if float(d1) > 0 or float(d2) > 0:
        raise common.ExportError(f"export: sdxl vae wrappers differ from diffusers ({float(d1)}, {float(d2)})")

    ms.manifest["config"]["sdxl"] = {
        "vae_scale": float(vae.config.scaling_factor), "vae_factor": factor, "latent_channels": lat,
        "text_l_dim": dl, "text_g_dim": dg, "text_embeds_dim": dp, "unet_in_channels": cin,
        "unet_out_channels": unet.config.out_channels, "time_ids": 6,
        "text_l_pad_id": diffusion.PAD_EOS, "text_g_pad_id": diffusion.PAD_BANG,
        "scheduler": scheduler_json(c["scheduler"]),
    }


def make_goldens(ms, c: dict, out: str) -> None:
    """Stage-1 parity goldens from diffusers' StableDiffusionXLInpaintPipeline (see module doc)."""
    from diffusers import StableDiffusionXLInpaintPipeline
    from diffusers.pipelines.stable_diffusion_xl import pipeline_stable_diffusion_xl_inpaint as sdxl_mod

    factor = ms.manifest["config"]["sdxl"]["vae_factor"]
    lat = ms.manifest["config"]["sdxl"]["latent_channels"]
    h, w = GOLDEN_H // factor, GOLDEN_W // factor

    image = images.make_sample().resize((GOLDEN_W, GOLDEN_H), Image.BICUBIC)
    mask = Image.new("L", (GOLDEN_W, GOLDEN_H), 0)
    d = ImageDraw.Draw(mask)
    d.rectangle([24, 8, 55, 31], fill=255)
    d.rectangle([4, 36, 19, 45], fill=255)
    noise = torch.randn(1, lat, h, w, generator=common.generator(SEED_NOISE))

    with tempfile.TemporaryDirectory() as tmp:
        tok_l = diffusion.clip_tokenizer(tmp, "<|endoftext|>")
        tok_g = diffusion.clip_tokenizer(tmp, "!")
        pipe = StableDiffusionXLInpaintPipeline(
            vae=c["vae"], text_encoder=c["text_encoder"], text_encoder_2=c["text_encoder_2"],
            tokenizer=tok_l, tokenizer_2=tok_g, unet=c["unet"], scheduler=c["scheduler"],
            requires_aesthetics_score=False, force_zeros_for_empty_prompt=True)
        pipe.set_progress_bar_config(disable=True)
        ids_l = tok_l(PROMPT, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        ids_g = tok_g(PROMPT, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids

    # The Go tokenizer follows open_clip; check both tokenizers agree with it here.
    oc = clip_consts.tokenize([PROMPT])
    if not torch.equal(ids_l.int(), diffusion.pad_ids(oc, diffusion.PAD_EOS)) or \
            not torch.equal(ids_g.int(), diffusion.pad_ids(oc, diffusion.PAD_BANG)):
        raise common.ExportError("export: sdxl goldens: transformers and open_clip tokenizers disagree")

    captured = {"unet": [], "latents": [], "noise": None}
    orig_retrieve, orig_randn = sdxl_mod.retrieve_latents, sdxl_mod.randn_tensor

    def retrieve_mean(encoder_output, generator=None, sample_mode="sample"):
        return orig_retrieve(encoder_output, generator=generator, sample_mode="argmax")

    def fixed_noise(shape, generator=None, device=None, dtype=None, layout=None):
        if tuple(shape) != tuple(noise.shape):
            raise common.ExportError(f"export: sdxl goldens: unexpected noise shape {shape}")
        return noise.clone()

    def unet_hook(_mod, args, kwargs, output):
        sample = args[0] if args else kwargs["sample"]
        t = args[1] if len(args) > 1 else kwargs["timestep"]
        ehs = args[2] if len(args) > 2 else kwargs["encoder_hidden_states"]
        captured["unet"].append({
            "sample": sample.detach().clone(), "timestep": torch.as_tensor(t).float().reshape(1).clone(),
            "encoder_hidden_states": ehs.detach().clone(),
            "text_embeds": kwargs["added_cond_kwargs"]["text_embeds"].detach().clone(),
            "time_ids": kwargs["added_cond_kwargs"]["time_ids"].detach().clone(),
            "noise_pred": (output[0] if isinstance(output, tuple) else output.sample).detach().clone()})

    def on_step_end(_pipe, i, t, kw):
        captured["latents"].append(kw["latents"].detach().clone())
        return {}

    handle = c["unet"].register_forward_hook(unet_hook, with_kwargs=True)
    sdxl_mod.retrieve_latents, sdxl_mod.randn_tensor = retrieve_mean, fixed_noise
    try:
        num_inference_steps = int(round(STEPS / STRENGTH))
        with torch.no_grad():
            result = pipe(prompt=PROMPT, image=image, mask_image=mask, height=GOLDEN_H, width=GOLDEN_W,
                          num_inference_steps=num_inference_steps, strength=STRENGTH, guidance_scale=GUIDANCE,
                          output_type="np", callback_on_step_end=on_step_end,
                          callback_on_step_end_tensor_inputs=["latents"]).images
    finally:
        sdxl_mod.retrieve_latents, sdxl_mod.randn_tensor = orig_retrieve, orig_randn
        handle.remove()
    if len(captured["unet"]) != STEPS or len(captured["latents"]) != STEPS:
        raise common.ExportError(f"export: sdxl goldens: ran {len(captured['unet'])} steps, want {STEPS}")

    # Recompute the pipeline's intermediates the documented way, and check them against
    # what the UNet actually received.
    sched = c["scheduler"]
    with torch.no_grad():
        img = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)[None].float() / 255
        m = (torch.from_numpy(np.asarray(mask, dtype=np.uint8).copy())[None, None].float() / 255 >= 0.5).float()
        vae = c["vae"]
        sf = vae.config.scaling_factor
        image_latents = vae.encode(img * 2 - 1).latent_dist.mean * sf
        masked_latents = vae.encode((img * 2 - 1) * (m < 0.5)).latent_dist.mean * sf
        mask_lat = torch.nn.functional.interpolate(m, size=(h, w))
        timesteps = torch.stack([u["timestep"][0] for u in captured["unet"]])
        first = captured["unet"][0]
        t0 = timesteps[:1]
        sched2 = type(sched).from_config(sched.config)
        sched2.set_timesteps(num_inference_steps)
        sched2.set_begin_index(num_inference_steps - STEPS)
        latents_init = sched2.add_noise(image_latents, noise, t0)
        sample0 = torch.cat([sched2.scale_model_input(torch.cat([latents_init] * 2), t0[0]),
                             torch.cat([mask_lat] * 2), torch.cat([masked_latents] * 2)], dim=1)
    dd = float((sample0 - first["sample"]).abs().max())
    if dd > 1e-5:
        raise common.ExportError(f"export: sdxl goldens: recomputed UNet input differs from the pipeline's by {dd}")
    decoded = torch.from_numpy(result).permute(0, 3, 1, 2).contiguous()

    def save(file, arr, how):
        arr = arr.numpy() if torch.is_tensor(arr) else arr
        common.write_npy(os.path.join(out, file), arr)
        ms.goldens.append((file, np.asarray(arr, dtype=np.float32 if arr.dtype.kind == "f" else np.int32), how))

    image.save(os.path.join(out, "sdxl_image.png"), format="PNG", compress_level=9)
    mask.save(os.path.join(out, "sdxl_mask.png"), format="PNG", compress_level=9)
    ms.golden_files.append(("sdxl_image.png", f"stage-1 input image {GOLDEN_W}x{GOLDEN_H} (sample.png, PIL bicubic)"))
    ms.golden_files.append(("sdxl_mask.png", "stage-1 mask (L, 0/255, two rectangles)"))
    save("sdxl_image.npy", img, "sdxl_image.png as float32 [0,1] NCHW")
    save("sdxl_mask.npy", m, "sdxl_mask.png binarised (>= 0.5), NCHW")
    save("sdxl_ids_l.npy", ids_l.int(), "prompt ids for sdxl_text_l (pad 49407)")
    save("sdxl_ids_g.npy", ids_g.int(), "prompt ids for sdxl_text_g (pad 0)")
    save("sdxl_noise.npy", noise, f"initial noise (torch.randn, Generator seed {SEED_NOISE})")
    save("sdxl_image_latents.npy", image_latents, "vae latent mean of image*2-1, times vae_scale")
    save("sdxl_masked_image_latents.npy", masked_latents, "vae latent mean of (image*2-1)*(mask<0.5), times vae_scale")
    save("sdxl_mask_latents.npy", mask_lat, "mask resized to the latent grid (F.interpolate nearest)")
    save("sdxl_timesteps.npy", timesteps, f"the {STEPS} timesteps run (Euler, num_inference_steps "
                                          f"{num_inference_steps}, strength {STRENGTH})")
    save("sdxl_latents_init.npy", latents_init, "scheduler.add_noise(image_latents, noise, timesteps[0])")
    save("sdxl_prompt_embeds.npy", first["encoder_hidden_states"],
         "UNet encoder_hidden_states [negative (zeros); positive] = cat(text_l, text_g) penultimate")
    save("sdxl_text_embeds.npy", first["text_embeds"], "UNet text_embeds [negative (zeros); positive pooled]")
    save("sdxl_time_ids.npy", first["time_ids"], "UNet time_ids (orig h,w, crop 0,0, target h,w) x2")
    save("sdxl_unet_sample0.npy", first["sample"], "UNet input of step 0: [scaled latents x2 | mask | masked latents]")
    save("sdxl_noise_pred.npy", torch.stack([u["noise_pred"] for u in captured["unet"]]),
         "raw UNet output per step (before CFG)")
    save("sdxl_latents_steps.npy", torch.stack(captured["latents"]), "latents after each scheduler step")
    save("sdxl_decoded.npy", decoded, "pipeline output image (decode(latents/vae_scale)/2+0.5, clamped), NCHW")
    params = {"prompt": PROMPT, "negative": "zeros (force_zeros_for_empty_prompt)", "steps": STEPS,
              "strength": STRENGTH, "num_inference_steps": num_inference_steps, "guidance_scale": GUIDANCE,
              "height": GOLDEN_H, "width": GOLDEN_W, "latent_mean_not_sample": True,
              "masked_latent_blending": False, "pixel_paste": False,
              "scheduler": scheduler_json(sched)}
    common.write_json(os.path.join(out, "sdxl_params.json"), params)
    ms.golden_files.append(("sdxl_params.json", "stage-1 golden settings (prompt, steps, strength, scheduler)"))
    ms.sdxl_decoded = decoded


def run(ms, args, goldens: str) -> None:
    if args.tiny:
        c = tiny_components()
        tol = 1e-5
    else:
        if not args.sdxl:
            raise common.ExportError("export: sdxl: the real export needs --sdxl (diffusers directory)")
        c = real_components(args.sdxl)
        tol = 1e-3
    export(ms, c, args.tiny, tol)
    if args.tiny and goldens:
        os.makedirs(goldens, exist_ok=True)
        make_goldens(ms, c, goldens)
