"""Tests of the exporter (run: .venv/bin/python -m unittest discover -s tools/export -v).

The CLIP engines are checked against independent references written from other code:
open_clip's OpenAI-layout CLIP (the weights CLIP-Surgery loads) for the text tower and the
weight conversion, and a literal transcription of CLIP-Surgery's dual-path forward
(qkv = in_proj, reshape (B,N,3,heads,hd), q=k=v for the VV path, in-place residuals) for
the surgery encoder. All tolerances are float32 round-off of tiny models.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import clip_consts  # noqa: E402
import clip_engines  # noqa: E402
import common  # noqa: E402

common.setup_determinism()


def tiny_openclip(seed: int):
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(seed)
    m = CLIP(embed_dim=512,
             vision_cfg=CLIPVisionCfg(layers=4, width=32, head_width=16, patch_size=16, image_size=224),
             text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=16, heads=2, layers=2),
             quick_gelu=True).eval()
    # open_clip zero-inits some tensors; randomise everything so no path hides behind zeros
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


def hf_from_openclip(oc) -> torch.nn.Module:
    model = clip_engines.build_clip(clip_engines.tiny_config())
    missing, unexpected = model.load_state_dict(clip_engines.openai_to_hf(oc.state_dict()), strict=False)
    assert not [k for k in missing if not k.endswith("position_ids")] and not unexpected, (missing, unexpected)
    return model


@torch.no_grad()
def surgery_literal(visual, x: torch.Tensor) -> torch.Tensor:
    """CLIP-Surgery's VisionTransformer.forward + ResidualAttentionBlock + Attention, in its
    LND layout, on OpenAI-named weights (open_clip's visual tower)."""
    blocks = visual.transformer.resblocks
    n = len(blocks)
    n_surg = n // 2

    def attention(blk, h):  # h: LND
        heads = blk.attn.num_heads
        t = h.transpose(0, 1)  # NLD
        B, N, C = t.shape
        qkv = torch.nn.functional.linear(t, blk.attn.in_proj_weight, blk.attn.in_proj_bias)
        qkv = qkv.reshape(B, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scale = (C // heads) ** -0.5
        attn_ori = ((q @ k.transpose(-2, -1)) * scale).softmax(dim=-1)
        k = v
        q = k
        attn = ((q @ k.transpose(-2, -1)) * scale).softmax(dim=-1)
        x_ori = (attn_ori @ v).transpose(1, 2).reshape(B, N, C)
        xx = (attn @ v).transpose(1, 2).reshape(B, N, C)
        proj = blk.attn.out_proj
        return [proj(xx).transpose(0, 1), proj(x_ori).transpose(0, 1)]

    x = visual.conv1(x)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    x = torch.cat([visual.class_embedding + torch.zeros(x.shape[0], 1, x.shape[-1]), x], dim=1)
    x = visual.ln_pre(x + visual.positional_embedding)
    x = x.permute(1, 0, 2)
    for i, blk in enumerate(blocks):
        if i < n - n_surg:
            h = blk.ln_1(x).transpose(0, 1)
            a = blk.attn(h, h, h, need_weights=False)[0].transpose(0, 1)
            x = x + a
            x = x + blk.mlp(blk.ln_2(x))
        elif not isinstance(x, list):
            x_res, x_ori_res = attention(blk, blk.ln_1(x))
            x_ori = x + x_ori_res
            x_ori = x_ori + blk.mlp(blk.ln_2(x_ori))
            x += x_res
            x = [x, x_ori]
        else:
            x, x_ori = x
            x_res, x_ori_res = attention(blk, blk.ln_1(x_ori))
            x_ori += x_ori_res
            x_ori = x_ori + blk.mlp(blk.ln_2(x_ori))
            x += x_res
            x = [x, x_ori]
    x, x_ori = x
    x[0, :, :] = x_ori[0, :, :]
    x = x.permute(1, 0, 2)
    x = visual.ln_post(x) @ visual.proj
    return x / x.norm(dim=1, keepdim=True)  # G-Refine: norm over dim=1 (tokens)


class ClipTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.oc = tiny_openclip(7)
        cls.hf = hf_from_openclip(cls.oc)

    def test_surgery_matches_literal_clip_surgery(self):
        x = torch.randn(2, 3, 224, 224, generator=common.generator(3))
        want = surgery_literal(self.oc.visual, x.clone())
        with torch.no_grad():
            got = clip_engines.ClipSurgery(self.hf)(x)
        self.assertEqual(tuple(got.shape), (2, 197, 512))
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=2e-6, rtol=0)
        # the channel norm over tokens is 1, and the surgery actually changed the patches
        np.testing.assert_allclose(got.norm(dim=1).numpy(), 1.0, atol=1e-5)
        with torch.no_grad():
            plain = self.hf.visual_projection(self.hf.vision_model.post_layernorm(
                self.hf.vision_model(pixel_values=x).last_hidden_state))
        plain = plain / plain.norm(dim=1, keepdim=True)
        self.assertGreater(float((plain[:, 1:] - got[:, 1:]).abs().max()), 1e-3)

    def test_conversion_matches_openclip_image_features(self):
        x = torch.randn(1, 3, 224, 224, generator=common.generator(4))
        with torch.no_grad():
            want = self.oc.encode_image(x)
            got = self.hf.get_image_features(pixel_values=x)
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=2e-6, rtol=0)

    def test_text_matches_openclip_and_hf(self):
        ids = clip_consts.tokenize(["a photo of a cat", "", "Mr. Beans wearing sun glasses " * 20])
        self.assertEqual(ids.dtype, torch.int32)
        self.assertEqual(int(ids[2, 76]), clip_engines.EOS_ID)  # truncated: EOS last
        with torch.no_grad():
            got = clip_engines.ClipText(self.hf)(ids)
            want = self.oc.encode_text(ids.long())
            want_hf = self.hf.get_text_features(input_ids=ids.long())
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=2e-6, rtol=0)
        np.testing.assert_allclose(got.numpy(), want_hf.numpy(), atol=2e-6, rtol=0)

    def test_text_kv_matches_text_on_full_rows(self):
        # ClipTextKV with a table made from the template prefixes (by ClipTextKV itself,
        # empty past) must give open_clip's text features of the whole rows, also for rows
        # that fall back to the SOS-only prefix and for a truncated row.
        import clip_export

        kv = clip_engines.ClipTextKV(self.hf).eval()
        templates = list(clip_consts.TEMPLATES[:6]) + ["photo{}", "{} in the scene."]
        texts = ["", "graph", "blue doctor suit", "a very long prompt " + "word " * 80]
        prefixes, rows = clip_export.split_rows(templates, texts)
        self.assertTrue(any(cut == 1 for _, _, _, cut in rows if _ == 6), "photo{} + graph must fall back")
        table = prefixes + [[clip_engines.SOS_ID]]
        p = max(len(x) for x in table)
        ids = torch.zeros((len(table), p), dtype=torch.int32)
        for i, x in enumerate(table):
            ids[i, :len(x)] = torch.tensor(x)
        heads, hd = kv.heads, kv.head_dim
        dummy = torch.zeros(len(self.hf.text_model.encoder.layers), 1, heads, 1, hd)
        zeros = torch.zeros(len(table), dtype=torch.int32)
        with torch.no_grad():
            _, keys, values = kv(ids, dummy, dummy, zeros, zeros)
            f = clip_export.suffix_feeds(rows, table, keys.numpy(), values.numpy())
            got = kv(*[torch.from_numpy(f[n]) for n in ("input_ids", "past_keys", "past_values",
                                                        "past_index", "past_length")])[0]
            want = self.oc.encode_text(torch.from_numpy(np.stack([r for _, r, _, _ in rows])).long())
        # embeddings of magnitude ~1.5 (not normalised): a few float32 ulps
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=4e-6, rtol=0)

    def test_pq_assembly_matches_token_path(self):
        # A prompt whose EOS sits at index 20: split its token embeddings into the
        # prefix/ctx/suffix layout of a learned-prompt file; the PQ path must give the
        # same embedding as clip_text on the ids.
        ids = clip_consts.tokenize(["good photo of a cat sitting on the red mat in the sun with "
                                    "two dogs and a bird", "a b c d e f g h i j k l m n o p q r s"])
        eos = ids.float().argmax(-1)
        self.assertTrue(bool((eos == 20).all()), eos)
        text = clip_engines.ClipText(self.hf)
        with torch.no_grad():
            emb = text.tower.token_embedding(ids.long())
            want = text(ids)
        params = {"prompt_learner.ctx": torch.cat([emb[:, 1:9], emb[:, 12:20]], 1),
                  "prompt_learner.token_prefix": emb[:, :1],
                  "prompt_learner.token_suffix": torch.cat([emb[:, 9:12], emb[:, 20:]], 1)}
        with tempfile.TemporaryDirectory() as d:
            for n in clip_consts.PQ_NAMES:
                torch.save({"params": params}, os.path.join(d, f"PQ-{n}.pth"))
            got = clip_consts.pq_text_real(text.tower, d)
        self.assertEqual(got.shape, (4, 2, 512))
        for i in range(4):
            np.testing.assert_allclose(got[i], want.numpy(), atol=2e-6, rtol=0)

    def test_templates(self):
        clip_consts.check_templates()
        self.assertEqual(len(clip_consts.templates_text().decode().splitlines()), 85)


