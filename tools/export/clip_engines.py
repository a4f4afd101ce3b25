"""The two CLIP engines: `clip_surgery` (image) and `clip_text` (text), DESIGN §1.1 / §2.

Both are our own small nn.Modules that wrap the real transformers CLIP classes and reuse
their weights unchanged:

* `ClipSurgery` implements CLIP-Surgery's dual-stream vision encoder (xmed-lab/CLIP_Surgery,
  `clip/clip_surgery_model.py`, as used by Q-Refine; REFERENCE.md §1.3-1.4) on top of
  `CLIPVisionModel` blocks: the last half of the residual blocks (6 of 12 for ViT-B/16) run
  a second attention path softmax(V·Vᵀ·s)·V, s = head_dim^-0.5, through the block's own
  v/out projections; the surgery stream starts from the first dual block's input, adds only
  the VV attention (no MLP) and always attends over ln_1 of the *original* stream; at the end
  its CLS is replaced by the original CLS, then post-layernorm + visual projection run on all
  197 tokens and each of the 512 channels is L2-normalised across the tokens (dim=1, the
  reference quirk).
* `ClipText` is the CLIP text transformer + text_projection evaluated at the EOS token
  (argmax of the ids, as OpenAI CLIP; EOS = 49407 is the highest id). Input ids are int32
  and are cast to int64 inside the graph.

Weights: `--tiny` builds seeded random tiny configs; the real export loads OpenAI's
`ViT-B-16.pt` (JIT archive or state dict) or a transformers directory
(openai/clip-vit-base-patch16) with `load_clip`.
"""

from __future__ import annotations

import os
from typing import Dict

import torch
from torch import nn
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

CONTEXT = 77
EOS_ID = 49407
SOS_ID = 49406
VOCAB = 49408


def tiny_config() -> CLIPConfig:
    """Tiny CLIP: 224 input, patch 16 (197 tokens), vision width 32 / 4 layers / 2 heads,
    text width 16 / 2 layers / 2 heads, full 49408 vocabulary, projection 512."""
    text = CLIPTextConfig(
        vocab_size=VOCAB, hidden_size=16, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=CONTEXT, hidden_act="quick_gelu",
        projection_dim=512, bos_token_id=SOS_ID, eos_token_id=EOS_ID, pad_token_id=0)
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=128, num_hidden_layers=4, num_attention_heads=2,
        image_size=224, patch_size=16, hidden_act="quick_gelu", projection_dim=512)
    return CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=512)


def vitb16_config() -> CLIPConfig:
    """OpenAI CLIP ViT-B/16 (the CS-ViT-B/16 backbone of CLIP-Surgery and Q-Refine)."""
    text = CLIPTextConfig(
        vocab_size=VOCAB, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
        num_attention_heads=8, max_position_embeddings=CONTEXT, hidden_act="quick_gelu",
        projection_dim=512, bos_token_id=SOS_ID, eos_token_id=EOS_ID, pad_token_id=0)
    vision = CLIPVisionConfig(
        hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        image_size=224, patch_size=16, hidden_act="quick_gelu", projection_dim=512)
    return CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=512)


def build_clip(config: CLIPConfig) -> CLIPModel:
    """transformers' own init (seed the global generator first), eager attention."""
    model = CLIPModel._from_config(config, attn_implementation="eager")
    return model.eval()


