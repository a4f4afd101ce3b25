"""Full-size CLIP ViT-B/16 with seeded random weights, for speed benchmarks only.

Writes a transformers CLIPModel directory (ViT-B/16: vision width 768, 12 layers, 12 heads,
patch 16; text width 512, 12 layers, 8 heads; projection 512) and four random CLIPIQA+-style
prompt files (PQ-{overall,technical,rational,natural}.pth: ctx [2,16,512], token_prefix
[2,1,512], token_suffix [2,60,512]) so that `export.py --groups clip --clip DIR/clip
--pq-prompts DIR/pq` exports a full-size model set. The numbers it produces mean nothing;
the architecture and therefore the cost are the real ones.

    .venv/bin/python tools/export/make_random_full.py --out .cache/random-full
"""
import argparse
import os

import torch
from transformers import CLIPConfig, CLIPModel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    cfg = CLIPConfig(
        text_config=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8,
                         max_position_embeddings=77, hidden_act="quick_gelu", vocab_size=49408),
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=224, patch_size=16, hidden_act="quick_gelu"),
        projection_dim=512)
    model = CLIPModel(cfg).eval()
    model.save_pretrained(os.path.join(a.out, "clip"))
    pq = os.path.join(a.out, "pq")
    os.makedirs(pq, exist_ok=True)
    for name in ("overall", "technical", "rational", "natural"):
        params = {"prompt_learner.ctx": torch.randn(2, 16, 512) * 0.02,
                  "token_prefix": torch.randn(1, 1, 512).expand(2, 1, 512).clone() * 0.02,
                  "token_suffix": torch.randn(2, 60, 512) * 0.02}
        torch.save({"params": params}, os.path.join(pq, f"PQ-{name}.pth"))
    print(f"random full-size CLIP in {a.out}/clip, PQ prompts in {pq}")


if __name__ == "__main__":
    main()
