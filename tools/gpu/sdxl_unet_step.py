"""Full-size SDXL-Inpainting UNet, seeded random weights, fp16: one 1024² CFG step with
diffusers' PyTorch UNet2DConditionModel, and the same weights exported to ONNX for grefine.

NOT YET RUN on a GPU (prepared for the first GPU sessions: verify-ort.sh, verify-gpu.sh step d).

    python3 tools/gpu/sdxl_unet_step.py --out DIR [--runs 10] [--seed 0] [--compile]
    python3 tools/gpu/sdxl_unet_step.py --out DIR --smoke    # tiny UNet, float32, CPU: checks the script

Writes into DIR:
  unet.onnx (+ external weight files)   fp32 inputs/outputs, fp16 weights and maths inside
                                         (Cast nodes at the edges), the grefine sdxl_unet contract:
                                         sample[2,9,128,128], timestep[1], encoder_hidden_states[2,77,2048],
                                         text_embeds[2,1280], time_ids[2,6] -> noise_pred[2,4,128,128]
  inputs/<name>.npy                      the step's inputs (float32)
  noise_pred_torch.npy                   PyTorch's output for them
  pytorch.json                           PyTorch's step latency (median/min over --runs, after 3 warm-ups),
                                         versions, GPU; with --compile also torch.compile's (compile
                                         time, median, min) or why it failed
The weights are random, so the numbers say nothing about image quality; the architecture
and therefore the cost are the real ones. The config below was checked (2026-12-07) against a
public copy of SDXL-Inpainting 0.1's unet/config.json (diffusers 0.21.0.dev0, from
valhalla/sdxl-inpaint-ema): in_channels 9, blocks 320/640/1280, transformer layers 1/2/10,
heads 5/10/20, cross-attention 2048, text_time embedding 256 -> 2816, linear projections,
norm eps 1e-5; its other keys are training-only (EMA) or diffusers' defaults.
"""
import argparse
import inspect
import json
import os
import time

import numpy as np
import torch
from diffusers import UNet2DConditionModel
import diffusers

SDXL_INPAINT_UNET = dict(
    sample_size=128, in_channels=9, out_channels=4, center_input_sample=False, flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(320, 640, 1280), layers_per_block=2, transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20), cross_attention_dim=2048, use_linear_projection=True, norm_num_groups=32,
    act_fn="silu", addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, upcast_attention=False)


# --smoke: the same block structure at toy widths (CPU, float32), to check the script itself.
SMOKE_UNET = dict(SDXL_INPAINT_UNET, sample_size=16, block_out_channels=(32, 64, 64), norm_num_groups=8,
                  transformer_layers_per_block=(1, 1, 1), attention_head_dim=(2, 4, 4), cross_attention_dim=32,
                  addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 16)


class Step(torch.nn.Module):
    """The grefine contract around the UNet: float32 in, float32 out, dtype inside."""

    def __init__(self, unet, dtype):
        super().__init__()
        self.unet = unet
        self.dtype = dtype

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
        h = self.dtype
        out = self.unet(sample.to(h), timestep.to(h), encoder_hidden_states.to(h),
                        added_cond_kwargs={"text_embeds": text_embeds.to(h), "time_ids": time_ids.to(h)},
                        return_dict=False)[0]
        return out.float()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-export", action="store_true", help="time PyTorch only")
    ap.add_argument("--smoke", action="store_true", help="toy-width UNet, float32, on the CPU")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(step) (after eager)")
    a = ap.parse_args()
    os.makedirs(os.path.join(a.out, "inputs"), exist_ok=True)
    cfg, dtype, side, ctx, pooled = SDXL_INPAINT_UNET, torch.float16, 128, 2048, 1280
    if a.smoke:
        cfg, dtype, side, ctx, pooled = SMOKE_UNET, torch.float32, 16, 32, 16
        dev = torch.device("cpu")
    else:
        assert torch.cuda.is_available(), "no CUDA device visible to PyTorch"
        dev = torch.device("cuda")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(a.seed)
    t0 = time.time()
    unet = UNet2DConditionModel(**cfg).to(dtype).to(dev).eval()
    params = sum(p.numel() for p in unet.parameters())
    print(f"unet: {params / 1e9:.3f} G parameters, built in {time.time() - t0:.1f} s", flush=True)
    step = Step(unet, dtype).eval()

    g = torch.Generator().manual_seed(a.seed + 1)
    px = side * 8
    inputs = {
        "sample": torch.randn(2, 9, side, side, generator=g),
        "timestep": torch.tensor([500.0]),
        "encoder_hidden_states": torch.randn(2, 77, ctx, generator=g),
        "text_embeds": torch.randn(2, pooled, generator=g),
        "time_ids": torch.tensor([[px, px, 0.0, 0.0, px, px]] * 2),
    }
    for k, v in inputs.items():
        np.save(os.path.join(a.out, "inputs", k + ".npy"), v.numpy().astype(np.float32))
    args = tuple(v.to(dev) for v in inputs.values())

    with torch.inference_mode():
        for _ in range(3):
            out = step(*args)
        sync()
        ts = []
        for _ in range(a.runs):
            t = time.perf_counter()
            out = step(*args)
            sync()
            ts.append(time.perf_counter() - t)
    np.save(os.path.join(a.out, "noise_pred_torch.npy"), out.cpu().numpy().astype(np.float32))
    ts.sort()
    rep = {"median_ms": ts[len(ts) // 2] * 1e3, "min_ms": ts[0] * 1e3, "runs": a.runs,
           "torch": torch.__version__, "diffusers": diffusers.__version__,
           "gpu": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu (smoke)", "dtype": str(dtype),
           "params": params, "attention": type(unet.attn_processors[next(iter(unet.attn_processors))]).__name__,
           "note": "host-to-device copies excluded (inputs already on the device); random weights"}
    if a.compile:
        rep["compile"] = time_compiled(step, args, a.runs, sync)
    with open(os.path.join(a.out, "pytorch.json"), "w") as f:
        json.dump(rep, f, indent=1)
    print("pytorch:", json.dumps(rep), flush=True)
    if a.skip_export:
        return

    t0 = time.time()
    path = os.path.join(a.out, "unet.onnx")
    kw = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    with torch.no_grad():
        try:
            torch.onnx.export(step, args, path, input_names=list(inputs), output_names=["noise_pred"],
                              opset_version=17, do_constant_folding=True, **kw)
        except Exception as e:  # newer torch may have dropped the TorchScript exporter
            if not kw:
                raise
            print(f"onnx: TorchScript export failed ({type(e).__name__}: {e}); trying dynamo=True", flush=True)
            torch.onnx.export(step, args, path, input_names=list(inputs), output_names=["noise_pred"],
                              opset_version=18, dynamo=True, external_data=True)
    print(f"onnx: exported in {time.time() - t0:.1f} s to {path}", flush=True)


def time_compiled(step, args, runs, sync):
    """torch.compile(step): compile time (the first call) and the step's median/min, or the error."""
    try:
        t0 = time.time()
        cstep = torch.compile(step)
        with torch.inference_mode():
            cstep(*args)
            sync()
            compile_s = time.time() - t0
            for _ in range(2):
                cstep(*args)
            sync()
            ts = []
            for _ in range(runs):
                t = time.perf_counter()
                cstep(*args)
                sync()
                ts.append(time.perf_counter() - t)
        ts.sort()
        return {"compile_s": compile_s, "median_ms": ts[len(ts) // 2] * 1e3, "min_ms": ts[0] * 1e3, "runs": runs}
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"[:500]}


if __name__ == "__main__":
    main()
