"""Sample-campaign generation speed: N default videos (15–60 s, 30 fps, 360x640, H.264 + AAC) on K processes.

    python bench/sample.py [--videos 200] [--workers 2] [--keep DIR] [--min-seconds 15 --max-seconds 60]

Generates the media (MP4s, listing JPEGs) and the four tables in memory (no Spark: the lake writes are
timed by ``pe sample`` itself). Prints wall time, frames/s, CPU seconds split into H.264 encoding and
compositing, the load average (this is a shared machine: the CPU seconds are the fairer number), and as
last line ``sample videos=<N> wall_s=<t> target_s=180 frames_per_s=<f> cpu_s=<c>``.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs.synth.campaign import CampaignSpec, generate_campaign  # noqa: E402


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--min-seconds", type=float, default=15.0)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--keep", default=None, help="write the media here and keep them (default: a temp folder, removed)")
    args = ap.parse_args()

    root = args.keep or tempfile.mkdtemp(prefix="pe-bench-sample-")
    spec = CampaignSpec(n_videos=args.videos, seed=args.seed, min_seconds=args.min_seconds, max_seconds=args.max_seconds)
    load0 = os.getloadavg()
    t0, c0, s0 = time.perf_counter(), _children_cpu(), _self_cpu()
    campaign = generate_campaign(spec, root, workers=args.workers)
    wall = time.perf_counter() - t0
    cpu_children, cpu_self = _children_cpu() - c0, _self_cpu() - s0
    load1 = os.getloadavg()
    try:
        n = campaign.n_frames
        size = sum(os.path.getsize(p) for p in campaign.video_paths)
        seconds = len(campaign.truth)
        print(f"videos: {args.videos} ({seconds} s of video, {n} frames, {size / 2**20:.1f} MiB), "
              f"{args.workers} worker processes, scenarios {campaign.extras['scenarios']}")
        print(f"wall: total {wall:.1f} s, render {campaign.render_wall_s:.1f} s → {n / wall:.0f} frames/s "
              f"({n / wall / args.workers:.0f} per worker)")
        render_cpu = campaign.render_cpu_s
        encode = campaign.extras["encode_cpu_s"]
        print(f"cpu: workers {cpu_children:.1f} s (render {render_cpu:.1f} s = H.264/MP4 {encode:.1f} s "
              f"[{1000 * encode / n:.2f} ms/frame] + compositing/truth {render_cpu - encode:.1f} s "
              f"[{1000 * (render_cpu - encode) / n:.2f} ms/frame]; the rest is loading assets), parent {cpu_self:.1f} s")
        print(f"load average (1 min) before {load0[0]:.1f}, after {load1[0]:.1f} on {os.cpu_count()} cores; "
              f"CPU-bound estimate on {args.workers} idle cores: {(cpu_children + cpu_self) / args.workers:.0f} s")
        print(f"sample videos={args.videos} wall_s={wall:.1f} target_s=180 frames_per_s={n / wall:.0f} "
              f"cpu_s={cpu_children + cpu_self:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
