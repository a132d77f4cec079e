"""Scoring throughput: the Spark job vs a plain Python loop over score_video, its scaling with N, and the floor.

    python bench/score.py [--small 50] [--large 200] [--min-seconds 6 --max-seconds 8] [--floor-videos 5]

In one run, on one sample campaign of ``--large`` videos scored by the default model (MobileNetV2 ImageNet
backbone + an untrained head, registered as @champion in a temp MLflow store — timing does not depend on
training):

* loop  — the first ``--small`` videos scored by ``score_video`` in a plain Python loop (torch on all cores)
* spark — the same videos scored by the Spark job (``run_score --limit``), end to end including its writes
* spark at N = large — the rest, so cost per video at N = small and N = large can be compared
* floor — bench/per_video.py's baseline (decode-only + one forward/backward of the model) on ``--floor-videos``
  of the campaign's videos with one torch and one OpenCV thread: the single-core floor per video. The machine
  floor of N videos is N × that / cores; ``efficiency`` = machine floor / the Spark job's wall time (1.0: the job
  uses every core on nothing but the unavoidable work; it also matches products, which the floor leaves out).

* matching — the single-core cost of the product matching the floor leaves out (SIFT of each second's frame
  against the listing, ``views_product_map`` on one thread) on the same videos; ``efficiency_with_matching`` =
  (floor + matching) / the Spark wall time: what the job loses to Spark, Python workers and writes alone.

Last line: ``score spark_over_loop=<spark/loop at N=small> scaling=<cost per video at large / at small>
floor_s=<machine floor at N=large> efficiency=<floor / Spark wall at N=large>
matching_share=<matching / (floor + matching)> efficiency_with_matching=<(floor + matching) / Spark wall>``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def sample_campaign_with_champion(root: str, n_videos: int, min_seconds: float, max_seconds: float,
                                  overrides: dict | None = None):
    """A sample campaign of ``n_videos`` in ``root``/lake and the default network (ImageNet backbone, untrained
    head) registered as @champion in its MLflow store → (cfg, spark, lake)."""
    import torch

    from jobs.config import load_config
    from jobs.spark import get_spark
    from jobs.storage.lake import Lake
    from jobs.synth.sample import run_sample
    from models.network import build_engagement_net
    from models.tracking import ensure_experiment, tracked_run

    cfg = load_config(lake=f"{root}/lake", overrides={"spark": {"show_progress": False}, **(overrides or {})})
    t = time.perf_counter()
    run_sample(cfg, lambda: Lake.from_config(cfg, get_spark(cfg)), n_videos=n_videos, seed=11,
               min_seconds=min_seconds, max_seconds=max_seconds)
    print(f"sample campaign: {n_videos} videos in {time.perf_counter() - t:.0f}s", flush=True)
    spark = get_spark(cfg)
    torch.manual_seed(0)
    net = build_engagement_net(cfg.model)
    exp = ensure_experiment(cfg.tracking_uri, cfg.mlflow.experiment, cfg.artifact_root)
    with tracked_run(cfg.tracking_uri, exp, run_name="bench-champion") as run:
        version = cfg.model_registry().register(run, net, clip=cfg.clip)
        run.client.set_registered_model_alias(cfg.mlflow.model_name, cfg.mlflow.alias, version)
    return cfg, spark, Lake.from_config(cfg, spark)


def single_core_floor(uris: list[str], model, clip) -> float:
    """Mean seconds per video of decode-only + one forward/backward (bench/per_video.py's baseline) with one
    torch thread and one OpenCV thread; restores both thread counts."""
    import torch

    from bench.per_video import baseline

    cpu = torch.device("cpu")
    with one_thread():
        baseline(uris[0], model, clip, cpu)  # warm-up
        return sum(sum(baseline(u, model, clip, cpu)) for u in uris) / len(uris)


def single_core_matching(rows, clip, cfg) -> float:
    """Mean seconds per video of product matching alone (each second's frame against the product's listing
    views, one thread; decoding and listing features not counted) — the work the floor leaves out."""
    from pe_udfs.product_views import DEFAULT_VIEW, ListingCache, views_product_map
    from pe_udfs.video import sample_video

    product = cfg.product.model_copy(update={"match_workers": 1})
    listings = ListingCache()
    total = 0.0
    with one_thread():
        for row in rows.itertuples():
            views = listings.views([(DEFAULT_VIEW, row.product_image_uri)], product, allowed_roots=cfg.allowed_roots)
            frames = sample_video(row.video_uri, clip, allowed_roots=cfg.allowed_roots).match_frames
            t = time.perf_counter()
            views_product_map(frames, views, product, out_size=clip.size)
            total += time.perf_counter() - t
    return total / len(rows)


@contextmanager
def one_thread():
    """torch and OpenCV on one thread for the block; their thread counts restored after."""
    import cv2
    import torch

    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=50)
    ap.add_argument("--large", type=int, default=200)
    ap.add_argument("--min-seconds", type=float, default=6.0)
    ap.add_argument("--max-seconds", type=float, default=8.0)
    ap.add_argument("--floor-videos", type=int, default=5, help="videos the single-core floor is measured on")
    ap.add_argument("--keep", action="store_true", help="keep the temp lake")
    args = ap.parse_args()

    import torch

    from jobs.scoring.nightly import run_score
    from pe_udfs.score import score_video
    from pe_udfs.udf import ScoringTask, default_cores, listing_for

    root = tempfile.mkdtemp(prefix="pe-bench-score-")
    cfg, spark, lake = sample_campaign_with_champion(root, args.large, args.min_seconds, args.max_seconds)

    videos = lake.read_pandas("campaign_videos").sort_values("video_id")
    small = videos.head(args.small)

    # loop: the first N=small videos (the job's --limit takes the same, by video_id)
    loaded = cfg.model_registry().load(device="cpu")
    torch.set_num_threads(os.cpu_count() or 1)
    task = ScoringTask(load_model=lambda device: loaded, plan=cfg.scoring_plan(loaded.clip),
                       allowed_roots=tuple(cfg.allowed_roots))
    t = time.perf_counter()
    for row in small.itertuples():
        score_video(row.video_uri, listing_for(row.product_image_uri, task), model=loaded.module, clip=loaded.clip,
                    product=cfg.product, saliency=cfg.saliency, device="cpu", allowed_roots=cfg.allowed_roots)
    loop_s = time.perf_counter() - t
    print(f"loop:  {args.small} videos {loop_s:.1f}s ({loop_s / args.small:.2f}s/video)", flush=True)

    s = run_score(cfg, spark=spark, limit=args.small, validate_outputs=False)
    spark_small = s.seconds
    print(f"spark: {s.scored} videos {spark_small:.1f}s ({spark_small / max(s.scored, 1):.2f}s/video) "
          f"errors={s.errors}", flush=True)

    s_all = run_score(cfg, spark=spark, rescore=True, run_id="bench-large", validate_outputs=False)
    spark_large = s_all.seconds
    print(f"spark: {s_all.scored} videos {spark_large:.1f}s ({spark_large / max(s_all.scored, 1):.2f}s/video) "
          f"errors={s_all.errors}", flush=True)
    cost_small = spark_small / max(s.scored, 1)
    cost_large = spark_large / max(s_all.scored, 1)

    cores = default_cores()
    floor_videos = videos.head(args.floor_videos)
    floor = single_core_floor(list(floor_videos["video_uri"]), loaded.module, loaded.clip)
    matching = single_core_matching(floor_videos, loaded.clip, cfg)
    floor_small, floor_large = s.scored * floor / cores, s_all.scored * floor / cores
    with_matching = s_all.scored * (floor + matching) / cores
    print(f"floor: {floor:.2f} s/video on one core (decode-only + forward/backward, {args.floor_videos} videos); "
          f"{cores} cores: N={s.scored} {floor_small:.1f}s (efficiency {floor_small / spark_small:.3f}), "
          f"N={s_all.scored} {floor_large:.1f}s (efficiency {floor_large / spark_large:.3f})", flush=True)
    print(f"matching: {matching:.2f} s/video on one core (left out of the floor); floor + matching at "
          f"N={s_all.scored}: {with_matching:.1f}s (efficiency {with_matching / spark_large:.3f})", flush=True)
    spark.stop()
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    print(f"score spark_over_loop={spark_small / loop_s:.3f} scaling={cost_large / cost_small:.3f} "
          f"floor_s={floor_large:.1f} efficiency={floor_large / spark_large:.3f} "
          f"matching_share={matching / (floor + matching):.3f} efficiency_with_matching={with_matching / spark_large:.3f}")


if __name__ == "__main__":
    main()
