"""Sample-campaign speed: ``pe sample`` with N default videos (15–60 s, 30 fps, 360x640, H.264 + AAC).

    python bench/sample.py [--videos 200] [--workers 2] [--generate-only] [--keep DIR]

Default: the whole job, as ``pe --lake <temp> sample --videos N`` runs it (plan, render on K processes,
Spark session, the four Delta tables), in a temporary lake. ``--generate-only``: just the media and the
tables in memory (no Spark). Prints wall times, frames/s, the render processes' CPU seconds split into
H.264 encoding and compositing, and the load average (this is a shared machine: the CPU seconds are the
fairer number). Last line:
``sample videos=<N> wall_s=<job> render_s=<render> target_s=180 frames_per_s=<f> cpu_s=<render CPU>``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--min-seconds", type=float, default=15.0)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--generate-only", action="store_true", help="media + in-memory tables only (no Spark, no lake)")
    ap.add_argument("--keep", default=None, help="work here and keep the result (default: a temp folder, removed)")
    args = ap.parse_args()

    root = args.keep or tempfile.mkdtemp(prefix="pe-bench-sample-")
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    try:
        if args.generate_only:
            from jobs.synth.campaign import CampaignSpec, generate_campaign

            spec = CampaignSpec(n_videos=args.videos, seed=args.seed, min_seconds=args.min_seconds,
                                max_seconds=args.max_seconds)
            c = generate_campaign(spec, root, workers=args.workers)
            job_s = time.perf_counter() - t0
            frames, seconds, render_s = c.n_frames, len(c.truth), c.render_wall_s
            cpu, encode = c.render_cpu_s, c.extras["encode_cpu_s"]
            media = c.video_paths
        else:
            from jobs.config import load_config
            from jobs.spark import get_spark
            from jobs.storage.lake import Lake
            from jobs.synth.sample import run_sample

            cfg = load_config(lake=os.path.join(root, "lake"), overrides={"spark": {"show_progress": False}})
            marks: dict[str, float] = {}

            def open_lake():
                lake = Lake.from_config(cfg, get_spark(cfg))
                marks["lake_ready"] = time.perf_counter() - t0
                return lake

            s = run_sample(cfg, open_lake, n_videos=args.videos, seed=args.seed, min_seconds=args.min_seconds,
                           max_seconds=args.max_seconds, workers=args.workers)
            job_s = time.perf_counter() - t0
            frames, seconds, render_s = s.frames, s.seconds, s.render_s
            cpu, encode = s.render_cpu_s, s.encode_cpu_s
            media_dir = os.path.join(s.media_root, "videos")
            media = [os.path.join(media_dir, f) for f in os.listdir(media_dir)]
        load1 = os.getloadavg()
        size = sum(os.path.getsize(p) for p in media)
        print(f"videos: {args.videos} ({seconds} s of video, {frames} frames, {size / 2**20:.1f} MiB), "
              f"{args.workers} render processes")
        if args.generate_only:
            print(f"wall: generate {job_s:.1f} s (render {render_s:.1f} s) → {frames / job_s:.0f} frames/s")
        else:
            print(f"wall: pe sample {job_s:.1f} s; of which render {render_s:.1f} s (the Spark session was ready "
                  f"at {marks.get('lake_ready', float('nan')):.1f} s, started alongside); "
                  f"→ {frames / job_s:.0f} frames/s end to end")
        print(f"cpu: render processes {cpu:.1f} s = H.264/MP4 {encode:.1f} s [{1000 * encode / frames:.2f} ms/frame] "
              f"+ compositing, truth and asset loading {cpu - encode:.1f} s [{1000 * (cpu - encode) / frames:.2f} ms/frame]")
        print(f"load average (1 min) before {load0[0]:.1f}, after {load1[0]:.1f} on {os.cpu_count()} cores; "
              f"render CPU-bound estimate on {args.workers} idle cores: {cpu / args.workers:.0f} s")
        print(f"sample videos={args.videos} wall_s={job_s:.1f} render_s={render_s:.1f} target_s=180 "
              f"frames_per_s={frames / job_s:.0f} cpu_s={cpu:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
