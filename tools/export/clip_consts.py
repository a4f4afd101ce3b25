"""The CLIP constants shipped beside the engines: `pq_text`, `aq_empty`, `templates.txt`.

* `pq_text` f32 [4,2,512] (DESIGN §1.2, REFERENCE.md §1.5): for each of the four
  Q-Refine learned prompts (overall, technical, rationality, naturalness; files
  `embeding/PQ-{overall,technical,rational,natural}.pth`) the pair "Good photo." /
  "Bad photo." with 16 learned context vectors, run through the text transformer.
  Assembly per pair, 77 token embeddings: prefix (SOS, 1) | ctx[:, :8] | suffix[:, :3]
  (the class tokens "good/bad", "photo", ".") | ctx[:, 8:] | suffix[:, 3:] (57); positional
  embedding, causal transformer, final layer norm, the hidden state at index 20
  (= 1+8+3+8, the EOT), times text_projection. Not normalised, no logit scale.
  Tiny: seeded random normal vectors.
* `aq_empty` f32 [512] (DESIGN §1.3): the 85-template ensemble of the empty string: each
  template formatted with "", tokenised (open_clip SimpleTokenizer, context 77,
  truncate), encoded by clip_text, L2-normalised, averaged, renormalised.
* `templates.txt`: the 85 templates, one per line with "{}". Source: the default
  `prompt_templates` list of `encode_text_with_prompt_ensemble` in xmed-lab/CLIP_Surgery
  `clip/clip.py` (HEAD d4696d4; Q-Refine's copy is byte-identical). They are OpenAI's 80
  ImageNet templates (open_clip's `OPENAI_IMAGENET_TEMPLATES`, the same set, different
  order) plus 5 scene templates; `check_templates` verifies that relation.
"""

from __future__ import annotations

import functools
import glob
import os
from typing import Dict, List

import numpy as np
import torch

from clip_engines import CONTEXT, ClipText, ClipTextTower

# CLIP_Surgery clip/clip.py, encode_text_with_prompt_ensemble, in its order.
TEMPLATES: List[str] = [
    'a bad photo of a {}.', 'a photo of many {}.', 'a sculpture of a {}.',
    'a photo of the hard to see {}.', 'a low resolution photo of the {}.', 'a rendering of a {}.',
    'graffiti of a {}.', 'a bad photo of the {}.', 'a cropped photo of the {}.',
    'a tattoo of a {}.', 'the embroidered {}.', 'a photo of a hard to see {}.',
    'a bright photo of a {}.', 'a photo of a clean {}.', 'a photo of a dirty {}.',
    'a dark photo of the {}.', 'a drawing of a {}.', 'a photo of my {}.', 'the plastic {}.',
    'a photo of the cool {}.', 'a close-up photo of a {}.', 'a black and white photo of the {}.',
    'a painting of the {}.', 'a painting of a {}.', 'a pixelated photo of the {}.',
    'a sculpture of the {}.', 'a bright photo of the {}.', 'a cropped photo of a {}.',
    'a plastic {}.', 'a photo of the dirty {}.', 'a jpeg corrupted photo of a {}.',
    'a blurry photo of the {}.', 'a photo of the {}.', 'a good photo of the {}.',
    'a rendering of the {}.', 'a {} in a video game.', 'a photo of one {}.', 'a doodle of a {}.',
    'a close-up photo of the {}.', 'a photo of a {}.', 'the origami {}.',
    'the {} in a video game.', 'a sketch of a {}.', 'a doodle of the {}.', 'a origami {}.',
    'a low resolution photo of a {}.', 'the toy {}.', 'a rendition of the {}.',
    'a photo of the clean {}.', 'a photo of a large {}.', 'a rendition of a {}.',
    'a photo of a nice {}.', 'a photo of a weird {}.', 'a blurry photo of a {}.',
    'a cartoon {}.', 'art of a {}.', 'a sketch of the {}.', 'a embroidered {}.',
    'a pixelated photo of a {}.', 'itap of the {}.', 'a jpeg corrupted photo of the {}.',
    'a good photo of a {}.', 'a plushie {}.', 'a photo of the nice {}.',
    'a photo of the small {}.', 'a photo of the weird {}.', 'the cartoon {}.', 'art of the {}.',
    'a drawing of the {}.', 'a photo of the large {}.', 'a black and white photo of a {}.',
    'the plushie {}.', 'a dark photo of a {}.', 'itap of a {}.', 'graffiti of the {}.',
    'a toy {}.', 'itap of my {}.', 'a photo of a cool {}.', 'a photo of a small {}.',
    'a tattoo of the {}.', 'there is a {} in the scene.', 'there is the {} in the scene.',
    'this is a {} in the scene.', 'this is the {} in the scene.', 'this is one {} in the scene.',
]

