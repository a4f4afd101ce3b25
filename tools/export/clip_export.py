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


def text_kv_io(model) -> tuple:
    """clip_text_kv's I/O (ClipTextKV): L layers, H heads of hd dims are static."""
    cfg = model.text_model.config
    l, h = cfg.num_hidden_layers, cfg.num_attention_heads
    hd = cfg.hidden_size // h
    kv = [l, -1, h, -1, hd]
    return (
        [{"name": "input_ids", "dtype": "int32", "shape": [-1, -1]},
         {"name": "past_keys", "dtype": "float32", "shape": kv},
         {"name": "past_values", "dtype": "float32", "shape": kv},
         {"name": "past_index", "dtype": "int32", "shape": [-1]},
         {"name": "past_length", "dtype": "int32", "shape": [-1]}],
        [{"name": "text_embeds", "dtype": "float32", "shape": [-1, EMBED]},
         {"name": "present_keys", "dtype": "float32", "shape": kv},
         {"name": "present_values", "dtype": "float32", "shape": kv}],
    )


def split_rows(templates, texts):
    """The prefix cut grefine's text encoder makes: per template the ids of SOS + the
    tokens before "{}" (EOS dropped), and per (text, template) row the full ids and the
    prefix length (the template's when the full ids start with its prefix, else 1: SOS).
    Returns (prefixes [list of id lists], rows [(template index, ids, n, cut)])."""
    pre = clip_consts.tokenize([t.split("{}")[0] for t in templates]).numpy()
    prefixes = [list(r[:int(np.argmax(r))]) for r in pre]  # up to EOS, exclusive
    rows = []
    for x in texts:
        full = clip_consts.tokenize([t.format(x) for t in templates]).numpy()
        for k, r in enumerate(full):
            n = int(np.argmax(r)) + 1
            p = prefixes[k]
            cut = len(p) if n > len(p) and list(r[:len(p)]) == p else 1
            rows.append((k, r, n, cut))
    return prefixes, rows


def kv_table(sess, prefixes):
    """Runs the prefixes through clip_text_kv (empty past) -> (keys, values) [L,T,H,P,hd]."""
    p = max(len(x) for x in prefixes)
    ids = np.zeros((len(prefixes), p), dtype=np.int32)
    for i, x in enumerate(prefixes):
        ids[i, :len(x)] = x
    n = len(prefixes)
    inp = sess.get_inputs()[1].shape
    dummy = np.zeros((inp[0], 1, inp[2], 1, inp[4]), dtype=np.float32)
    _, k, v = sess.run(None, {"input_ids": ids, "past_keys": dummy, "past_values": dummy,
                              "past_index": np.zeros(n, np.int32), "past_length": np.zeros(n, np.int32)})
    return k, v


def suffix_feeds(rows, prefixes, keys, values):
    """Feeds of one clip_text_kv call for rows (see split_rows) over the table."""
    s = max(n - cut for _, _, n, cut in rows)
    ids = np.zeros((len(rows), s), dtype=np.int32)
    index = np.zeros(len(rows), np.int32)
    length = np.zeros(len(rows), np.int32)
    sos = len(prefixes) - 1  # the table's last row is SOS alone
    for i, (k, r, n, cut) in enumerate(rows):
        ids[i, :n - cut] = r[cut:n]
        index[i] = k if cut > 1 or len(prefixes[k]) == 1 else sos
        length[i] = cut
    return {"input_ids": ids, "past_keys": keys, "past_values": values, "past_index": index,
            "past_length": length}


def export_text_kv(ms, model, text) -> None:
    """clip_text_kv: export, ORT vs torch on a traced example, then the whole prefix path
    (table from the 85 template prefixes, rows cut after them) against ClipText on the
    full 77-token rows."""
    kv_mod = clip_engines.ClipTextKV(model).eval()
    io = text_kv_io(model)
    g = common.generator(SEED_INPUT + 1)
    l, _, h, _, hd = io[0][1]["shape"]
    feeds = {"input_ids": torch.randint(1, 49000, (3, 5), generator=g, dtype=torch.int32),
             "past_keys": torch.randn(l, 2, h, 4, hd, generator=g),
             "past_values": torch.randn(l, 2, h, 4, hd, generator=g),
             "past_index": torch.tensor([1, 0, 1], dtype=torch.int32),
             "past_length": torch.tensor([4, 2, 0], dtype=torch.int32)}
    feeds["input_ids"][:, 3] = clip_engines.EOS_ID
    dyn = {"input_ids": {0: "batch", 1: "seq"}, "past_keys": {1: "slots", 3: "past"},
           "past_values": {1: "slots", 3: "past"}, "past_index": {0: "batch"},
           "past_length": {0: "batch"}, "text_embeds": {0: "batch"},
           "present_keys": {1: "batch", 3: "seq"}, "present_values": {1: "batch", 3: "seq"}}
    common.export_engine(ms, "clip_text_kv", kv_mod, io[0], io[1], dyn, feeds, [])
    sess = common.ort_session(ms.path("clip_text_kv.onnx"))
    templates = list(clip_consts.TEMPLATES)
    texts = ["", "blue doctor suit", TEXT_PROMPTS[0], TEXT_PROMPTS[2]]
    prefixes, rows = split_rows(templates, texts)
    keys, values = kv_table(sess, prefixes + [[clip_engines.SOS_ID]])
    got = sess.run(["text_embeds"], suffix_feeds(rows, prefixes + [[clip_engines.SOS_ID]], keys, values))[0]
    with torch.no_grad():
        want = text(torch.from_numpy(np.stack([r for _, r, _, _ in rows]))).numpy()
    d = float(np.max(np.abs(got.astype(np.float64) - want)))
    saved = 1 - sum(n - cut for _, _, n, cut in rows) / sum(n for _, _, n, _ in rows)
    ms.report.append(f"clip_text_kv: 85 template prefixes cached, {len(rows)} rows cut after them "
                     f"({saved:.1%} of the tokens): ort vs torch clip_text on 77 max abs diff {d:.3g}")
    if not d <= 1e-5:
        raise common.ExportError(f"export: clip_text_kv: prefix path differs from clip_text by {d:.3g}")


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

    export_text_kv(ms, model, text)

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
