"""The `clip` group: clip_surgery, clip_text, pq_text, aq_empty, templates.txt, the BPE
vocabulary, and (tiny) their goldens plus the sample image and its preprocessing golden."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import torch

import clip_consts
import clip_engines
import common
import images

SEED_CLIP = 1000  # tiny CLIP weights
SEED_PQ = 1001  # tiny pq_text
SEED_INPUT = 1002  # fixed random surgery input

GRID = 14
EMBED = 512

SURGERY_IO = (
    [{"name": "pixel_values", "dtype": "float32", "shape": [-1, 3, 224, 224]}],
    [{"name": "tokens", "dtype": "float32", "shape": [-1, 197, EMBED]}],
)
TEXT_IO = (
    # the sequence axis is dynamic (<= 77): see ClipTextTower.hidden
    [{"name": "input_ids", "dtype": "int32", "shape": [-1, -1]}],
    [{"name": "text_embeds", "dtype": "float32", "shape": [-1, EMBED]}],
)

# The clip_text golden prompts: a typical prompt, an empty-template string, and one long
# enough to be truncated at 77 tokens (EOS forced into the last slot).
TEXT_PROMPTS = [
    "Mr. Beans wearing sun glasses with blue doctor suit and stripe tie",
    "a bad photo of a .",
    "a very long prompt, " + " ".join(f"word{i} and colour #{i}" for i in range(40)),
]

# Tokenizer goldens (ids up to and including EOS): ASCII, case, punctuation, numbers,
# html entities, extra whitespace, unicode (ftfy fixes mojibake), empty, truncation.
TOKENIZER_CASES = [
    "", "a photo of a cat", "A PHOTO of a Cat!!", "Mr. Beans wearing sun glasses",
    "hello,world;  it's 2024-05-01 (v1.2)", "  leading and   trailing spaces  ",
    "fish &amp; chips &lt;3", "caf\u00e9 na\u00efve \u00fcber \u4e2d\u6587 \U0001F600",
    "don't won't they're we'll I'd", "3.14159 1,000,000 #hashtag @user",
    "the quick brown fox jumps over the lazy dog " * 12,
    "a photo of a {}.".format(""), "new\nline\ttab",
]


def _shapes(io) -> dict:
    return {d["name"]: d["shape"] for d in io[0] + io[1]}


def _golden(ms, goldens: str, file: str, arr: np.ndarray, how: str) -> None:
    common.write_npy(os.path.join(goldens, file), arr)
    ms.goldens.append((file, arr, how))


def run(ms, args, goldens: str, images_dir: str) -> None:
    clip_consts.check_templates()
    if args.tiny:
        common.seed(SEED_CLIP)
        model = clip_engines.build_clip(clip_engines.tiny_config())
    else:
        if not args.clip or not args.pq_prompts:
            raise common.ExportError("export: clip: the real export needs --clip and --pq-prompts")
        model = clip_engines.load_clip(args.clip)
    surgery = clip_engines.ClipSurgery(model).eval()
    text = clip_engines.ClipText(model).eval()

    # Fixed inputs: the preprocessed sample image and a seeded normal tensor.
    sample = images.make_sample()
    pre = images.clip_preprocess(sample)
    rnd = torch.randn(1, 3, 224, 224, generator=common.generator(SEED_INPUT))
    pixels = torch.cat([pre, rnd])
    ids = clip_consts.tokenize(TEXT_PROMPTS)

    with torch.no_grad():
        tokens = surgery(pixels)
        embeds = text(ids)

    # clip_surgery
    f = "clip_surgery.onnx"
    common.export_onnx("clip_surgery", surgery, (pixels[:1],), ms.path(f), ["pixel_values"], ["tokens"],
                       {"pixel_values": {0: "batch"}, "tokens": {0: "batch"}},
                       shapes=_shapes(SURGERY_IO))
    desc = common.check_contract("clip_surgery", ms.path(f), *SURGERY_IO)
    d = common.verify_ort("clip_surgery", ms.path(f), {"pixel_values": pixels.numpy()},
                          {"tokens": tokens.numpy()})
    ms.report.append(f"clip_surgery: ort vs torch max abs diff {d['tokens']:.3g} (batch 2)")
    with torch.no_grad():
        t3 = surgery(torch.cat([pixels, -pixels[:1]]))
    d3 = common.verify_ort("clip_surgery", ms.path(f), {"pixel_values": torch.cat([pixels, -pixels[:1]]).numpy()},
                           {"tokens": t3.numpy()})
    ms.report.append(f"clip_surgery: ort vs torch max abs diff {d3['tokens']:.3g} (batch 3)")
    ms.add_engine("clip_surgery", f, desc)

    # clip_text
    f = "clip_text.onnx"
    common.export_onnx("clip_text", text, (ids[:1],), ms.path(f), ["input_ids"], ["text_embeds"],
                       {"input_ids": {0: "batch", 1: "seq"}, "text_embeds": {0: "batch"}},
                       shapes=_shapes(TEXT_IO))
    desc = common.check_contract("clip_text", ms.path(f), *TEXT_IO)
    d = common.verify_ort("clip_text", ms.path(f), {"input_ids": ids.numpy()}, {"text_embeds": embeds.numpy()})
    ms.report.append(f"clip_text: ort vs torch max abs diff {d['text_embeds']:.3g} (batch 3)")
    tpl = clip_consts.tokenize([t.format("") for t in clip_consts.TEMPLATES])
    with torch.no_grad():
        tpl_ref = text(tpl)
    d = common.verify_ort("clip_text", ms.path(f), {"input_ids": tpl.numpy()}, {"text_embeds": tpl_ref.numpy()})
    ms.report.append(f"clip_text: ort vs torch max abs diff {d['text_embeds']:.3g} (batch 85, templates)")
    cut = int((tpl != 0).sum(dim=1).max())  # longest row incl. EOS (pad id 0)
    d = common.verify_ort("clip_text", ms.path(f), {"input_ids": tpl[:, :cut].numpy()}, {"text_embeds": tpl_ref.numpy()})
    ms.report.append(f"clip_text: ort on ids cut to {cut} tokens vs torch on 77: max abs diff {d['text_embeds']:.3g}")
    ms.add_engine("clip_text", f, desc)

    # constants
    if args.tiny:
        pq = clip_consts.pq_text_tiny(SEED_PQ)
    else:
        pq = clip_consts.pq_text_real(text.tower, args.pq_prompts)
    ms.add_constant("pq_text", "pq_text.bin", pq)
    aq_empty = clip_consts.ensemble(text, "").numpy().astype(np.float32)
    ms.add_constant("aq_empty", "aq_empty.bin", aq_empty)

    from open_clip.tokenizer import default_bpe
    shutil.copyfile(default_bpe(), ms.path("bpe_simple_vocab_16e6.txt.gz"))
    ms.add_file("bpe_vocab", "bpe_simple_vocab_16e6.txt.gz")
    common.write_bytes(ms.path("templates.txt"), clip_consts.templates_text())
    ms.add_file("templates", "templates.txt")

    ms.manifest["config"]["clip"] = {
        "image_size": images.CLIP_SIZE, "patch_size": 16, "grid": GRID, "embed_dim": EMBED,
        "context_length": clip_engines.CONTEXT, "mean": list(images.CLIP_MEAN),
        "std": list(images.CLIP_STD)}

    if not args.tiny or not goldens:
        return
    os.makedirs(goldens, exist_ok=True)
    os.makedirs(images_dir, exist_ok=True)
    common.write_bytes(os.path.join(images_dir, "sample.png"), images.png_bytes(sample))
    _golden(ms, goldens, "preprocess_sample.npy", pre.numpy(),
            "CLIP preprocessing of testdata/images/sample.png: PIL resize((224,224), BICUBIC) "
            "squash, RGB, float32 x/255, (x-mean)/std, CHW")
    _golden(ms, goldens, "clip_surgery_input.npy", pixels.numpy(),
            "row 0 = preprocess_sample.npy[0]; row 1 = torch.randn seeded "
            f"(torch.Generator().manual_seed({SEED_INPUT}))")
    _golden(ms, goldens, "clip_surgery_tokens.npy", tokens.numpy(),
            "PyTorch float32 ClipSurgery(tiny) on clip_surgery_input.npy")
    _golden(ms, goldens, "clip_text_ids.npy", ids.numpy(),
            "open_clip SimpleTokenizer (context 77, truncate) of the 3 prompts in "
            "clip_text_prompts.json")
    _golden(ms, goldens, "clip_text_embeds.npy", embeds.numpy(),
            "PyTorch float32 ClipText(tiny) on clip_text_ids.npy")
    words = ["dog", "blue doctor suit"]
    ens = torch.stack([clip_consts.ensemble(text, w) for w in words]).numpy()
    _golden(ms, goldens, "aq_ensemble.npy", ens,
            f"85-template ensemble (tiny clip_text) of {words}, before subtracting aq_empty")
    common.write_json(os.path.join(goldens, "clip_text_prompts.json"), TEXT_PROMPTS)
    ms.golden_files.append(("clip_text_prompts.json", "the 3 prompts of clip_text_ids.npy"))
    tok = clip_consts.tokenize(TOKENIZER_CASES).numpy()
    cases = []
    for text_in, row in zip(TOKENIZER_CASES, tok):
        n = int(np.argmax(row)) + 1  # up to and including EOS
        cases.append({"text": text_in, "ids": [int(v) for v in row[:n]]})
    common.write_bytes(os.path.join(goldens, "tokenizer_cases.json"),
                       (json.dumps(cases, ensure_ascii=False, indent=1) + "\n").encode())
    ms.golden_files.append(("tokenizer_cases.json",
                            "open_clip SimpleTokenizer ids (SOS..EOS, context 77, truncated) of "
                            "edge-case strings; pad with 0 to 77"))
