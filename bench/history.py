"""One night's scoring write into pe_seconds as history grows: 100k rows, then 1M rows, in one run.

    python bench/history.py [--night-videos 50] [--seconds 60] [--repeats 3] [--no-maintain]

A night = ``--night-videos`` new videos × ``--seconds`` per-second rows (with their 14×14 engagement grids),
merged by key exactly as ``pe score`` does (``Lake.merge``: the new-or-changed rows, then one Delta MERGE whose
condition lists the night's video ids, so data skipping reads only files whose video_id range can hold them).
History is written as earlier nights would have been, then maintained as ``pe maintain`` does (OPTIMIZE,
Z-order by video_id) unless ``--no-maintain``. Each size is measured ``--repeats`` times (each a new night)
after one warm-up; the fastest (the least disturbed on a shared machine) is reported, the median beside it.
Last line:

    history merge_s_100k=… merge_s_1m=… growth=… median_growth=…   (growth = 1M over 100k; goal ≤ 1.3)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def seconds_frame(spark, first_video: int, n_videos: int, seconds: int, run_id: str):
    """pe_seconds rows for videos ``first_video ..`` (ids spread over the key space like real ids)."""
    from pyspark.sql import functions as F

    n = n_videos * seconds
    grid = F.transform(F.sequence(F.lit(0), F.lit(195)), lambda i: (F.rand(7) * i).cast("float"))
    return (spark.range(n)
            .select((F.col("id") / seconds).cast("long").alias("v"), (F.col("id") % seconds).cast("int").alias("second"))
            .select(F.sha1((F.col("v") + first_video).cast("string")).substr(1, 12).alias("video_id"),
                    F.lit("3").alias("model_version"), "second",
                    F.rand(1).alias("e_mass"), F.rand(2).alias("pe_mass"), F.rand(3).alias("p_mass"),
                    (F.rand(4) > 0.5).alias("product_found"), (F.rand(5) * 40).cast("int").alias("inliers"),
                    F.array(*[F.lit(float(i)) for i in range(8)]).alias("quad_224"), grid.alias("e_grid"),
                    F.lit(run_id).alias("run_id"), F.lit("vanilla/sift/60s/bench").alias("scoring_config"),
                    F.when(F.rand(4) > 0.5, F.lit("main")).alias("matched_view")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--night-videos", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-maintain", action="store_true")
    args = ap.parse_args()

    from jobs.config import load_config
    from jobs.spark import get_spark
    from jobs.storage.lake import Lake

    root = tempfile.mkdtemp(prefix="pe-bench-history-")
    cfg = load_config(lake=os.path.join(root, "lake"),
                      overrides={"spark": {"master": "local[2]", "show_progress": False, "shuffle_partitions": 4}})
    spark = get_spark(cfg)
    lake = Lake.from_config(cfg, spark)
    per_video = args.seconds
    next_video = 0

    def grow_to(rows: int) -> None:
        nonlocal next_video
        have = lake.read("pe_seconds").count() if lake.exists("pe_seconds") else 0
        videos = (rows - have) // per_video
        nights = 10
        for k in range(nights):  # history as ten appends, like earlier nights, then maintenance
            n = videos // nights + (1 if k < videos % nights else 0)
            lake.write("pe_seconds", seconds_frame(spark, next_video, n, per_video, f"hist-{k}"))
            next_video += n
        if not args.no_maintain:
            lake.optimize("pe_seconds", zorder_by=["video_id"])
        d = lake.detail("pe_seconds")
        print(f"history: {lake.read('pe_seconds').count():,} rows in {d['numFiles']} files "
              f"({d['sizeInBytes'] / 1e6:.0f} MB)", flush=True)

    def one_night() -> float:
        nonlocal next_video
        night = seconds_frame(spark, next_video, args.night_videos, per_video, "night").cache()
        night.count()
        next_video += args.night_videos
        t0 = time.perf_counter()
        m = lake.merge("pe_seconds", night)
        dt = time.perf_counter() - t0
        night.unpersist()
        assert m.inserted == args.night_videos * per_video, m
        return dt

    results = {}
    for label, rows in (("100k", 100_000), ("1m", 1_000_000)):
        grow_to(rows)
        one_night()  # warm-up (JIT, caches); not counted
        times = [one_night() for _ in range(args.repeats)]
        results[label] = (min(times), statistics.median(times))
        print(f"{label}: merges {', '.join(f'{t:.2f}' for t in times)} s → fastest {min(times):.2f} s, "
              f"median {statistics.median(times):.2f} s", flush=True)
    spark.stop()
    (fast_small, med_small), (fast_big, med_big) = results["100k"], results["1m"]
    print(f"history merge_s_100k={fast_small:.2f} merge_s_1m={fast_big:.2f} growth={fast_big / fast_small:.2f} "
          f"median_growth={med_big / med_small:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