PQ_NAMES = ("overall", "technical", "rational", "natural")  # t0..t3, file PQ-<name>.pth
PQ_EOT_INDEX = 20  # 1 (SOS) + 8 ctx + 3 class tokens + 8 ctx


def check_templates() -> None:
    """85 unique templates = open_clip's 80 OpenAI ImageNet templates + 5 scene ones."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    if len(TEMPLATES) != 85 or len(set(TEMPLATES)) != 85:
        raise RuntimeError("export: templates: expected 85 unique templates")
    openai = {f("{}") for f in OPENAI_IMAGENET_TEMPLATES}
    extra = [t for t in TEMPLATES if t not in openai]
    if len(openai) != 80 or not openai <= set(TEMPLATES) or len(extra) != 5:
        raise RuntimeError(f"export: templates: not the 80 OpenAI templates + 5 (extra {extra})")


def templates_text() -> bytes:
    return ("\n".join(TEMPLATES) + "\n").encode()


def tokenize(texts: List[str]) -> torch.Tensor:
    """open_clip's SimpleTokenizer (ftfy + html unescape + whitespace clean + lower), context
    77, truncation keeps EOT last. Returns int32 [N,77]."""
    return _tokenizer()(texts, context_length=CONTEXT).to(torch.int32)


@functools.lru_cache(maxsize=1)
def _tokenizer():
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=CONTEXT)


@torch.no_grad()
def ensemble(text_model: ClipText, word: str) -> torch.Tensor:
    """CLIP-Surgery's encode_text_with_prompt_ensemble for one text: [E] f32."""
    ids = tokenize([t.format(word) for t in TEMPLATES])
    e = text_model(ids)
    e = e / e.norm(dim=-1, keepdim=True)
    m = e.mean(dim=0)
    return m / m.norm()


def _find(params: Dict[str, torch.Tensor], suffix: str) -> torch.Tensor:
    hits = [k for k in params if k == suffix or k.endswith("." + suffix)]
    if len(hits) != 1:
        raise RuntimeError(f"export: pq prompts: expected one '{suffix}' tensor, found {hits}")
    return params[hits[0]].float()


def load_pq_prompt(path: str) -> Dict[str, torch.Tensor]:
    """One CLIPIQA+ prompt-learner file: {'ctx': [2,16,W], 'prefix': [2,1,W], 'suffix': [2,60,W]}."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    params = obj.get("params", obj) if isinstance(obj, dict) else obj
    if not isinstance(params, dict):
        raise RuntimeError(f"export: pq prompts: {path}: not a dict of tensors")
    return {"ctx": _find(params, "ctx"), "prefix": _find(params, "token_prefix"),
            "suffix": _find(params, "token_suffix")}


def assemble_pq(p: Dict[str, torch.Tensor]) -> torch.Tensor:
    """[2,77,W] token embeddings in Q-Refine's `load_embed` order."""
    ctx, pre, suf = p["ctx"], p["prefix"], p["suffix"]
    if ctx.shape[:2] != (2, 16) or pre.shape[:2] != (2, 1) or suf.shape[:2] != (2, CONTEXT - 17):
        raise RuntimeError(f"export: pq prompts: unexpected shapes ctx {tuple(ctx.shape)}, "
                           f"prefix {tuple(pre.shape)}, suffix {tuple(suf.shape)}")
    return torch.cat([pre, ctx[:, :8], suf[:, :3], ctx[:, 8:], suf[:, 3:]], dim=1)


@torch.no_grad()
def pq_text_real(tower: ClipTextTower, prompt_dir: str) -> np.ndarray:
    """[4,2,E] from the four PQ-*.pth files in prompt_dir (see the module doc)."""
    out = []
    for name in PQ_NAMES:
        hits = sorted(glob.glob(os.path.join(prompt_dir, f"PQ-{name}*.pth")))
        if len(hits) != 1:
            raise RuntimeError(f"export: pq prompts: expected one PQ-{name}.pth in {prompt_dir}, found {hits}")
        emb = assemble_pq(load_pq_prompt(hits[0]))
        h = tower.hidden(emb)
        idx = torch.full((2,), PQ_EOT_INDEX, dtype=torch.int64)
        out.append(tower.project_at(h, idx))
    return torch.stack(out).numpy().astype(np.float32)


def pq_text_tiny(seed: int, dim: int = 512) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(4, 2, dim, generator=g).numpy().astype(np.float32)
