"""Lake layer vs plain Spark Parquet: write and read 1M rows × 10 columns, alternating, medians; then the time
to the first row of a small table as a new process meets it (Delta's log cache cleared): a 1,000-row table of
one version and one of ten versions (100 rows each), against a 1,000-row Parquet folder.

    python bench/lake.py [--rows 1000000] [--repeats 5] [--conf KEY=VALUE ...]

Last lines: ``lake write_ratio=<lake/plain> read_ratio=<lake/plain>`` and
``first_row small_ratio=<delta/parquet> ten_versions_ratio=<delta/parquet>`` (medians), commit and date.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jobs.config import load_config
from jobs.spark import get_spark
from jobs.storage.lake import Lake


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                    help="extra Spark setting, e.g. spark.databricks.delta.snapshotPartitions=50 (Delta's default)")
    args = ap.parse_args()
    extra = dict(kv.split("=", 1) for kv in args.conf)

    root = tempfile.mkdtemp(prefix="pe-bench-lake-")
    cfg = load_config(lake=f"{root}/lake", overrides={"spark": {"show_progress": False, "conf": extra}})
    spark = get_spark(cfg)
    lake = Lake.from_config(cfg, spark)
    from pyspark.sql import functions as F

    df = spark.range(args.rows, numPartitions=4).select(
        F.col("id"),
        *[(F.col("id") * (i + 1) % 9973).cast("double").alias(f"d{i}") for i in range(4)],
        *[F.concat(F.lit(f"s{i}-"), (F.col("id") % 1000).cast("string")).alias(f"s{i}") for i in range(3)],
        (F.col("id") % 2 == 0).alias("flag"),
        F.timestamp_seconds(F.col("id")).alias("ts"),
    ).cache()
    df.count()
    lake.ensure("bench", df.schema)

    def noop(frame) -> None:  # full scan of every column, nothing written
        frame.write.format("noop").mode("overwrite").save()

    times: dict[str, list[float]] = {"lake_w": [], "plain_w": [], "lake_r": [], "plain_r": []}
    for i in range(args.repeats + 1):  # the first round warms up the JVM and is not counted
        plain_dir = f"{root}/plain-{i}"

        def plain_write():
            df.write.parquet(plain_dir)

        def lake_write():
            lake.write("bench", df, mode="overwrite")

        def plain_read():
            noop(spark.read.parquet(plain_dir))

        def lake_read():
            noop(lake.read("bench"))

        # alternate which side goes first so drift on a shared machine does not favour one side
        order = [(plain_write, lake_write), (plain_read, lake_read)] if i % 2 else [(lake_write, plain_write), (lake_read, plain_read)]
        took = {}
        for pair in order:
            for fn in pair:
                t = time.perf_counter(); fn(); took[fn.__name__] = time.perf_counter() - t
        pw, lw, pr, lr = took["plain_write"], took["lake_write"], took["plain_read"], took["lake_read"]
        assert lake.read("bench").count() == args.rows
        shutil.rmtree(plain_dir)
        if i:
            for k, v in zip(("plain_w", "lake_w", "plain_r", "lake_r"), (pw, lw, pr, lr)):
                times[k].append(v)
        print(f"round {i}{' (warm-up)' if not i else ''}: plain write {pw:.2f}s lake write {lw:.2f}s "
              f"plain read {pr:.2f}s lake read {lr:.2f}s", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    first = first_row_times(spark, lake, root, args.repeats)
    partitions = spark.conf.get("spark.databricks.delta.snapshotPartitions", "50 (Delta's default)")
    spark.stop()
    shutil.rmtree(root, ignore_errors=True)
    print(f"rows={args.rows} columns=10 repeats={args.repeats} medians: " + " ".join(f"{k}={v:.3f}s" for k, v in med.items()))
    print(f"lake write_ratio={med['lake_w'] / med['plain_w']:.3f} read_ratio={med['lake_r'] / med['plain_r']:.3f}")
    print(f"first_row medians: parquet={first['parquet']:.3f}s delta_small={first['small']:.3f}s "
          f"delta_ten_versions={first['ten']:.3f}s")
    print(f"first_row small_ratio={first['small'] / first['parquet']:.3f} "
          f"ten_versions_ratio={first['ten'] / first['parquet']:.3f}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    print(f"commit {commit} date {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC cores {os.cpu_count()} "
          f"snapshotPartitions {partitions}")


def first_row_times(spark, lake: Lake, root: str, repeats: int) -> dict[str, float]:
    """Median seconds to the first row: a 1,000-row Delta table, a 10-version one, a 1,000-row Parquet folder.
    Delta's log cache is cleared before each Delta read (a new ``pe`` process starts without it)."""
    small = spark.range(1000).selectExpr("id", "id * 2 AS v")
    lake.write("small", small)
    for i in range(10):
        lake.write("ten", spark.range(100).selectExpr(f"id + {100 * i} AS id", "id * 2 AS v"))
    small.write.parquet(f"{root}/plain-small")
    delta_log = spark._jvm.org.apache.spark.sql.delta.DeltaLog

    def first_row(fmt: str, path: str) -> float:
        if fmt == "delta":
            delta_log.clearCache()
        t = time.perf_counter()
        spark.read.format(fmt).load(path).limit(1).collect()
        return time.perf_counter() - t

    got: dict[str, list[float]] = {"parquet": [], "small": [], "ten": []}
    for i in range(2 * repeats + 1):  # the first round warms up and is not counted
        pairs = [("parquet", "parquet", f"{root}/plain-small"), ("small", "delta", lake.path("small")),
                 ("ten", "delta", lake.path("ten"))]
        for key, fmt, path in (pairs if i % 2 else pairs[::-1]):
            took = first_row(fmt, path)
            if i:
                got[key].append(took)
    return {k: statistics.median(v) for k, v in got.items()}


if __name__ == "__main__":
    main()