def openai_to_hf(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Renames an OpenAI CLIP state dict (ViT-B-16.pt naming, also open_clip's) to
    transformers' CLIPModel naming; in_proj is split into q/k/v, projections transposed."""
    out: Dict[str, torch.Tensor] = {}

    def block(src: str, dst: str) -> None:
        w = sd[f"{src}.attn.in_proj_weight"]
        b = sd[f"{src}.attn.in_proj_bias"]
        for i, n in enumerate(("q", "k", "v")):
            c = w.shape[0] // 3
            out[f"{dst}.self_attn.{n}_proj.weight"] = w[i * c:(i + 1) * c]
            out[f"{dst}.self_attn.{n}_proj.bias"] = b[i * c:(i + 1) * c]
        for a, b2 in (("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"),
                      ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
            out[f"{dst}.{b2}.weight"] = sd[f"{src}.{a}.weight"]
            out[f"{dst}.{b2}.bias"] = sd[f"{src}.{a}.bias"]

    n_vis = len({k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")})
    n_txt = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
    v, t = "vision_model", "text_model"
    out[f"{v}.embeddings.class_embedding"] = sd["visual.class_embedding"]
    out[f"{v}.embeddings.position_embedding.weight"] = sd["visual.positional_embedding"]
    out[f"{v}.embeddings.patch_embedding.weight"] = sd["visual.conv1.weight"]
    for a, b in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        out[f"{v}.{b}.weight"] = sd[f"visual.{a}.weight"]
        out[f"{v}.{b}.bias"] = sd[f"visual.{a}.bias"]
    for i in range(n_vis):
        block(f"visual.transformer.resblocks.{i}", f"{v}.encoder.layers.{i}")
    out["visual_projection.weight"] = sd["visual.proj"].t().contiguous()
    out[f"{t}.embeddings.token_embedding.weight"] = sd["token_embedding.weight"]
    out[f"{t}.embeddings.position_embedding.weight"] = sd["positional_embedding"]
    for i in range(n_txt):
        block(f"transformer.resblocks.{i}", f"{t}.encoder.layers.{i}")
    out[f"{t}.final_layer_norm.weight"] = sd["ln_final.weight"]
    out[f"{t}.final_layer_norm.bias"] = sd["ln_final.bias"]
    out["text_projection.weight"] = sd["text_projection"].t().contiguous()
    out["logit_scale"] = sd["logit_scale"]
    return {k: v2.float().clone() for k, v2 in out.items()}


def load_clip(path: str) -> CLIPModel:
    """Real CLIP ViT-B/16 weights: a transformers directory, or OpenAI's ViT-B-16.pt
    (TorchScript archive or plain state dict, sha256 prefix 5806e77c)."""
    if os.path.isdir(path):
        model = CLIPModel.from_pretrained(path, attn_implementation="eager", torch_dtype=torch.float32)
        return model.eval()
    try:
        sd = torch.jit.load(path, map_location="cpu").state_dict()
    except RuntimeError:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    model = build_clip(vitb16_config())
    missing, unexpected = model.load_state_dict(openai_to_hf(sd), strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(f"export: clip weights {path}: missing {missing}, unexpected {unexpected}")
    return model.eval()


class ClipSurgery(nn.Module):
    """pixel_values f32 [B,3,224,224] -> tokens f32 [B,197,512] (see the module doc)."""

    def __init__(self, clip: CLIPModel):
        super().__init__()
        vm = clip.vision_model
        self.embeddings = vm.embeddings
        self.pre_layrnorm = vm.pre_layrnorm
        self.layers = vm.encoder.layers
        self.post_layernorm = vm.post_layernorm
        self.visual_projection = clip.visual_projection
        n = len(self.layers)
        self.first_dual = n - n // 2  # last half: 6 of 12 for ViT-B/16
        attn = self.layers[0].self_attn
        self.heads = attn.num_heads
        self.head_dim = attn.head_dim
        self.scale = self.head_dim ** -0.5

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, self.head_dim).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, _, n, _ = x.shape
        return x.transpose(1, 2).reshape(b, n, self.heads * self.head_dim)

    def _dual_attention(self, attn, h: torch.Tensor):
        """Original softmax(q·kᵀ·s)·v and surgery softmax(v·vᵀ·s)·v, both through out_proj."""
        q = self._split(attn.q_proj(h))
        k = self._split(attn.k_proj(h))
        v = self._split(attn.v_proj(h))
        ori = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1) @ v
        vv = torch.softmax(torch.matmul(v, v.transpose(-1, -2)) * self.scale, dim=-1) @ v
        return attn.out_proj(self._merge(ori)), attn.out_proj(self._merge(vv))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.pre_layrnorm(self.embeddings(pixel_values))
        s = x
        for i, layer in enumerate(self.layers):
            if i < self.first_dual:
                x = layer(x, None, None)[0]
                s = x
                continue
            ori, vv = self._dual_attention(layer.self_attn, layer.layer_norm1(x))
            s = s + vv  # surgery stream: VV attention only, no MLP
            x = x + ori
            x = x + layer.mlp(layer.layer_norm2(x))
        s = torch.cat([x[:, :1], s[:, 1:]], dim=1)  # original CLS replaces the surgery CLS
        t = self.visual_projection(self.post_layernorm(s))
        return t / t.norm(dim=1, keepdim=True)  # each channel over the 197 tokens


class ClipTextTower(nn.Module):
    """The causal CLIP text transformer on token embeddings (shared by ClipText and the
    learned PQ prompts, which bypass the token-embedding lookup)."""

    def __init__(self, clip: CLIPModel):
        super().__init__()
        tm = clip.text_model
        self.token_embedding = tm.embeddings.token_embedding
        self.position_embedding = tm.embeddings.position_embedding
        self.encoder = tm.encoder
        self.final_layer_norm = tm.final_layer_norm
        self.text_projection = clip.text_projection
        mask = torch.full((CONTEXT, CONTEXT), torch.finfo(torch.float32).min).triu(1)
        self.register_buffer("causal_mask", mask[None, None], persistent=False)

    def hidden(self, embeds: torch.Tensor) -> torch.Tensor:
        """[B,S,W] token embeddings (S <= 77) -> final-layer-normed hidden states [B,S,W].

        S is dynamic in the exported graph: the transformer is causal and CLIP reads its
        output at EOS, so callers may cut the padding after the longest EOS of a batch
        and get the same features for less work (grefine's text encoder does)."""
        s = embeds.shape[1]
        h = embeds + self.position_embedding.weight[:s]
        h = self.encoder(inputs_embeds=h, attention_mask=None,
                         causal_attention_mask=self.causal_mask[:, :, :s, :s].expand(h.shape[0], 1, s, s)
                         ).last_hidden_state
        return self.final_layer_norm(h)

    def project_at(self, hidden: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """hidden [B,77,W] at positions idx [B] (int64) -> projected [B,E]."""
        w = hidden.shape[-1]
        picked = hidden.gather(1, idx.reshape(-1, 1, 1).expand(-1, 1, w)).reshape(-1, w)  # reshape, not squeeze: no If node
        return self.text_projection(picked)


class ClipText(nn.Module):
    """input_ids i32 [B,S] (S <= 77, normally 77) -> text_embeds f32 [B,512] (projected
    hidden state at EOS)."""

    def __init__(self, clip: CLIPModel):
        super().__init__()
        self.tower = ClipTextTower(clip)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        ids = input_ids.to(torch.int64)
        h = self.tower.hidden(self.tower.token_embedding(ids))
        # EOS = argmax of the ids (OpenAI CLIP); on float so every runtime has the op
        # (ids < 2^24 are exact in float32).
        eos = ids.to(torch.float32).argmax(dim=-1)
        return self.tower.project_at(h, eos)


class ClipTextKV(nn.Module):
    """`clip_text_kv`, the optional prefix-cached text engine (DESIGN §2 extension): the
    same text tower as ClipText, fed the tokens after a cached prefix, as LLM decoders are.

        input_ids    i32 [B,S]          the row's tokens after its prefix, EOS included,
                                        anything after EOS (padding)
        past_keys    f32 [L,T,H,P,hd]   a table of T cached prefixes: per layer the keys
        past_values  f32 [L,T,H,P,hd]   and values of P positions (shorter ones padded)
        past_index   i32 [B]            which table row is row b's prefix
        past_length  i32 [B]            how many of its P positions are real (0..P)
     -> text_embeds    f32 [B,E]        projected final hidden state at EOS (argmax ids)
        present_keys   f32 [L,B,H,S,hd] keys and values of this call's own tokens: run a
        present_values f32 [L,B,H,S,hd] prefix with past_length 0 to make a table row

    Row b's token s sits at position past_length[b] + s (clamped to 76 for padding). It
    attends to the first past_length[b] cached positions and causally to its own row, so
    with the table made from the row's prefix the result is ClipText's on prefix + row.
    The last layer is evaluated at EOS only (keys and values at every position)."""

    def __init__(self, clip: CLIPModel):
        super().__init__()
        self.tower = ClipTextTower(clip)
        attn = self.tower.encoder.layers[0].self_attn
        self.heads, self.head_dim, self.scale = attn.num_heads, attn.head_dim, attn.scale

    _split = ClipSurgery._split  # same head layout as the vision tower's attention
    _merge = ClipSurgery._merge

    def forward(self, input_ids, past_keys, past_values, past_index, past_length):
        t = self.tower
        ids = input_ids.to(torch.int64)
        b, s = ids.shape
        plen = past_length.to(torch.int64)
        idx = past_index.to(torch.int64)
        steps = torch.arange(s, dtype=torch.int64)
        pos = torch.minimum(plen[:, None] + steps[None, :], torch.tensor(CONTEXT - 1, dtype=torch.int64))
        h = t.token_embedding(ids) + t.position_embedding(pos)
        neg = torch.finfo(torch.float32).min
        p = past_keys.shape[3]
        live = torch.arange(p, dtype=torch.int64)[None, :] < plen[:, None]  # [B,P]
        zero = torch.zeros((), dtype=torch.float32)
        pmask = torch.where(live, zero, torch.tensor(neg))[:, None, None, :].expand(b, 1, s, p)
        cmask = t.causal_mask[:, :, :s, :s].expand(b, 1, s, s)
        mask = torch.cat([pmask, cmask], dim=-1)  # [B,1,S,P+S]
        eos = ids.to(torch.float32).argmax(dim=-1)  # [B]
        layers = t.encoder.layers
        keys, values = [], []
        for i, layer in enumerate(layers):
            attn = layer.self_attn
            x = layer.layer_norm1(h)
            k, v = self._split(attn.k_proj(x)), self._split(attn.v_proj(x))
            keys.append(k)
            values.append(v)
            kk = torch.cat([past_keys[i].index_select(0, idx), k], dim=2)
            vv = torch.cat([past_values[i].index_select(0, idx), v], dim=2)
            last = i == len(layers) - 1
            if last:  # only EOS is read: one query per row
                w = h.shape[-1]
                h = h.gather(1, eos.reshape(-1, 1, 1).expand(-1, 1, w))  # [B,1,W]
                x = x.gather(1, eos.reshape(-1, 1, 1).expand(-1, 1, w))
                m = mask.gather(2, eos.reshape(-1, 1, 1, 1).expand(-1, 1, 1, mask.shape[-1]))
            else:
                m = mask
            q = self._split(attn.q_proj(x) * self.scale)
            a = torch.softmax(torch.matmul(q, kk.transpose(-1, -2)) + m, dim=-1) @ vv
            h = h + attn.out_proj(self._merge(a))
            h = h + layer.mlp(layer.layer_norm2(h))
        emb = t.text_projection(t.final_layer_norm(h).reshape(b, -1))
        return emb, torch.stack(keys), torch.stack(values)
