"""Building blocks shared by the SDXL-Inpainting and PASD groups (DESIGN §1.4, §2).

* Wrappers with the contract's names: `TextHidden` (penultimate or last hidden states),
  `TextG` (penultimate hidden states + pooled projection at the EOS = argmax of the ids, the
  legacy path real SDXL checkpoints take since their config says eos_token_id 2),
  `SdxlUnet` (9-channel UNet with text_time conditioning), `PasdUnet` (ControlNet + UNet in
  one graph), `VaeEncoder` (latent_dist.mean, unscaled), `VaeDecoder` (unscaled latent).
* Tiny component configs: the shapes of diffusers' own test dummies (`get_dummy_components`
  of its SDXL-inpainting and ControlNet tests: two UNet blocks DownBlock2D +
  CrossAttnDownBlock2D, linear projection, text_time embedding with 8-dim time features),
  shrunk so the committed model set stays small (block channels (16, 32), one layer per
  block, 8 groups), with a 4-block VAE so the VAE factor is 8 like the real models, and
  text encoders with the real 49408-token vocabulary but 8/16 wide. All dims go to
  models.json `config`.
* `clip_tokenizer()`: a transformers CLIPTokenizer built from open_clip's BPE file (the
  same vocabulary as the real SDXL/SD-1.5 tokenizers), so the diffusers pipeline tokenises
  exactly like the Go side. Pad ids differ per encoder like the real checkpoints:
  SDXL tokenizer (CLIP-L) and SD-1.5 pad with <|endoftext|> (49407), SDXL tokenizer_2
  (bigG) pads with "!" (0).
"""

from __future__ import annotations

import gzip
import json
import os
from typing import Dict

import torch
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

CONTEXT = 77
VOCAB = 49408
EOS_ID = 49407
PAD_EOS = 49407  # SDXL tokenizer (CLIP-L), SD-1.5 tokenizer
PAD_BANG = 0  # SDXL tokenizer_2 (OpenCLIP bigG): "!"


# ---------------------------------------------------------------- tokenizer