class FixtureTest(unittest.TestCase):
    """Checks the committed tiny model set against its manifest and its goldens."""

    tiny = os.path.join(ROOT, "testdata", "models", "tiny")
    goldens = os.path.join(ROOT, "testdata", "goldens")

    def setUp(self):
        if not os.path.exists(os.path.join(self.tiny, "models.json")):
            self.skipTest("no tiny model set: run tools/fixtures.sh")

    def test_manifest_hashes(self):
        with open(os.path.join(self.tiny, "models.json")) as f:
            man = json.load(f)
        self.assertEqual(man["format"], 1)
        entries = list(man["engines"].values()) + list(man["constants"].values()) + list(man["files"].values())
        self.assertGreaterEqual(len(entries), 6)
        for e in entries:
            self.assertEqual(common.sha256_file(os.path.join(self.tiny, e["file"])), e["sha256"], e["file"])
        for n, c in man["constants"].items():
            size = os.path.getsize(os.path.join(self.tiny, c["file"]))
            self.assertEqual(size, 4 * int(np.prod(c["shape"])), n)

    def test_ort_reproduces_clip_goldens(self):
        for engine, inp, name, out in (("clip_surgery", "clip_surgery_input.npy", "pixel_values",
                                        "clip_surgery_tokens.npy"),
                                       ("clip_text", "clip_text_ids.npy", "input_ids", "clip_text_embeds.npy")):
            x = np.load(os.path.join(self.goldens, inp))
            want = np.load(os.path.join(self.goldens, out))
            got = common.ort_session(os.path.join(self.tiny, engine + ".onnx")).run(None, {name: x})[0]
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=engine)

    def test_aq_empty_consistent_with_templates(self):
        # recompute the ensemble of "" with the ONNX text engine and the shipped templates
        with open(os.path.join(self.tiny, "templates.txt")) as f:
            tpl = f.read().splitlines()
        ids = clip_consts.tokenize([t.format("") for t in tpl]).numpy()
        e = common.ort_session(os.path.join(self.tiny, "clip_text.onnx")).run(None, {"input_ids": ids})[0]
        e = e / np.linalg.norm(e, axis=-1, keepdims=True)
        m = e.mean(0)
        m = m / np.linalg.norm(m)
        got = np.fromfile(os.path.join(self.tiny, "aq_empty.bin"), dtype="<f4")
        np.testing.assert_allclose(got, m, atol=1e-5, rtol=0)

    def test_preprocess_golden(self):
        from PIL import Image

        import images

        img = Image.open(os.path.join(ROOT, "testdata", "images", "sample.png"))
        self.assertEqual(img.size, (320, 240))
        got = images.clip_preprocess(img).numpy()
        want = np.load(os.path.join(self.goldens, "preprocess_sample.npy"))
        np.testing.assert_array_equal(got, want)


