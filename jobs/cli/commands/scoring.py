"""``pe`` commands about what the model says of videos: score, score-video, evaluate, analyze, report, demo."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from jobs.analysis.analyze import Engine, FirstStage, PEColumn
from jobs.analysis.panel import SalesSource
from jobs.cli.commands.context import open_lake, state
from pe_udfs.errors import UsageError

MODEL_VERSION_HELP = "Scores of this model version; default the @champion, else the newest scored."


def score(
    ctx: typer.Context,
    rescore: bool = typer.Option(False, "--rescore", help="Score again videos the champion already scored."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Score at most N videos (by video_id)."),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Default: score-<UTC date>-v<model version>."),
) -> None:
    """Nightly job: score every campaign video the @champion model has not scored yet (Spark)."""
    from jobs.scoring.nightly import run_score

    summary = run_score(state(ctx).cfg, rescore=rescore, limit=limit, run_id=run_id)
    typer.echo(summary.line())


def score_video(
    ctx: typer.Context,
    video: str = typer.Argument(..., metavar="FILE", help="Video file (path, file:// URI, or a URI whose scheme io.allowed_schemes allows)."),
    product: List[str] = typer.Option(..., "--product", "-p", help="The product's listing image; repeat for its "
                                      "views (front, side...), each as VIEW=IMAGE or IMAGE (named after the file)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model URI (models:/name/3, models:/name@alias, "
                                        "runs:/<id>/model); default: the registered @champion."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead of a table."),
    product_only: bool = typer.Option(False, "--product-only", help="Skip the engagement model; product heatmap only."),
) -> None:
    """Score one video on this machine: PE scores and a per-second table (no Spark, no tables written)."""
    from jobs.scoring.one_video import render_json, render_text, score_one

    report = score_one(state(ctx).cfg, video, product, model_uri=model, product_only=product_only)
    typer.echo(render_json(report) if as_json else render_text(report))


def evaluate(
    ctx: typer.Context,
    model_version: Optional[str] = typer.Option(None, "--model-version", help=MODEL_VERSION_HELP),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Default: evaluate-<UTC timestamp>-v<version>."),
    no_mlflow: bool = typer.Option(False, "--no-mlflow", help="Do not log the metrics to the model's MLflow run."),
    methods: Optional[str] = typer.Option(None, "--methods", help="Comma-separated engagement-map methods to score "
                                          "too on the same product maps (e.g. vanilla,gradcam,density,ablation), on "
                                          "the test influencers' videos."),
    methods_model: Optional[str] = typer.Option(None, "--methods-model", help="Model version the --methods use "
                                                "(default: the evaluated one)."),
) -> None:
    """Score the scores on a sample campaign: Spearman of pe_share with the true product engagement on the videos
    of the model's test influencers (the headline) and on all videos, next to every model-free rule on the same
    product maps (area, centre prior, spectral residual, motion in the mask, product speed, distance from faces,
    steady shots) and the constant, with 95 % intervals that resample influencers and the paired interval against
    the best rule; per scenario, product-map IoU and false-found rate, estimated vs true sales lifts; writes the
    `evaluations` table."""
    from jobs.evaluation.against_truth import require_truth, run_evaluate

    require_truth(open_lake(ctx, with_spark=False))  # before starting Spark
    summary = run_evaluate(state(ctx).cfg, open_lake(ctx), model_version=model_version, run=run_id,
                           log_mlflow=not no_mlflow,
                           methods=[m.strip() for m in methods.split(",") if m.strip()] if methods else None,
                           methods_model=methods_model)
    for line in summary.lines():
        typer.echo(line)
    typer.echo(f"evaluations: {len(summary.rows)} rows (table version {summary.table_version})"
               + (f"; logged to MLflow run {summary.mlflow_run_id}" if summary.mlflow_run_id else ""))


def analyze(
    ctx: typer.Context,
    panel: Optional[Path] = typer.Option(None, "--panel", help="Folder in the paper's panel format "
                                         "(sales_panel.parquet, search_index.parquet) instead of the lake's tables."),
    engine: Engine = typer.Option("auto", "--engine", help="First stage over products: auto (Spark when it has more "
                                  "than 2 cores and 50 products) | spark | local (this process)."),
    first_stage: FirstStage = typer.Option("schur", "--first-stage", help="How each product's fixed effects are "
                                           "absorbed: schur (exact normal equations, the controls' part once; "
                                           "fast) | absorbing (linearmodels AbsorbingLS per product; the slow "
                                           "reference). Same numbers."),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Default: analysis-<UTC timestamp>."),
    out: Optional[Path] = typer.Option(None, "--out", help="Report folder; default <lake>/reports/analysis/<run>."),
    write_table: Optional[bool] = typer.Option(None, "--write-table/--no-write-table",
                                               help="Store the lifts in sales_lift (default: yes for the lake, "
                                               "no for --panel)."),
    model_version: Optional[str] = typer.Option(None, "--model-version", help=MODEL_VERSION_HELP),
    pe_column: PEColumn = typer.Option("pe_raw", "--pe-column", help="PE score of the second stage: pe_raw (the "
                                       "paper's) | pe_share."),
    sales: SalesSource = typer.Option("imputed", "--sales", help="Daily sales: imputed (from 30-day rolling sales, "
                                      "the paper's) | observed (taobao_sales.daily_sales)."),
) -> None:
    """Sales-lift analysis: first stage per advertised product, second stage on the scores (paper Tables 4-5)
    with HC1/HC3/clustered errors and influence diagnostics; writes sales_lift and a Markdown/HTML report."""
    from jobs.analysis.analyze import run_analyze

    if panel is not None and sales != "imputed":
        raise UsageError("bad_sales", "--sales observed needs the lake's daily_sales; the paper's panel has rolling "
                         "sales only")
    summary = run_analyze(state(ctx).cfg, panel_dir=str(panel) if panel else None, engine=engine, run_id=run_id,
                          out_dir=str(out) if out else None, write_table=write_table, model_version=model_version,
                          pe_column=pe_column, sales_source=sales, first_stage=first_stage)
    typer.echo(summary.text())


def advise(
    ctx: typer.Context,
    video_id: Optional[List[str]] = typer.Option(None, "--video-id", help="Advise this video (repeat for more); "
                                                 "default every scored video."),
    campaign: Optional[str] = typer.Option(None, "--campaign", help="Only the videos of this campaign_id."),
    model_version: Optional[str] = typer.Option(None, "--model-version", help=MODEL_VERSION_HELP),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Default: advise-<UTC timestamp>-v<version>."),
) -> None:
    """Edit advice from the scores: the moments where engagement peaks off the product, where the attention went,
    and the edits that would raise PE most (predicted from the per-second masses); writes edit_advice."""
    from jobs.report.advice import run_advise

    summary = run_advise(state(ctx).cfg, open_lake(ctx), video_ids=video_id or None, campaign=campaign,
                         model_version=model_version, run_id=run_id)
    for line in summary.lines():
        typer.echo(line)
    typer.echo(f"edit_advice: {len(summary.rows):,} rows"
               + (f" (table version {summary.table_version})" if summary.table_version is not None else ""))


def report(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Folder for the HTML page and its images."),
    video_id: Optional[str] = typer.Option(None, "--video-id", help="One video's page: frames with the engagement "
                                           "heatmap and product, per-second curves, scores and campaign percentiles."),
    campaign: Optional[str] = typer.Option(None, "--campaign", help="A campaign's leaderboard with thumbnails."),
    model_version: Optional[str] = typer.Option(None, "--model-version", help="Scores of this model version; "
                                                "default per video the @champion's, else the newest."),
    frames: int = typer.Option(8, "--frames", min=1, help="Frames in a video page's strip."),
    rank_by: str = typer.Option("pe_share", "--rank-by", help="Leaderboard order (a pe_scores column)."),
) -> None:
    """Write an HTML report (opens offline) for one video (--video-id) or one campaign (--campaign)."""
    from jobs.report.write import write_campaign_report, write_video_report

    if (video_id is None) == (campaign is None):
        raise UsageError("bad_arguments", "give exactly one of --video-id or --campaign")
    lake = open_lake(ctx)
    if video_id is not None:
        page = write_video_report(state(ctx).cfg, lake, video_id, str(out), model_version=model_version, strip=frames)
        if page.frames_error:
            typer.echo(f"warning: frames unavailable: {page.frames_error}", err=True)
        typer.echo(f"report: {page.html} ({len(page.images)} images)")
    else:
        path = write_campaign_report(state(ctx).cfg, lake, campaign, str(out), model_version=model_version,
                                     rank_by=rank_by)
        typer.echo(f"report: {path}")


def demo(
    ctx: typer.Context,
    videos: int = typer.Option(48, help="Videos in the sample campaign."),
    seed: int = typer.Option(7, help="Seed of the sample campaign."),
) -> None:
    """The whole pipeline on a fresh lake: sample → train → score → validate → analyze → report, then the
    ranking by PE-score. The lake folder must be missing, empty, or an earlier demo's (it is emptied)."""
    from jobs.cli.demo import run_demo

    run_demo(state(ctx).cfg, videos=videos, seed=seed, echo=typer.echo)
