#!/usr/bin/env python3
"""Golden outputs for engine/cpu's reference ops, computed with PyTorch.

Run from the repository root:  .venv/bin/python engine/cpu/testdata/make_goldens.py
It rewrites engine/cpu/testdata/{cases.json,*.npy} (a few hundred KB, committed).

resize_*: F.interpolate(mode=bicubic|bilinear, align_corners=False) and mode=nearest on
ragged sizes; for tall outputs only the rows listed in cases.json are stored.
fuse_*: the quality-map fusion of DESIGN 1.2/1.4 written independently in torch (cask
fusion, min-max, bicubic upsampling, gate, max_pool2d dilation, nearest downsampling).
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(20240611)


def save(name, arr):
    np.save(os.path.join(HERE, name + ".npy"), np.ascontiguousarray(arr))


def resize_cases():
    specs = [
        # name, planes, in_h, in_w, out_h, out_w, rows (None = all)
        ("g14_1024x768", 1, 14, 14, 1024, 768, [0, 1, 2, 3, 100, 511, 512, 513, 1021, 1023]),
        ("g14_37x53", 2, 14, 14, 37, 53, None),
        ("d5x7_3x2", 1, 5, 7, 3, 2, None),
        ("u3x2_5x7", 1, 3, 2, 5, 7, None),
        ("one_4x3", 2, 1, 1, 4, 3, None),
        ("d100x75_13x9", 1, 100, 75, 13, 9, None),
        ("d64x48_8x6", 1, 64, 48, 8, 6, None),
        ("id37x53", 1, 37, 53, 37, 53, None),
        ("d6x9_1x1", 1, 6, 9, 1, 1, None),
        ("u7x5_14x10", 1, 7, 5, 14, 10, None),
    ]
    out = []
    for name, planes, ih, iw, oh, ow, rows in specs:
        x = torch.rand(planes, 1, ih, iw, dtype=torch.float32)
        save(f"resize_{name}_in", x[:, 0].numpy())
        for mode in ("bicubic", "bilinear", "nearest"):
            kw = {} if mode == "nearest" else {"align_corners": False}
            y = F.interpolate(x, size=(oh, ow), mode=mode, **kw)[:, 0]
            if rows is not None:
                y = y[:, rows]
            save(f"resize_{name}_{mode}", y.numpy())
        out.append({"name": name, "planes": planes, "in_h": ih, "in_w": iw, "out_h": oh,
                    "out_w": ow, "rows": rows})
    return out


def fuse_cases():
    alpha = (0.935, 0.892 * 0.6, 0.826 * 0.8)
    pbound, pgate, abound = 100 / 255, 0.5, 170 / 255
    specs = [
        # name, batch, gh, gw, H, W, h, w, radius, align
        ("b2_64x48_r2", 2, 14, 14, 64, 48, 8, 6, 2, True),
        ("b1_37x53_r0", 1, 14, 14, 37, 53, 5, 7, 0, False),
        ("b1_grid3x5_20x30_r1", 1, 3, 5, 20, 30, 4, 5, 1, True),
    ]
    out = []
    for name, B, gh, gw, H, W, h, w, r, with_align in specs:
        T = 1 + gh * gw
        base = 0.55 + 0.35 * torch.rand(B, 1, 1)  # mid to high quality: partial masks
        good = (base + 0.4 * (torch.rand(B, 4, T) - 0.5)).clamp(0, 1).float()
        L = good[:, 0]
        for i in range(3):
            L = L * torch.clamp(good[:, i + 1] / torch.tensor(alpha[i], dtype=torch.float32), max=1.0)
        score = L[:, 0]
        G = L[:, 1:].reshape(B, 1, gh, gw)
        lo = G.amin(dim=(2, 3), keepdim=True)
        hi = G.amax(dim=(2, 3), keepdim=True)
        N = torch.where(hi - lo < 1e-12, torch.zeros_like(G), (G - lo) / (hi - lo))
        P = F.interpolate(N, size=(H, W), mode="bicubic", align_corners=False).clamp(0, 1)
        Lup = F.interpolate(G, size=(H, W), mode="bicubic", align_corners=False)
        if with_align:  # one soft blob per image, peak 1 at a random centre
            yy = torch.arange(H, dtype=torch.float32).view(1, 1, H, 1)
            xx = torch.arange(W, dtype=torch.float32).view(1, 1, 1, W)
            cy, cx = torch.rand(B, 1, 1, 1) * H, torch.rand(B, 1, 1, 1) * W
            rad2 = (0.3 * min(H, W)) ** 2
            A = (1 - ((yy - cy) ** 2 + (xx - cx) ** 2) / rad2).clamp(0, 1)
        else:
            A = torch.zeros(B, 1, H, W)
        m = ((P < pbound) & (Lup < pgate)) | (A > abound)
        m = m.float()
        if r > 0:
            m = F.max_pool2d(m, kernel_size=2 * r + 1, stride=1, padding=r)
        lat = F.interpolate(m, size=(h, w), mode="nearest")
        save(f"fuse_{name}_good", good.numpy())
        if with_align:
            save(f"fuse_{name}_align", A[:, 0].numpy())
        save(f"fuse_{name}_score", score.numpy())
        save(f"fuse_{name}_pmap", P[:, 0].numpy())
        save(f"fuse_{name}_lup", Lup[:, 0].numpy())
        save(f"fuse_{name}_mask_img", m[:, 0].numpy())
        save(f"fuse_{name}_mask_lat", lat[:, 0].numpy())
        out.append({"name": name, "batch": B, "grid_h": gh, "grid_w": gw, "height": H,
                    "width": W, "lat_h": h, "lat_w": w, "radius": r, "align": with_align})
    return out


def main():
    for f in os.listdir(HERE):
        if f.endswith(".npy"):
            os.remove(os.path.join(HERE, f))
    cases = {"torch": torch.__version__, "resize": resize_cases(), "fuse": fuse_cases()}
    with open(os.path.join(HERE, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
