"""`pe analyze --panel` timed by phase, with the fast first stage and against the AbsorbingLS reference.

    python bench/analysis.py --panel DIR [--old-products N] [--skip-old]

1. The command as a user runs it: a new `pe analyze --panel DIR` process (default first stage 'schur', the
   report into a temporary folder, no table written); its wall time and its own phases (panel build, first
   stage, second stage, write, report) from its timings line.
2. The first stage again in this process on the same panel: 'schur' and the reference 'absorbing'
   (linearmodels AbsorbingLS per product), both timed, and the largest absolute and relative differences of
   lift, se, se_robust, se_cluster2 and n between them. The reference takes minutes (about 1.7 s a product on
   a quiet 2-core machine): ``--old-products N`` runs both on the first N treated products only (the reference's
   total is then also given extrapolated, labelled as such); ``--skip-old`` leaves it out.

Last lines: ``analysis total_s=… panel_s=… first_stage_s=… second_stage_s=… write_s=… report_s=…``,
``first_stage old_s=… new_s=… products=… speedup=…``, ``max_abs_diff …``, commit and date. Timings on a shared
machine are noisy: the load average is printed before and after.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NUMBERS = ["lift", "se", "se_robust", "se_cluster2", "n"]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_command(panel: str, first_stage: str) -> tuple[float, dict[str, float], str]:
    """(wall seconds, the command's phases, its output) of one `pe analyze --panel` process."""
    with tempfile.TemporaryDirectory(prefix="bench-analysis-") as tmp:
        args = [sys.executable, "-m", "jobs.cli", "--lake", os.path.join(tmp, "lake"), "analyze", "--panel", panel,
                "--out", os.path.join(tmp, "report"), "--first-stage", first_stage, "--run-id", "bench"]
        t = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
        took = time.perf_counter() - t
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.exit(f"`pe analyze --panel {panel}` failed ({proc.returncode}): {out.strip().splitlines()[-3:]}")
    line = next((ln for ln in out.splitlines() if ln.startswith("timings: ")), "")
    phases = {name: float(v) for name, v in re.findall(r"([a-z ]+?) ([0-9.]+)s", line.removeprefix("timings: "))}
    return took, {k.strip(): v for k, v in phases.items()}, out


def compare(panel_dir: str, old_products: int | None, skip_old: bool) -> None:
    import numpy as np

    from jobs.analysis import load_paper_panel
    from jobs.analysis.first_stage import estimate_lifts

    panel = load_paper_panel(panel_dir)
    ids = sorted(panel.treated_ids)
    subset = ids if not old_products else ids[:old_products]
    t = time.perf_counter()
    new_all = estimate_lifts(panel, ids, method="schur")
    new_s = time.perf_counter() - t
    print(f"new first stage (schur): {len(ids)} products {new_s:.1f} s", flush=True)
    if skip_old:
        return
    t = time.perf_counter()
    old = estimate_lifts(panel, subset, method="absorbing").set_index("product_id")
    old_s = time.perf_counter() - t
    new = new_all.set_index("product_id").loc[subset]
    new_subset_s = new_s * len(subset) / len(ids)
    print(f"old first stage (absorbing): {len(subset)} products {old_s:.1f} s", flush=True)
    same_status = bool((old["status"] == new["status"]).all() and (old["reason"].fillna("") == new["reason"].fillna("")).all())
    ok = old["status"] == "ok"
    diffs = []
    for col in NUMBERS:
        a, b = old.loc[ok, col].to_numpy(np.float64), new.loc[ok, col].to_numpy(np.float64)
        both_nan = np.isnan(a) & np.isnan(b)
        absd = np.where(both_nan, 0.0, np.abs(a - b))
        rel = np.where(both_nan, 0.0, absd / np.maximum(np.abs(a), 1e-300))
        diffs.append(f"{col} {np.nanmax(absd) if len(absd) else 0.0:.3g} (rel {np.nanmax(rel) if len(rel) else 0.0:.3g})")
    extrapolated = old_s * len(ids) / len(subset)
    print(f"first_stage old_s={old_s:.1f} new_s={new_subset_s:.2f} products={len(subset)} of {len(ids)} "
          f"speedup={old_s / max(new_subset_s, 1e-9):.0f}x"
          + (f" old_extrapolated_all_s={extrapolated:.0f}" if len(subset) < len(ids) else ""))
    print(f"max_abs_diff (old vs new, {int(ok.sum())} estimated products): " + ", ".join(diffs)
          + f"; same statuses and reasons: {same_status}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--panel", required=True, help="Folder in the paper's panel format.")
    ap.add_argument("--old-products", type=int, default=0, help="Compare on the first N treated products (0: all).")
    ap.add_argument("--skip-old", action="store_true", help="Leave out the AbsorbingLS reference.")
    args = ap.parse_args()
    print(f"load average before: {load()} (cores {os.cpu_count()})", flush=True)
    took, phases, _ = run_command(args.panel, "schur")
    print("analysis total_s={:.1f} ".format(took) + " ".join(f"{k.replace(' ', '_')}_s={v:.1f}" for k, v in phases.items())
          + " (pe analyze --panel, first stage schur, one process)", flush=True)
    compare(args.panel, args.old_products or None, args.skip_old)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=REPO).stdout.strip()
    print(f"load average after: {load()}")
    print(f"commit {commit} date {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC cores {os.cpu_count()}")


if __name__ == "__main__":
    main()
