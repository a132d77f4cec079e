"""Cost of the training job's two hot loops on this machine: the frozen-backbone feature pass and the head.

    .venv/bin/python bench/train.py [--backbone mobilenet_v2] [--threads 1] [--seconds 10]

Prints frames/s of the feature pass (float32 vs bfloat16 autocast, channels-last, inference mode) and the
seconds one training step of the 3-D head costs per video of ``--seconds`` seconds, and the resulting
estimate for a 200-video campaign. Random pixels: the cost does not depend on the content.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _time(fn, repeat: int = 3) -> float:
    fn()  # warm-up (oneDNN picks kernels on first use)
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def main() -> int:
    import torch

    from models.backbones import cached_backbone
    from models.network import create_engagement_head, extract_features, fast_bfloat16

    p = argparse.ArgumentParser()
    p.add_argument("--backbone", default="mobilenet_v2")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=int, default=10, help="clip length S of the head step")
    p.add_argument("--videos", type=int, default=200)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    bb = cached_backbone(a.backbone)
    frames = torch.rand(32, 3, 224, 224)
    print(f"backbone {a.backbone}: {bb.out_channels} channels; torch threads {a.threads}; "
          f"native bf16: {fast_bfloat16('cpu')}")
    fps = {}
    for precision in ("float32", "bfloat16"):
        dt = _time(lambda: extract_features(bb, frames, chunk=32, precision=precision))
        fps[precision] = len(frames) / dt
        print(f"  feature pass {precision:>8}: {fps[precision]:6.1f} frames/s")
    head = create_engagement_head(in_channels=bb.out_channels)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3)
    feats = torch.randn(8, a.seconds, bb.out_channels, 7, 7)
    labels = torch.randn(8)

    def step():
        opt.zero_grad()
        ((head(feats) - labels) ** 2).mean().backward()
        opt.step()

    per_video = _time(step) / len(feats)
    print(f"  head training step: {per_video:.3f} s per {a.seconds}-s video")
    best = max(fps.values())
    n_frames = a.videos * a.seconds
    print(f"estimate for {a.videos} videos x {a.seconds} s ({n_frames} frames): feature pass "
          f"{n_frames / best:.0f} s per process at {best:.1f} frames/s; one epoch over 65% of them "
          f"{0.65 * a.videos * per_video:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