class DiffusionFixtureTest(unittest.TestCase):
    """The stage goldens, replayed with the ONNX engines and hand-written scheduler maths
    (what the Go refiner must do)."""

    tiny = FixtureTest.tiny
    goldens = FixtureTest.goldens

    def setUp(self):
        if not os.path.exists(os.path.join(self.goldens, "sdxl_params.json")):
            self.skipTest("no stage goldens: run tools/fixtures.sh")

    def g(self, name):
        return np.load(os.path.join(self.goldens, name + ".npy"))

    def sess(self, name):
        return common.ort_session(os.path.join(self.tiny, name + ".onnx"))

    def test_sdxl_text_engines_give_prompt_embeds(self):
        hl = self.sess("sdxl_text_l").run(None, {"input_ids": self.g("sdxl_ids_l")})[0]
        hg, pooled = self.sess("sdxl_text_g").run(None, {"input_ids": self.g("sdxl_ids_g")})
        want = self.g("sdxl_prompt_embeds")
        np.testing.assert_array_equal(want[0], 0)  # zero negative embeddings
        np.testing.assert_allclose(np.concatenate([hl, hg], -1)[0], want[1], atol=1e-5, rtol=0)
        np.testing.assert_allclose(pooled[0], self.g("sdxl_text_embeds")[1], atol=1e-5, rtol=0)

    def test_sdxl_euler_loop_by_hand(self):
        with open(os.path.join(self.goldens, "sdxl_params.json")) as f:
            p = json.load(f)
        sc = p["scheduler"]
        self.assertEqual((sc["timestep_spacing"], sc["beta_schedule"], sc["steps_offset"]),
                         ("leading", "scaled_linear", 1))
        n = p["num_inference_steps"]
        betas = np.linspace(sc["beta_start"] ** 0.5, sc["beta_end"] ** 0.5, sc["num_train_timesteps"],
                            dtype=np.float32) ** 2
        acp = np.cumprod(1.0 - betas, axis=0)
        ratio = sc["num_train_timesteps"] // n
        ts = (np.arange(0, n) * ratio).round()[::-1].astype(np.float32) + sc["steps_offset"]
        sig_all = ((1 - acp) / acp) ** 0.5
        sigmas = np.concatenate([np.interp(ts, np.arange(len(sig_all)), sig_all), [0.0]]).astype(np.float32)
        start = n - p["steps"]
        np.testing.assert_array_equal(ts[start:], self.g("sdxl_timesteps"))
        x = self.g("sdxl_image_latents") + self.g("sdxl_noise") * sigmas[start]
        np.testing.assert_allclose(x, self.g("sdxl_latents_init"), atol=1e-5, rtol=0)
        unet = self.sess("sdxl_unet")
        emb, te, tid = self.g("sdxl_prompt_embeds"), self.g("sdxl_text_embeds"), self.g("sdxl_time_ids")
        mask, masked = self.g("sdxl_mask_latents"), self.g("sdxl_masked_image_latents")
        steps = self.g("sdxl_latents_steps")
        for i in range(p["steps"]):
            s, s_next = sigmas[start + i], sigmas[start + i + 1]
            xin = np.concatenate([np.concatenate([x, x]) / np.sqrt(s * s + 1),
                                  np.concatenate([mask, mask]), np.concatenate([masked, masked])], 1)
            eps = unet.run(None, {"sample": xin.astype(np.float32), "timestep": ts[start + i:start + i + 1],
                                  "encoder_hidden_states": emb, "text_embeds": te, "time_ids": tid})[0]
            u, c = eps[:1], eps[1:]
            e = u + p["guidance_scale"] * (c - u)
            x = (x + e * (s_next - s)).astype(np.float32)
            np.testing.assert_allclose(x, steps[i], atol=1e-4, rtol=0, err_msg=f"step {i}")
        img = self.sess("sdxl_vae_decoder").run(None, {"latent": x / 0.13025})[0]
        np.testing.assert_allclose(np.clip(img / 2 + 0.5, 0, 1), self.g("sdxl_decoded"), atol=1e-4, rtol=0)

    def test_pasd_unet_step0(self):
        x = self.g("pasd_latents_init")
        eps = self.sess("pasd_unet").run(None, {
            "sample": np.concatenate([x, x]), "timestep": self.g("pasd_timesteps")[:1],
            "encoder_hidden_states": self.g("pasd_text_hidden"),
            "control": np.concatenate([self.g("pasd_image")] * 2)})[0]
        np.testing.assert_allclose(eps, self.g("pasd_noise_pred")[0], atol=1e-5, rtol=0)
        hid = self.sess("pasd_text").run(None, {"input_ids": self.g("pasd_ids")})[0]
        np.testing.assert_allclose(hid, self.g("pasd_text_hidden"), atol=1e-5, rtol=0)

    def test_colorfix_golden(self):
        import pasd_export

        got = pasd_export.wavelet_color_fix(torch.from_numpy(self.g("pasd_decoded")),
                                            torch.from_numpy(self.g("pasd_image"))).numpy()
        np.testing.assert_allclose(got, self.g("pasd_colorfix"), atol=1e-6, rtol=0)
        # the fix keeps the source's low band: the result is closer to the source in the mean
        self.assertLess(abs(got.mean() - self.g("pasd_image").mean()),
                        abs(self.g("pasd_decoded").mean() - self.g("pasd_image").mean()) + 1e-3)


