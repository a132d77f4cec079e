"""Does PE find where engagement falls? The whole product, defaults end to end, on sample campaigns.

    .venv/bin/python bench/evaluation.py --seeds 7301,7302,7303 [--videos 200] [--root /tmp/pe-eval]
        [--methods density,ablation,vanilla,gradcam] [--compare-head max_pool --compare-methods vanilla,gradcam]

Per seed, as a new user would run it (each step the `pe` command with the default config)::

    pe sample --videos N --seed S  ─► pe train  ─► pe score  ─► (in this process, one Spark session)
      run_analyze: the sales-lift analysis; its PE coefficient (specification 1, lift ~ PE) with the HC1 interval
      run_evaluate: Spearman of pe_share with the true product engagement on the videos of the model's test
        influencers (the headline) and on all videos, every model-free rule on the same product maps
        (pe_udfs.baselines), the best rule per scope, the paired interval of pe_share against it, and the
        engagement-map methods of --methods on the same maps and model
    [--compare-head H: a second model with model.head = H trained on the same cached features (pe train
     --no-promote), its --compare-methods scored on the same product maps: the paper's head beside ours]

Intervals: 95 % bootstrap resampling whole influencers (paired for differences). The pooled rows resample the
influencers of all seeds together. A model the gate rejects is promoted by hand (`pe models promote --force`)
so the rest can run, and the table says so. The last lines print the commit and the date.

Seeds: choose methods and settings on validation seeds, judge them on seeds never used for a choice (README).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pandas as pd

from bench.stamp import commit

ROOT = Path(__file__).resolve().parents[1]
PE = [sys.executable, "-m", "jobs.cli"]


def pe(lake: Path, *args: str, config: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [*PE, *(["--config", config] if config else []), "--lake", str(lake), *args]
    print("$ pe " + " ".join(cmd[len(PE):]), flush=True)
    out = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True)
    tail = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip() and "[Stage" not in ln][-12:]
    print("\n".join("    " + ln for ln in tail), flush=True)
    if check and out.returncode != 0:
        raise SystemExit(f"pe {' '.join(args)} failed with exit code {out.returncode}")
    return out


def head_config(head: str) -> str:
    """A config file: the default one with model.head set to ``head``."""
    import yaml

    cfg = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    cfg.setdefault("model", {})["head"] = head
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    yaml.safe_dump(cfg, f)
    f.close()
    return f.name


def run_seed(seed: int, args) -> dict:
    """One seed end to end; the result is kept in <lake>/bench-evaluation.pkl, so a rerun only re-prints it."""
    lake = Path(args.root) / f"s{seed}"
    cached = lake / "bench-evaluation.pkl"
    if cached.exists() and not args.fresh:
        return pd.read_pickle(cached)
    if not (lake / "sample_truth").exists():
        pe(lake, "sample", "--videos", str(args.videos), "--seed", str(seed))
    train = pe(lake, "train", check=False)
    promoted = "promoted" in train.stdout and "not promoted" not in train.stdout
    if train.returncode != 0:
        raise SystemExit(f"pe train failed on seed {seed}")
    if "@champion now holds" not in train.stdout:
        pe(lake, "models", "promote", "--force")
    pe(lake, "score")
    compare_version = None
    if args.compare_head:
        out = pe(lake, "train", "--no-promote", config=head_config(args.compare_head))
        compare_version = next((ln.split("pe-engagement v")[1].split(";")[0].split()[0]
                                for ln in out.stdout.splitlines() if "registered pe-engagement v" in ln), None)

    from jobs.analysis.analyze import run_analyze
    from jobs.config import load_config
    from jobs.evaluation.against_truth import run_evaluate
    from jobs.spark import get_spark
    from jobs.storage.lake import Lake

    cfg = load_config(None, lake=str(lake))
    lk = Lake.from_config(cfg, get_spark(cfg))
    analysis = run_analyze(cfg, lk)
    f1 = analysis.result.fits[0]
    coef, se = f1.focus("coef"), f1.focus("se_hc1")
    methods = [m for m in args.methods.split(",") if m]
    ev = run_evaluate(cfg, lk, methods=methods or None, log_mlflow=False, run=f"bench-{seed}")
    rows = [ev.rows]
    per_video = ev.per_video.assign(seed=seed)
    if compare_version is not None:
        cmp_methods = [m for m in args.compare_methods.split(",") if m]
        ev2 = run_evaluate(cfg, lk, methods=cmp_methods, methods_model=compare_version, log_mlflow=False,
                           run=f"bench-{seed}-{args.compare_head}")
        extra = ev2.per_video.set_index("video_id").filter(like="map_")
        extra.columns = [f"{c}@{args.compare_head}" for c in extra.columns]
        per_video = per_video.set_index("video_id").join(extra).reset_index()
        rows.append(ev2.rows[ev2.rows.metric.str.startswith("spearman_map_")].assign(
            metric=lambda d: d.metric.str.replace("spearman_map_", f"spearman_map@{args.compare_head}_")))
    result = {"seed": seed, "promoted": promoted, "rows": pd.concat(rows), "per_video": per_video,
              "pe_coef": coef, "pe_coef_low": coef - 1.96 * se, "pe_coef_high": coef + 1.96 * se}
    pd.to_pickle(result, cached)
    print_seed(result)
    return result


def print_seed(r: dict) -> None:
    pv = r["per_video"]
    test = pv[pv["split"] == "test"]
    held = int((test["material"] == "held_out").sum()) if "material" in pv.columns else 0
    print(f"seed {r['seed']}: {len(pv)} videos, {len(test)} of test influencers ({held} on held-out people, "
          f"backgrounds and products); model "
          f"{'promoted by the gate' if r['promoted'] else 'REJECTED by the gate (promoted by hand)'}; "
          f"pe analyze PE coefficient {r['pe_coef']:+.1f} [HC1 95 %: {r['pe_coef_low']:+.1f}, "
          f"{r['pe_coef_high']:+.1f}]", flush=True)
    for scope in ("test", "all"):
        print(f" {scope}:")
        print(show(table(pv, scope)), flush=True)


def table(per_video: pd.DataFrame, scope: str) -> pd.DataFrame:
    """Spearman [95 % CI] of every score on ``scope`` rows, resampling influencers; the best rule; differences."""
    from jobs.evaluation.against_truth import BASELINE_NAMES
    from models.agreement import bootstrap, paired_difference

    g = per_video if scope == "all" else per_video[per_video["split"] == "test"]
    g = g.sort_values(["seed", "video_id"])
    t, groups = g["true_pe"].to_numpy(float), g["influencer_id"].astype(str).to_numpy()
    scores = ["pe_share"] + sorted(c for c in g.columns if c.startswith("map_") and g[c].notna().all()) + \
        [b for b in BASELINE_NAMES if b in g.columns]
    out = []
    est = {c: bootstrap(g[c].to_numpy(float), t, groups=groups) for c in scores}
    best = max((b for b in BASELINE_NAMES if b in est), key=lambda b: est[b].value)
    for c in scores:
        e = est[c]
        row = {"score": c, "spearman": e.value, "low": e.ci_low, "high": e.ci_high, "n": e.n}
        if c not in BASELINE_NAMES:
            d = paired_difference(g[c].to_numpy(float), g[best].to_numpy(float), t, groups=groups)
            row.update(minus_best=d.value, minus_best_low=d.ci_low, minus_best_high=d.ci_high)
        out.append(row)
    return pd.DataFrame(out).assign(best_baseline=best)


def show(df: pd.DataFrame) -> str:
    lines = []
    for r in df.itertuples():
        s = f"  {r.score:<34} {r.spearman:6.3f} [{r.low:6.3f}, {r.high:6.3f}]"
        if isinstance(getattr(r, "minus_best", None), float) and np.isfinite(r.minus_best):
            s += f"   − best rule ({r.best_baseline}) {r.minus_best:+.3f} [{r.minus_best_low:+.3f}, {r.minus_best_high:+.3f}]"
        lines.append(s)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", required=True, help="comma-separated campaign seeds")
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--root", default="/tmp/pe-eval", help="one lake per seed below this folder (reused)")
    ap.add_argument("--methods", default="", help="engagement-map methods to score beside the default one")
    ap.add_argument("--compare-head", default="", help="also train a model with this model.head (e.g. max_pool)")
    ap.add_argument("--compare-methods", default="vanilla,gradcam")
    ap.add_argument("--fresh", action="store_true", help="run every seed again even if its result is kept")
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    results = [run_seed(int(s), args) for s in args.seeds.split(",")]
    print()
    for r in results:
        print_seed(r)
    pooled = pd.concat([r["per_video"] for r in results], ignore_index=True)
    print(f"\npooled over {len(results)} seeds:")
    for scope in ("test", "all"):
        print(f" {scope}:")
        print(show(table(pooled, scope)))
    tests = [table(r["per_video"], "test").set_index("score") for r in results]
    mean = float(np.mean([t.loc["pe_share", "spearman"] for t in tests]))
    above = all(t.loc["pe_share", "minus_best_low"] > 0 for t in tests)
    coef = all(r["pe_coef_low"] > 0 for r in results)
    print(f"\ngoal: mean test Spearman(pe_share) {mean:.3f} (need >= 0.6): {'met' if mean >= 0.6 else 'NOT met'}; "
          f"paired interval against the best rule above 0 on every seed: {'met' if above else 'NOT met'}; "
          f"PE coefficient's HC1 interval above 0 on every seed: {'met' if coef else 'NOT met'}")
    print(f"evaluation seeds={args.seeds} videos={args.videos} commit={commit()} "
          f"date={dt.datetime.now(dt.timezone.utc):%Y-%m-%d}")


if __name__ == "__main__":
    main()
