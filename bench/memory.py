"""Peak memory of scoring one video: a 30-s and a 60-s 9:16 clip per backbone, each in a fresh process.

    python bench/memory.py [--backbones mobilenet_v2 xception] [--chunk 0] [--clips DIR]

Clips: 360×640 (9:16), 30 fps, H.264 + AAC, written by bench/per_video.py's ``write_clip`` (a real background
and a real product photo). Each measurement runs ``score_video`` (vanilla saliency on the CPU, product
matching in its thread) once in a new Python process that first builds the network and the listing features,
then resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), so ``added`` = peak RSS while scoring − RSS
before it: what one scoring task adds to a worker that holds the model. MobileNetV2 uses its ImageNet weights;
Xception random-initialised weights (its ImageNet file is not available offline; memory does not depend on
weight values). Each line also prints pe_udfs.memory's estimate for the same backbone, chunk and seconds.

Last line: ``memory mobilenet_mb_30s=… mobilenet_mb_60s=… xception_mb_60s=… growth=…`` (MB added; growth =
MobileNetV2 60 s over 30 s).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

MB = 2**20


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure(backbone: str, path: str, seconds: int, chunk: int) -> dict:
    """In this (fresh) process: load everything, reset the peak mark, score ``path`` once; memory in MB."""
    import torch
    from skimage import data

    from models.network import build_engagement_net
    from models.settings import ModelSettings
    from pe_udfs.memory import frame_footprint, video_memory
    from pe_udfs.product import listing_features
    from pe_udfs.saliency import frame_chunk_for
    from pe_udfs.score import score_video
    from pe_udfs.settings import ClipSettings, ProductSettings, SaliencySettings

    torch.manual_seed(0)
    weights = "imagenet" if backbone != "xception" else None  # xception: random init (no offline ImageNet file)
    net = build_engagement_net(ModelSettings(backbone=backbone), weights=weights).eval()
    clip, product, saliency = ClipSettings(max_seconds=seconds), ProductSettings(), SaliencySettings(frame_chunk=chunk)
    listing = listing_features(data.coffee(), product)
    footprint = frame_footprint(net.backbone)
    used_chunk = frame_chunk_for(net, seconds, saliency, torch.device("cpu"))
    estimate = video_memory(footprint, seconds=seconds, chunk=used_chunk).total / MB
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = _status_kb("VmRSS") / 1024
    t = time.perf_counter()
    r = score_video(path, listing, model=net, clip=clip, product=product, saliency=saliency, device="cpu")
    wall = time.perf_counter() - t
    peak = _status_kb("VmHWM") / 1024
    return {"backbone": backbone, "seconds": r.n_seconds, "chunk": used_chunk, "before_mb": before, "peak_mb": peak,
            "added_mb": peak - before, "estimate_mb": estimate, "wall_s": wall,
            "graph_mb_per_frame": footprint.graph_per_frame / MB, "weights": weights or "random"}


def _in_fresh_process(backbone: str, path: str, seconds: int, chunk: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--one", backbone, path, str(seconds), "--chunk", str(chunk)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": REPO})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbones", nargs="+", default=["mobilenet_v2", "xception"])
    ap.add_argument("--chunk", type=int, default=0, help="frames per backbone pass (0 = the default)")
    ap.add_argument("--clips", default=None, help="folder for the generated clips (reused when present)")
    ap.add_argument("--one", nargs=3, metavar=("BACKBONE", "PATH", "SECONDS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1], int(args.one[2]), args.chunk)))
        return

    from skimage import data

    from bench.per_video import write_clip

    folder = args.clips or tempfile.mkdtemp(prefix="pe-bench-memory-")
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for seconds in (30, 60):
        paths[seconds] = os.path.join(folder, f"clip0_{seconds}s.mp4")
        if not os.path.exists(paths[seconds]):
            write_clip(paths[seconds] + ".part.mp4", 0, seconds, data.coffee())
            os.replace(paths[seconds] + ".part.mp4", paths[seconds])
    results = {}
    for backbone in args.backbones:
        for seconds in (30, 60):
            r = _in_fresh_process(backbone, paths[seconds], seconds, args.chunk)
            results[(backbone, seconds)] = r
            print(f"{backbone} ({r['weights']} weights) {r['seconds']} s, chunk {r['chunk']}: RSS before "
                  f"{r['before_mb']:.0f} MB, peak {r['peak_mb']:.0f} MB, added {r['added_mb']:.0f} MB "
                  f"(estimate {r['estimate_mb']:.0f} MB; graph {r['graph_mb_per_frame']:.0f} MB/frame); "
                  f"score_video {r['wall_s']:.1f} s", flush=True)

    def added(backbone: str, seconds: int) -> str:
        r = results.get((backbone, seconds))
        return f"{r['added_mb']:.0f}" if r else "nan"

    m30, m60 = results.get(("mobilenet_v2", 30)), results.get(("mobilenet_v2", 60))
    growth = f"{m60['added_mb'] / m30['added_mb']:.3f}" if m30 and m60 else "nan"
    print(f"memory mobilenet_mb_30s={added('mobilenet_v2', 30)} mobilenet_mb_60s={added('mobilenet_v2', 60)} "
          f"xception_mb_60s={added('xception', 60)} growth={growth}")


if __name__ == "__main__":
    main()