class PasdRealExportTest(unittest.TestCase):
    """The real pasd_unet path (--pasd-checkout/--pasd-weights/--sd15) on tiny seeded models
    built from the PASD checkout's own classes (SD-1.5's block pattern shrunk: (16, 32, 32),
    so the UpBlock2D pixel attention's context width equals its skips' like in SD-1.5).
    The reference is written here from pipeline_pasd.py's denoising step, not the exporter's
    wrapper. Needs GRF_PASD_CHECKOUT (a yangxy/PASD checkout) and einops."""

    HEADS = 2
    TEXT = 8

    @classmethod
    def setUpClass(cls):
        checkout = os.environ.get("GRF_PASD_CHECKOUT")
        if not checkout:
            raise unittest.SkipTest("GRF_PASD_CHECKOUT is not set (path of a yangxy/PASD checkout)")
        import pasd_export

        cls.unet_cls, cls.control_cls = pasd_export.pasd_classes(checkout)
        cls.checkout = checkout

    def build_inputs(self, root):
        from diffusers import UniPCMultistepScheduler

        import diffusion
        import pasd_export

        blocks = dict(block_out_channels=(16, 32, 32), layers_per_block=1, norm_num_groups=8,
                      down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                      cross_attention_dim=self.TEXT, attention_head_dim=self.HEADS)
        common.seed(71)
        unet = self.unet_cls(sample_size=8, in_channels=4, out_channels=4,
                             up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), **blocks)
        common.seed(72)
        control = self.control_cls(in_channels=4, conditioning_embedding_out_channels=(8, 8, 16, 16), **blocks)
        # zero convs would make every residual (and so every pixel-attention context) zero
        diffusion.randomise_zeros(control, common.generator(73), std=0.5)
        weights = os.path.join(root, "pasd")
        unet.save_pretrained(os.path.join(weights, "unet"))
        control.save_pretrained(os.path.join(weights, "controlnet"))
        sd15 = os.path.join(root, "sd15")
        common.seed(74)
        diffusion.tiny_text(diffusion.tiny_text_config(self.TEXT, 2, 2), False).save_pretrained(
            os.path.join(sd15, "text_encoder"))
        common.seed(75)
        diffusion.tiny_vae(pasd_export.VAE_SCALE).save_pretrained(os.path.join(sd15, "vae"))
        UniPCMultistepScheduler(**pasd_export.unipc_config()).save_pretrained(os.path.join(sd15, "scheduler"))
        return sd15, weights

    def test_real_pasd_unet_matches_pipeline_step(self):
        import export

        with tempfile.TemporaryDirectory() as root:
            sd15, weights = self.build_inputs(root)
            out = os.path.join(root, "set")
            rc = export.main(["--out", out, "--groups", "pasd", "--sd15", sd15,
                              "--pasd-checkout", self.checkout, "--pasd-weights", weights])
            self.assertEqual(rc, 0)
            with open(os.path.join(out, "models.json")) as f:
                entry = json.load(f)["engines"]["pasd_unet"]
            self.assertEqual([(i["name"], i["shape"]) for i in entry["inputs"]],
                             [("sample", [-1, 4, -1, -1]), ("timestep", [1]),
                              ("encoder_hidden_states", [-1, 77, self.TEXT]), ("control", [-1, 3, -1, -1])])
            self.assertEqual(entry["data_file"], "pasd_unet.onnx.data")
            import onnx

            graph = onnx.load(os.path.join(out, "pasd_unet.onnx"), load_external_data=False).graph
            self.assertTrue(any("pixel_attentions" in t.name for t in graph.initializer),
                            "no pixel-aware attention weights in the graph")

            # reference: one step of pipeline_pasd.py, models loaded as test_pasd.py does
            unet = self.unet_cls.from_pretrained(weights, subfolder="unet", low_cpu_mem_usage=False).eval()
            control = self.control_cls.from_pretrained(weights, subfolder="controlnet",
                                                       low_cpu_mem_usage=False).eval()
            sess = common.ort_session(os.path.join(out, "pasd_unet.onnx"))
            g = common.generator(76)
            for b, h, w in ((2, 6, 10), (4, 9, 7), (1, 8, 8)):
                x = torch.randn(b, 4, h, w, generator=g)
                t = torch.tensor(921)
                text = torch.randn(b, 77, self.TEXT, generator=g)
                image = torch.rand(b, 3, 8 * h, 8 * w, generator=g)
                with torch.no_grad():
                    rgbs, down, mid = control(x, t, encoder_hidden_states=text, controlnet_cond=image,
                                              conditioning_scale=1.0, guess_mode=False, return_dict=False)
                    want = unet(x, t, encoder_hidden_states=text, down_block_additional_residuals=down,
                                mid_block_additional_residual=mid, return_dict=False)[0].numpy()
                feeds = {"sample": x.numpy(), "timestep": np.array([921.0], dtype=np.float32),
                         "encoder_hidden_states": text.numpy(), "control": image.numpy()}
                got = sess.run(None, feeds)[0]
                diff = float(np.abs(got.astype(np.float64) - want).max())
                print(f"pasd_unet real path, tiny PASD {b}x4x{h}x{w}: ort vs torch max abs diff {diff:.3g}")
                self.assertLessEqual(diff, 1e-4)
                # another control image moves the output far more than the export error
                feeds["control"] = torch.rand(b, 3, 8 * h, 8 * w, generator=g).numpy()
                moved = float(np.abs(sess.run(None, feeds)[0] - got).max())
                print(f"  output change for another control image: {moved:.3g}")
                self.assertGreater(moved, 100 * max(diff, 1e-6))


