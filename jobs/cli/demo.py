"""`pe demo` / `make demo`: the whole pipeline on a fresh lake, on the embedded default config.

    fresh lake → sample campaign → train (MLflow, @champion) → score (Spark) → validate (GE)
              → sales-lift analysis → evaluation against the truth → HTML reports → ranking by PE-score
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from typing import Callable

from jobs.config import PEConfig
from jobs.storage.lake import Lake
from pe_udfs.errors import PEError

#: Small enough to finish in a few minutes on 2 cores, big enough for the model to beat a constant baseline.
DEMO_VIDEOS = 48
DEMO_SECONDS = (8.0, 12.0)
DEMO_SEED = 7


@dataclass
class DemoResult:
    lake: str
    videos: int
    scored: int
    errors: int
    seconds: float


DEMO_MARKER = ".pe-demo-lake"


class DemoError(PEError):
    """The demo cannot run on this lake folder, or one of its steps failed its check."""

    stage = "demo"


def _fresh_lake(cfg: PEConfig) -> None:
    """Empty the lake folder for the demo — only if it is missing, empty, or an earlier demo's lake (it holds
    the marker file). A folder with anything else in it is never deleted: that could be real data."""
    root = cfg.lake_path
    if "://" in root:
        raise DemoError("remote_lake", f"the demo builds a fresh local lake; {root} is not a local folder")
    if os.path.isdir(root) and os.listdir(root):
        if not os.path.exists(os.path.join(root, DEMO_MARKER)):
            raise DemoError("lake_not_empty", f"{root} is not empty and was not made by `pe demo`; refusing to delete it. "
                            "Run the demo on another folder: pe --lake /tmp/pe-demo demo")
        shutil.rmtree(root)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, DEMO_MARKER), "w") as f:
        f.write("made by `pe demo`; the next `pe demo` on this folder deletes it\n")


def run_demo(cfg: PEConfig, *, videos: int = DEMO_VIDEOS, seed: int = DEMO_SEED,
             echo: Callable[[str], None] = print) -> DemoResult:
    from jobs.scoring.nightly import run_score
    from jobs.spark import get_spark
    from jobs.synth.sample import run_sample
    from jobs.training.train import run_training

    t0 = time.perf_counter()

    def step(title: str) -> None:
        echo(f"\n== {title}  (t={time.perf_counter() - t0:.0f}s)")

    _fresh_lake(cfg)
    step(f"1/6 sample campaign: {videos} videos, seed {seed} → {cfg.lake_path}")
    sample = run_sample(cfg, lambda: Lake.from_config(cfg, get_spark(cfg)), n_videos=videos, seed=seed,
                        min_seconds=DEMO_SECONDS[0], max_seconds=DEMO_SECONDS[1], progress=lambda s: echo(f"   {s}"))
    for line in sample.lines():
        echo(f"   {line}")
    spark = get_spark(cfg)
    lake = Lake.from_config(cfg, spark)

    step("2/6 train the engagement model (Spark → petastorm → PyTorch, MLflow)")
    trained = run_training(cfg, lake, echo=lambda s: echo(f"   {s}"))
    assert trained is not None  # only a features-only run returns nothing
    if not trained.promoted:
        # a demo campaign is small: the gate may well refuse its model. The demo still shows the rest of the
        # pipeline, with the model promoted by hand and the warning logged, as a user would do it.
        _, forced = cfg.model_registry().promote_evaluated(trained.model_version, force=True)
        echo(f"   warning: {forced.reason}. The demo goes on with it to show the pipeline; its scores are not "
             "evidence of a useful model (see README, *The promotion gate*).")

    step("3/6 score every campaign video with @champion (Spark, mapInPandas)")
    summary = run_score(cfg, spark=spark)
    echo(f"   {summary.line()}")

    step("4/6 validate inputs and outputs (Great Expectations)")
    from jobs.quality.validate import gate, validate_tables

    reports = validate_tables(lake, cfg, None, run_name="pe-demo")
    for r in reports:
        echo(f"   {r.describe()}")
    if reports and reports[0].docs_path:
        echo(f"   data docs: {reports[0].docs_path}")
    failing = gate(reports, allow_rejects=True)
    if failing:
        raise DemoError("validation_failed", "validation failed: " + ", ".join(r.table for r in failing))

    _analysis_and_reports(cfg, lake, step, echo)

    step("ranking")
    _print_ranking(lake, summary.model_version, echo)
    echo(f"\nlake: {cfg.lake_path}   tables: pe --lake {cfg.lake_path} tables")
    echo(f"MLflow store: {cfg.tracking_uri}")
    echo(f"MLflow UI:  .venv/bin/mlflow ui --backend-store-uri {cfg.tracking_uri} --port 5000   (then open http://127.0.0.1:5000)")
    took = time.perf_counter() - t0
    echo(f"demo finished in {took:.0f} s")
    return DemoResult(cfg.lake_path, videos, summary.scored, summary.errors, took)


def _analysis_and_reports(cfg: PEConfig, lake: Lake, step, echo) -> None:
    """Sales-lift analysis, evaluation against the sample truth and HTML reports (steps 5 and 6)."""
    step("5/6 sales-lift analysis (first stage per product, second stage on the scores), evaluation")
    from jobs.analysis.analyze import run_analyze

    analysis = run_analyze(cfg, lake)
    for line in analysis.lines():
        echo(f"   {line}")
    from jobs.evaluation.against_truth import run_evaluate

    echo("   evaluation against the sample campaign's truth (pe evaluate):")
    for line in run_evaluate(cfg, lake).lines():
        echo(f"   {line}")

    step("6/6 HTML reports")
    from jobs.report.write import best_video_id, write_campaign_report, write_video_report

    out = os.path.join(cfg.lake_path, "reports")
    top = best_video_id(lake)
    echo(f"   video report:    {write_video_report(cfg, lake, top, os.path.join(out, 'videos', top))}")
    echo(f"   campaign report: {write_campaign_report(cfg, lake, None, os.path.join(out, 'campaign'))}")


def _print_ranking(lake: Lake, model_version: str, echo, n: int = 5) -> None:
    scores = lake.read_pandas("pe_scores")
    scores = scores[scores["model_version"] == model_version]
    labels = lake.read_pandas("engagement_labels")[["video_id", "shares", "likes"]]
    table = scores.merge(labels, on="video_id", how="left").sort_values("pe_share", ascending=False)
    cols = ["video_id", "pe_share", "pe_lift", "e_score", "p_score", "product_found_seconds", "n_seconds",
            "predicted_engagement", "shares"]
    fmt = {c: "{:.3f}".format for c in ("pe_share", "pe_lift", "predicted_engagement")}
    fmt.update({c: "{:.0f}".format for c in ("e_score", "p_score")})
    echo(f"top {n} videos by PE-score (share of engagement on the product):")
    echo(table.head(n)[cols].to_string(index=False, formatters=fmt))
    echo(f"bottom {n}:")
    echo(table.tail(n)[cols].to_string(index=False, formatters=fmt))