def _bytes_to_unicode() -> Dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_tokenizer(workdir: str, pad_token: str):
    """transformers CLIPTokenizer over open_clip's bpe_simple_vocab_16e6.txt.gz."""
    from open_clip.tokenizer import default_bpe
    from transformers import CLIPTokenizer

    vocab_file = os.path.join(workdir, "vocab.json")
    merges_file = os.path.join(workdir, "merges.txt")
    if not os.path.exists(vocab_file):
        merges = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        vocab = list(_bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab += ["".join(m.split()) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        assert len(vocab) == VOCAB
        with open(vocab_file, "w") as f:
            json.dump({v: i for i, v in enumerate(vocab)}, f)
        with open(merges_file, "w") as f:
            f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return CLIPTokenizer(vocab_file, merges_file, pad_token=pad_token, model_max_length=CONTEXT)


def pad_ids(ids: torch.Tensor, pad: int) -> torch.Tensor:
    """open_clip ids (zero padded after EOS) -> the same ids padded with `pad`."""
    out = ids.clone()
    eos = ids.float().argmax(-1)
    pos = torch.arange(ids.shape[1])[None]
    out[pos > eos[:, None]] = pad
    return out


# ---------------------------------------------------------------- tiny configs

def tiny_text_config(width: int, layers: int, heads: int, projection_dim: int = 0) -> CLIPTextConfig:
    # eos_token_id 2 / bos 0 / pad 1 as in the real SDXL and SD-1.5 text encoder configs
    # (stale values: transformers then pools at argmax(ids), which is the EOS).
    return CLIPTextConfig(
        vocab_size=VOCAB, hidden_size=width, intermediate_size=4 * width, num_hidden_layers=layers,
        num_attention_heads=heads, max_position_embeddings=CONTEXT, hidden_act="quick_gelu",
        projection_dim=projection_dim or width, bos_token_id=0, eos_token_id=2, pad_token_id=1)


def tiny_text(cfg: CLIPTextConfig, with_projection: bool):
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return cls._from_config(cfg, attn_implementation="eager").eval()


def tiny_vae(scaling_factor: float):
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[8, 16, 16, 16], layers_per_block=1, norm_num_groups=8,
        sample_size=64, scaling_factor=scaling_factor)
    return default_attn(vae).eval()


def default_attn(model):
    """Plain (non-SDPA) attention processors: the graph is a MatMul/Softmax chain and the
    PyTorch reference computes exactly the same thing."""
    from diffusers.models.attention_processor import AttnProcessor

    model.set_attn_processor(AttnProcessor())
    return model


def randomise_zeros(model: nn.Module, gen: torch.Generator, std: float = 0.05) -> None:
    """Zero-initialised tensors (ControlNet's zero convs) would hide the control path in
    the fixtures: give them seeded small values."""
    with torch.no_grad():
        for _, p in sorted(model.named_parameters()):
            if p.numel() and bool((p == 0).all()):
                p.copy_(torch.randn(p.shape, generator=gen) * std)


# ---------------------------------------------------------------- wrappers

def _gather_eos(hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    eos = input_ids.to(torch.float32).argmax(dim=-1)  # ids < 2^24: exact in float32
    w = hidden.shape[-1]
    return hidden.gather(1, eos.reshape(-1, 1, 1).expand(-1, 1, w)).reshape(-1, w)  # reshape, not squeeze: no If node


class TextHidden(nn.Module):
    """input_ids i32 [B,77] -> hidden_states [B,77,W]: the penultimate layer's output
    (SDXL, clip_skip None) or the final-layer-normed last one (SD-1.5 / PASD)."""

    def __init__(self, te: CLIPTextModel, penultimate: bool):
        super().__init__()
        self.te = te
        self.penultimate = penultimate

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.te(input_ids.to(torch.int64), output_hidden_states=self.penultimate)
        return out.hidden_states[-2] if self.penultimate else out.last_hidden_state


class TextG(nn.Module):
    """input_ids i32 [B,77] -> hidden_states [B,77,W] (penultimate), text_embeds [B,P]."""

    def __init__(self, te: CLIPTextModelWithProjection):
        super().__init__()
        self.te = te

    def forward(self, input_ids: torch.Tensor):
        out = self.te.text_model(input_ids.to(torch.int64), output_hidden_states=True)
        pooled = _gather_eos(out.last_hidden_state, input_ids)
        return out.hidden_states[-2], self.te.text_projection(pooled)


class SdxlUnet(nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
        return self.unet(sample, timestep, encoder_hidden_states,
                         added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids},
                         return_dict=False)[0]


class PasdUnet(nn.Module):
    """ControlNet (control image in [0,1], full resolution) + UNet in one graph."""

    def __init__(self, controlnet, unet, conditioning_scale: float = 1.0):
        super().__init__()
        self.controlnet = controlnet
        self.unet = unet
        self.scale = conditioning_scale

    def forward(self, sample, timestep, encoder_hidden_states, control):
        down, mid = self.controlnet(sample, timestep, encoder_hidden_states, controlnet_cond=control,
                                    conditioning_scale=self.scale, return_dict=False)
        return self.unet(sample, timestep, encoder_hidden_states, down_block_additional_residuals=down,
                         mid_block_additional_residual=mid, return_dict=False)[0]


class VaeEncoder(nn.Module):
    """images [B,3,H,W] in [-1,1] -> latent_mean [B,C,h,w] (unscaled: no scaling_factor)."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, images):
        h = self.vae.encoder(images)
        if self.vae.quant_conv is not None:
            h = self.vae.quant_conv(h)
        return h[:, : self.vae.config.latent_channels]


class VaeDecoder(nn.Module):
    """latent [B,C,h,w] (unscaled) -> images [B,3,H,W] (about [-1,1], not clamped)."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent):
        if self.vae.post_quant_conv is not None:
            latent = self.vae.post_quant_conv(latent)
        return self.vae.decoder(latent)
