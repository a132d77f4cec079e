"""Every command's fixed start-up, measured as a user meets it: a new `pe` process each time, medians.

    python bench/startup.py --lake DIR [--repeats 3]

On a scored lake (nothing left to score): `pe --help` (imports only), `pe tables` (Spark + Delta JARs, each
table's log), `pe sql "SELECT 1"` (Spark, the guard, the analyst views), `pe score` with nothing to do (model
load, the lake check, candidate selection). The lake must be up to date for the last one: the bench fails if
`pe score` scored anything. Last lines: one ``startup <command> median_s=…`` per command, commit and date.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed(args: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    took = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"`pe {' '.join(args)}` failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return took, proc.stdout + proc.stderr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    lake = ["--lake", args.lake]
    commands = {"help": ["--help"], "tables": [*lake, "tables"], "sql_select_1": [*lake, "sql", "SELECT 1"],
                "score_nothing_to_do": [*lake, "score"]}
    times: dict[str, list[float]] = {k: [] for k in commands}
    for i in range(args.repeats):
        for name, argv in commands.items():
            took, out = timed(argv)
            if name == "score_nothing_to_do" and "candidates=0 " not in out:
                sys.exit(f"the lake was not up to date: pe score printed {out.strip().splitlines()[-1:]}")
            times[name].append(took)
            print(f"round {i}: pe {' '.join(argv[2:] if argv[0] == '--lake' else argv)}: {took:.2f} s", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=REPO).stdout.strip()
    for name, values in times.items():
        print(f"startup {name} median_s={statistics.median(values):.2f} runs={len(values)}")
    print(f"commit {commit} date {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC cores {os.cpu_count()}")


if __name__ == "__main__":
    main()
