"""GPU throughput: frames/s of the saliency pass (forward + backward) per backbone, and videos/s of `pe score`.

    python bench/gpu.py [--device cuda] [--frames 60] [--videos 20] [--xception-weights FILE]
    python bench/gpu.py --device cpu --frames 4 --videos 2 --backbones tiny     # a smoke run without a GPU

1. Saliency: for ``mobilenet_v2`` (ImageNet) and ``xception`` (random-initialised unless ``--xception-weights``;
   speed does not depend on weight values), ``engagement_heatmap`` on a ``--frames``-frame 224² clip — the
   chunked vanilla gradient the scoring job runs (features without a graph, head gradient, one backbone pass
   with gradients per chunk; frame chunk sized to the free GPU memory) — in float32 and under bf16 autocast;
   frames/s = frames / seconds (median of 3 after a warm-up), with the chunk and the peak GPU memory.
2. Scoring: a sample campaign of ``--videos`` videos (15-60 s, 9:16) in a temp lake, the default model
   registered as @champion, then the Spark job (``run_score``, local[*], ``device`` as given): videos/s end to end,
   decoding and SIFT overlapping the GPU (a decode thread per task; product matching in a thread per video).

Last line: ``gpu device="<name>" mobilenet_v2_fps=… mobilenet_v2_bf16_fps=… xception_fps=… xception_bf16_fps=…
score_videos_per_s=…``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def saliency_fps(backbone: str, device, frames: int, precision: str, weights_file: str | None) -> dict:
    """Frames/s of engagement_heatmap on one clip of ``frames`` frames; chunk and peak GPU memory."""
    import torch

    from models.network import build_engagement_net
    from models.settings import ModelSettings
    from pe_udfs.saliency import engagement_heatmap, frame_chunk_for
    from pe_udfs.settings import SaliencySettings

    torch.manual_seed(0)
    settings = ModelSettings(backbone=backbone, backbone_weights=weights_file)
    weights = None if backbone == "xception" and weights_file is None else "imagenet"
    net = build_engagement_net(settings, weights=weights).eval().to(device)
    clip = torch.rand(frames, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    saliency = SaliencySettings(precision=precision)
    chunk = frame_chunk_for(net, frames, saliency, device)
    engagement_heatmap(net, clip, saliency, device=device)  # warm-up: kernels, allocator
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(3):
        _sync(device)
        t = time.perf_counter()
        engagement_heatmap(net, clip, saliency, device=device)
        _sync(device)
        times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return {"fps": frames / statistics.median(times), "chunk": chunk, "peak_mb": peak}


def score_videos_per_s(n_videos: int, device: str) -> tuple[float, int, int]:
    """(videos/s, scored, errors) of the Spark scoring job on a fresh sample campaign of ``n_videos``."""
    from bench.score import sample_campaign_with_champion
    from jobs.scoring.nightly import run_score

    root = tempfile.mkdtemp(prefix="pe-bench-gpu-")
    try:
        cfg, spark, _lake = sample_campaign_with_champion(root, n_videos, 15.0, 60.0, overrides={"device": device})
        summary = run_score(cfg, spark=spark, validate_outputs=False)
        spark.stop()
        return summary.scored / summary.seconds, summary.scored, summary.errors
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--backbones", nargs="+", default=["mobilenet_v2", "xception"])
    ap.add_argument("--xception-weights", default=None, help="timm legacy_xception ImageNet state-dict file")
    args = ap.parse_args()

    import torch

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("bench/gpu.py: no CUDA device here (use --device cpu for a smoke run)")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}; torch {torch.__version__}", flush=True)
    fields = []
    for backbone in args.backbones:
        for precision in ("float32", "bfloat16"):
            r = saliency_fps(backbone, device, args.frames, precision, args.xception_weights if backbone == "xception"
                             else None)
            print(f"{backbone} {precision}: {r['fps']:.1f} frames/s forward+backward ({args.frames} frames, chunk "
                  f"{r['chunk']}, peak GPU memory {r['peak_mb']:.0f} MB)", flush=True)
            fields.append(f"{backbone}{'_bf16' if precision == 'bfloat16' else ''}_fps={r['fps']:.1f}")
    vps, scored, errors = score_videos_per_s(args.videos, args.device)
    print(f"pe score: {scored} videos scored ({errors} errors), {vps:.3f} videos/s", flush=True)
    print(f'gpu device="{name}" ' + " ".join(fields) + f" score_videos_per_s={vps:.3f}")


if __name__ == "__main__":
    main()
