"""An analyst's join through JDBC (`pe serve-sql`, beeline) vs `pe sql` (one process per statement): medians.

    python bench/sql_latency.py --lake DIR [--repeats 10] [--port 10099]

Both paths run the same join of pe_latest, campaign_videos and taobao_sales behind the same guard. `pe sql`
pays a Spark start per statement; JDBC pays beeline's JVM start per statement (a long-lived client pays
neither). Last line: ``sql_latency jdbc_s=<median> pe_sql_s=<median> ratio=<pe_sql/jdbc>``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
JOIN = ("SELECT l.video_id, l.pe_share, sum(s.daily_sales) AS sales FROM pe_latest l "
        "JOIN campaign_videos c ON c.video_id = l.video_id JOIN taobao_sales s ON s.product_id = c.product_id "
        "GROUP BY l.video_id, l.pe_share ORDER BY l.pe_share DESC")


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd[:4])}…: {proc.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - start


def main() -> None:
    import pyspark

    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", required=True)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--port", type=int, default=10099)
    args = ap.parse_args()
    pe = [sys.executable, "-m", "jobs.cli", "--lake", args.lake]
    server = subprocess.Popen([*pe, "serve-sql", "--port", str(args.port)], stdout=subprocess.PIPE, text=True,
                              cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        for line in server.stdout:  # type: ignore[union-attr]
            if "ready on" in line:
                break
        else:
            sys.exit("the server stopped before it was ready")
        jars = Path(pyspark.__file__).parent / "jars"
        beeline = ["java", "-cp", f"{jars}/*", "org.apache.hive.beeline.BeeLine", "-u",
                   f"jdbc:hive2://127.0.0.1:{args.port}/default", "--silent=true", "-e", JOIN]
        jdbc, local = [], []
        for _ in range(args.repeats):  # alternating, so load drifts hit both alike
            jdbc.append(timed(beeline))
            local.append(timed([*pe, "sql", "--format", "csv", JOIN]))
        j, p = statistics.median(jdbc), statistics.median(local)
        print(f"sql_latency jdbc_s={j:.2f} pe_sql_s={p:.2f} ratio={p / j:.2f}")
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=REPO).stdout.strip()
        print(f"commit {commit} date {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC cores {os.cpu_count()} "
              f"repeats {args.repeats}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=180)


if __name__ == "__main__":
    main()