if __name__ == "__main__":
    unittest.main()


class Fp16Test(unittest.TestCase):
    """`export.py --precision fp16`: fp16 weights and compute inside the graph, float32 I/O
    (the contract), the SDXL VAE kept fp32, and fp16-vs-fp32 parity within
    common.FP16_TOL * max(1, max |fp32|) on the tiny set."""

    def test_half_precision_wrapper(self):
        torch.manual_seed(3)
        m = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4)).eval()
        h = common.HalfPrecision(m)
        x = torch.randn(5, 8)
        self.assertEqual(h(x).dtype, torch.float32)
        self.assertTrue(all(p.dtype == torch.float16 for p in h.parameters()))
        self.assertTrue(all(p.dtype == torch.float32 for p in m.parameters()), "the original stays fp32")
        rel = common.fp16_parity("lin", h, m, ["x"], ["y"], {"x": x})
        self.assertLess(rel["y"], 1e-2)
        other = torch.nn.Sequential(torch.nn.Linear(8, 4)).eval()  # a different network must fail
        with self.assertRaises(common.ExportError):
            common.fp16_parity("lin", h, other, ["x"], ["y"], {"x": x})

    def test_tiny_fp16_export(self):
        import onnx

        import export

        with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as img:
            try:
                rc = export.main(["--tiny", "--precision", "fp16", "--groups", "sdxl,pasd",
                                  "--out", out, "--goldens", "", "--images", img])
            finally:
                common.PRECISION = "fp32"
                common.FP32_ENGINES = {"sdxl_vae_encoder", "sdxl_vae_decoder"}
            self.assertEqual(rc, 0)
            with open(os.path.join(out, "models.json")) as f:
                got = json.load(f)
            with open(os.path.join(ROOT, "testdata", "models", "tiny", "models.json")) as f:
                ref = json.load(f)
            self.assertIn("--precision fp16", got["created_by"])
            for name, e in got["engines"].items():
                self.assertEqual((e["inputs"], e["outputs"]),
                                 (ref["engines"][name]["inputs"], ref["engines"][name]["outputs"]),
                                 f"{name}: the contract (float32 I/O) is unchanged")
                m = onnx.load(os.path.join(out, e["file"]))
                kinds = {t.data_type for t in m.graph.initializer if t.dims and np.prod(t.dims) > 1}
                want = onnx.TensorProto.FLOAT if name in ("sdxl_vae_encoder", "sdxl_vae_decoder") else onnx.TensorProto.FLOAT16
                self.assertEqual(kinds, {want}, f"{name}: weight dtypes")
