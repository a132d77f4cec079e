"""The ``pe`` command line. Every command takes the global ``--config FILE`` and ``--lake DIR`` options.

Commands are thin: they load the one config object, then call a job function that does the work.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import typer

from jobs.config import ConfigError, PEConfig, load_config

app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="PE-score: how much of an influencer video's engagement falls on the product.",
)


@dataclass
class State:
    config_path: Optional[Path] = None
    lake: Optional[str] = None
    _cfg: Optional[PEConfig] = field(default=None, repr=False)

    @property
    def cfg(self) -> PEConfig:
        if self._cfg is None:
            try:
                self._cfg = load_config(self.config_path, lake=self.lake)
            except ConfigError as e:
                fail(str(e), code=2)
        return self._cfg


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def state(ctx: typer.Context) -> State:
    return ctx.find_root().obj


@app.callback()
def main(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file (default: conf/local.yaml)."),
    lake: Optional[str] = typer.Option(None, "--lake", help="Lake root folder or URI; overrides the config's 'lake'."),
) -> None:
    ctx.obj = State(config, lake)


def open_lake(ctx: typer.Context, with_spark: bool = True):
    """The lake of the current config, with a Spark session when the command needs one."""
    from jobs.lake import Lake
    from jobs.spark import get_spark

    cfg = state(ctx).cfg
    return Lake.from_config(cfg, get_spark(cfg) if with_spark else None)


@app.command()
def tables(ctx: typer.Context) -> None:
    """List the lake's Delta tables with version, row count and files."""
    from jobs.lake import LakeError

    lake = open_lake(ctx)
    try:
        infos = lake.tables()
    except LakeError as e:
        fail(str(e))
    typer.echo(f"lake: {lake.root}")
    if not infos:
        typer.echo("(no tables)")
        return
    w = max(len(i.name) for i in infos)
    typer.echo(f"{'table'.ljust(w)}  version      rows  files  partitioned by")
    for i in infos:
        typer.echo(f"{i.name.ljust(w)}  {i.version:>7}  {i.rows:>8}  {i.files:>5}  {', '.join(i.partition_by) or '-'}")


@app.command()
def maintain(
    ctx: typer.Context,
    table: Optional[list[str]] = typer.Option(None, "--table", "-t", help="Table to maintain (repeatable); default: all."),
    retention_hours: Optional[float] = typer.Option(
        None, "--retention-hours", help="VACUUM retention (default: maintain.retention_hours, 168)."),
) -> None:
    """Compact the lake's tables (Z-ordered by their merge key) and VACUUM files older than the retention."""
    from jobs.lake import LakeError
    from jobs.maintain import run_maintain

    if retention_hours is not None and not (0 <= retention_hours < float("inf")):
        fail(f"--retention-hours must be a finite number of hours >= 0, not {retention_hours}", code=2)
    cfg = state(ctx).cfg
    try:
        results = run_maintain(cfg, table, retention_hours=retention_hours)
    except LakeError as e:
        fail(str(e))
    for m in results:
        typer.echo(m.line())
    if not results:
        typer.echo("(no tables)")


@app.command()
def sql(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="Spark SQL (Delta SQL too: DESCRIBE HISTORY t, SELECT ... VERSION AS OF n); "
                                          "every lake table and analyst view by its name."),
    format: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
    limit: int = typer.Option(1000, help="Rows to print at most."),
    write: bool = typer.Option(False, "--write", help="Allow INSERT / UPDATE / DELETE / MERGE on lake tables."),
) -> None:
    """Run a SQL statement over the lake's tables and print the result (read-only unless --write)."""
    from jobs.sql_guard import SqlRefused, check, no_file_queries
    from jobs.views import champion_version, register_views

    if format not in ("table", "csv", "json"):
        fail(f"--format must be table, csv or json, not {format!r}", code=2)
    if limit < 0:
        fail(f"--limit must be 0 or more, not {limit}", code=2)
    lake = open_lake(ctx)
    register_views(lake, champion_version=champion_version(state(ctx).cfg))
    try:
        check(lake.spark, query, allow_write=write, lake_tables=set(lake.table_names()))
        with no_file_queries(lake.spark):
            df = lake.spark.sql(query)
            rows = df.limit(limit + 1).toPandas()
    except SqlRefused as e:
        fail(f"refused: {e}")
    except Exception as e:  # Spark's analysis/parse errors and JVM errors alike: their message, not a traceback
        fail(f"query failed: {_first_line(e)}")
    truncated = len(rows) > limit
    rows = rows.head(limit)
    if format == "csv":
        sys.stdout.write(rows.to_csv(index=False))
    elif format == "json":
        for rec in json.loads(rows.to_json(orient="records", date_format="iso")):
            typer.echo(json.dumps(rec))
    else:
        typer.echo(rows.to_string(index=False) if len(rows.columns) else "(no columns)")
    if truncated:
        typer.echo(f"(first {limit} rows shown; use --limit)", err=True)


def _first_line(e: Exception) -> str:
    text = e.getMessage() if hasattr(e, "getMessage") else str(e)
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


@app.command()
def validate(
    ctx: typer.Context,
    table: Optional[list[str]] = typer.Option(
        None, "--table", "-t", help="Table to validate (repeatable); default: every table with a suite that exists."),
    allow_rejects: bool = typer.Option(
        False, "--allow-rejects",
        help="Report failing rows of input tables without failing (pe score rejects and records them)."),
) -> None:
    """Run the Great Expectations suites; exit 1 naming every failed expectation. Writes Data Docs (HTML)."""
    from jobs.lake import LakeError
    from jobs.validate import QualityError, gate, validate_tables

    lake = open_lake(ctx)  # Spark: pe_seconds' aggregation, and tables whose files pyarrow cannot read
    try:
        reports = validate_tables(lake, state(ctx).cfg, table, run_name="pe-validate")
    except (QualityError, LakeError) as e:
        fail(str(e))
    if not reports:
        fail(f"no table with a quality suite exists in {lake.root}")
    for r in reports:
        typer.echo(r.describe())
    if reports[0].docs_path:
        typer.echo(f"data docs: {reports[0].docs_path}")
    failing = gate(reports, allow_rejects=allow_rejects)
    if failing:
        names = sorted({f"{r.table}.{f.expectation}" for r in failing for f in r.failed})
        fail(f"validation failed: {', '.join(names)}")


@app.command()
def score(
    ctx: typer.Context,
    rescore: bool = typer.Option(False, "--rescore", help="Score again videos the champion already scored."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Score at most N videos (by video_id)."),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Default: score-<UTC date>-v<model version>."),
) -> None:
    """Nightly job: score every campaign video the @champion model has not scored yet (Spark)."""
    from jobs.executor_memory import ExecutorMemoryError
    from jobs.lake import LakeError
    from jobs.score import run_score
    from jobs.validate import QualityError
    from models.promotion import explain_no_champion
    from models.registry import ModelLoadError, NoChampionError

    cfg = state(ctx).cfg
    try:
        summary = run_score(cfg, rescore=rescore, limit=limit, run_id=run_id)
    except NoChampionError:
        fail(explain_no_champion(cfg.tracking_uri, cfg.mlflow.model_name, cfg.mlflow.alias))
    except (ModelLoadError, LakeError, QualityError, ExecutorMemoryError) as e:
        fail(str(e))
    typer.echo(summary.line())


@app.command("score-video")
def score_video_command(
    ctx: typer.Context,
    video: str = typer.Argument(..., metavar="FILE", help="Video file (path, file:// URI, or a URI whose scheme io.allowed_schemes allows)."),
    product: str = typer.Option(..., "--product", "-p", help="The product's listing image."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model URI (models:/name/3, models:/name@alias, "
                                        "runs:/<id>/model); default: the registered @champion."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead of a table."),
    product_only: bool = typer.Option(False, "--product-only", help="Skip the engagement model; product heatmap only."),
) -> None:
    """Score one video on this machine: PE scores and a per-second table (no Spark, no tables written)."""
    from jobs.score_one import ScoreVideoError, render_json, render_text, score_one

    try:
        report = score_one(state(ctx).cfg, video, product, model_uri=model, product_only=product_only)
    except ScoreVideoError as e:
        fail(str(e))
    typer.echo(render_json(report) if as_json else render_text(report))


@app.command()
def sample(
    ctx: typer.Context,
    videos: Optional[int] = typer.Option(None, "--videos", "-n", help="Number of videos (default: sample.videos, 12)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed; the same seed gives the same tables and files."),
    min_seconds: Optional[float] = typer.Option(None, "--min-seconds", help="Shortest video, s (default 15)."),
    max_seconds: Optional[float] = typer.Option(None, "--max-seconds", help="Longest video, s (default 60)."),
    width: Optional[int] = typer.Option(None, "--width", help="Frame width, px, even (default 360)."),
    height: Optional[int] = typer.Option(None, "--height", help="Frame height, px, even (default 640)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Render processes (default: one per core)."),
    audio: Optional[bool] = typer.Option(None, "--audio/--no-audio", help="Put an AAC soundtrack in the MP4s."),
) -> None:
    """Generate the sample campaign (videos, listing images, engagement, sales, ground truth) into the lake."""
    from jobs.lake import LakeError
    from jobs.sample import SampleError, run_sample

    try:
        summary = run_sample(state(ctx).cfg, lambda: open_lake(ctx), n_videos=videos, seed=seed,
                             min_seconds=min_seconds, max_seconds=max_seconds, width=width, height=height,
                             workers=workers, audio=audio, progress=lambda line: typer.echo(line, err=True))
    except SampleError as e:
        fail(f"{e} [{e.reason}]", code=2)
    except LakeError as e:
        fail(str(e))
    for line in summary.lines():
        typer.echo(line)


@app.command()
def train(
    ctx: typer.Context,
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Maximum epochs (default: train.epochs)."),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="mobilenet_v2 | xception | tiny (default: model.backbone)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Train on at most N labelled videos."),
    features_only: bool = typer.Option(False, "--features-only",
                                       help="Only build the training set (backbone features in training_clips)."),
    no_promote: bool = typer.Option(False, "--no-promote",
                                    help="Evaluate and register, but leave @champion alone (pe.promotion=pending): "
                                    "`pe models promote` decides."),
    sweep: Optional[Path] = typer.Option(None, "--sweep", metavar="FILE",
                                         help="YAML grid/random search of model.*/train.* settings: one nested "
                                         "MLflow run per trial; the best by validation loss is trained and gated."),
) -> None:
    """Train the engagement model, log it to MLflow as pe-engagement; @champion moves only if it is better."""
    import time

    started = time.perf_counter()
    from jobs.lake import Lake, LakeError
    from jobs.spark import get_spark
    from jobs.train import TrainingDataError, run_training, train_overrides
    from models.backbones import BackboneWeightsError, UnknownBackbone

    from models.sweep import SweepError, load_sweep

    st = state(ctx)
    try:
        cfg = load_config(st.config_path, lake=st.lake,
                          overrides=train_overrides(epochs=epochs, backbone=backbone, limit=limit))
        spec = load_sweep(sweep) if sweep is not None else None
    except (ConfigError, SweepError) as e:
        fail(str(e), code=2)
    try:
        run_training(cfg, Lake.from_config(cfg, get_spark(cfg, app_name="pe-train")), echo=typer.echo,
                     started=started, features_only=features_only, promote=not no_promote, sweep=spec)
    except (UnknownBackbone, BackboneWeightsError, SweepError) as e:
        fail(str(e), code=2)
    except (TrainingDataError, LakeError) as e:
        fail(str(e))


ingest_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                         help="Bring your own campaign: manifests or folders into the lake's input tables.")
app.add_typer(ingest_app, name="ingest")

MANIFEST_HELP = "CSV, Parquet or JSON Lines file; relative paths in it are resolved against its folder."
DRY_RUN_HELP = "Check every row and print the summary; write nothing."


def _ingest(ctx: typer.Context, kind: str, manifest: Optional[Path], **kw) -> None:
    from jobs.ingest import IngestError, run_ingest
    from jobs.lake import LakeError

    try:
        summary = run_ingest(state(ctx).cfg, kind, str(manifest) if manifest else None, **kw)
    except IngestError as e:
        fail(str(e), code=2)
    except LakeError as e:
        fail(str(e))
    typer.echo(summary.line())


@ingest_app.command("videos")
def ingest_videos(
    ctx: typer.Context,
    manifest: Optional[Path] = typer.Argument(None, help=MANIFEST_HELP + " Columns: video_id, video_uri, product_id; "
                                              "optional influencer_id, campaign_id, own_product, published_at, "
                                              "product_image_uri."),
    folder: Optional[Path] = typer.Option(None, "--folder", help="Every video file under DIR; video_id = file name "
                                          "without extension."),
    sidecar: Optional[Path] = typer.Option(None, "--sidecar", help="With --folder: a manifest with video_id and any "
                                           "other columns (default DIR/videos.csv when present)."),
    product_id: Optional[str] = typer.Option(None, "--product-id", help="product_id of rows that have none."),
    campaign_id: Optional[str] = typer.Option(None, "--campaign-id", help="campaign_id of rows that have none."),
    influencer_id: Optional[str] = typer.Option(None, "--influencer-id", help="influencer_id of rows that have none."),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
) -> None:
    """Influencer videos into campaign_videos (upsert by video_id); failed rows into ingest_rejects."""
    defaults = {"product_id": product_id, "campaign_id": campaign_id, "influencer_id": influencer_id}
    _ingest(ctx, "videos", manifest, folder=str(folder) if folder else None, sidecar=str(sidecar) if sidecar else None,
            defaults={k: v for k, v in defaults.items() if v is not None}, dry_run=dry_run)


@ingest_app.command("products")
def ingest_products(
    ctx: typer.Context,
    manifest: Optional[Path] = typer.Argument(None, help=MANIFEST_HELP + " Columns: product_id, image_uri; "
                                              "optional view, view_rank (1 = the main image)."),
    folder: Optional[Path] = typer.Option(None, "--folder", help="DIR/<product_id>.jpg (one view) or "
                                          "DIR/<product_id>/<view>.jpg (several; the first by name is the main one)."),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
) -> None:
    """Product listing images (one or more views per product) into product_images (upsert by product_id, view)."""
    _ingest(ctx, "products", manifest, folder=str(folder) if folder else None, dry_run=dry_run)


@ingest_app.command("labels")
def ingest_labels(
    ctx: typer.Context,
    manifest: Path = typer.Argument(..., metavar="FILE", help=MANIFEST_HELP + " Columns: video_id, views, likes, "
                                    "comments, shares; optional collected_at, video_uri, influencer_id, product_id."),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
) -> None:
    """Engagement counts exported from the platform into engagement_labels (upsert by video_id)."""
    _ingest(ctx, "labels", manifest, dry_run=dry_run)


@ingest_app.command("sales")
def ingest_sales(
    ctx: typer.Context,
    manifest: Path = typer.Argument(..., metavar="FILE", help=MANIFEST_HELP + " Columns: product_id, date; optional "
                                    "rolling_sales_30d, daily_sales, price, discount, search_index, advertised."),
    format: str = typer.Option("table", "--format", help="table (taobao_sales' columns) | panel (the paper's public "
                               "panel: taobao_id, updated_time, rev, treated, price, discount, search)."),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
) -> None:
    """The daily sales panel into taobao_sales (upsert by product_id, date)."""
    _ingest(ctx, "sales", manifest, fmt=format, dry_run=dry_run)


@ingest_app.command("inbox")
def ingest_inbox(
    ctx: typer.Context,
    folder: Optional[Path] = typer.Argument(None, help="Default: ingest.inbox, else <lake>/inbox."),
    dry_run: bool = typer.Option(False, "--dry-run", help=DRY_RUN_HELP),
) -> None:
    """Every manifest named products|videos|labels|sales.<csv|parquet|jsonl> in the inbox, in that order
    (the nightly DAG's first task; files left there are re-ingested as no-ops)."""
    from jobs.ingest import inbox_manifests

    inbox = str(folder) if folder else state(ctx).cfg.inbox
    found = inbox_manifests(inbox)
    if not found:
        typer.echo(f"pe ingest inbox: nothing to ingest in {inbox}")
        return
    for kind, path in found:
        _ingest(ctx, kind, Path(path), dry_run=dry_run)


models_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.add_typer(models_app, name="models")


def _no_registry(uri: str) -> bool:
    """A local sqlite registry that does not exist yet (MLflow would create an empty one)."""
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context) -> None:
    """List the registered engagement model versions with aliases and test metrics (`pe models evaluate` and
    `pe models promote` act on one version)."""
    if ctx.invoked_subcommand is not None:
        return
    from models.promotion import list_models

    cfg = state(ctx).cfg
    uri = cfg.tracking_uri
    if _no_registry(uri):
        typer.echo(f"no model registry at {uri}; run `pe train`")
        return
    versions = list_models(tracking_uri=uri, model_name=cfg.mlflow.model_name)
    if not versions:
        typer.echo(f"no versions of {cfg.mlflow.model_name} in {uri}; run `pe train`")
        return
    typer.echo(f"{cfg.mlflow.model_name} ({uri})")
    typer.echo(f"{'version':>7}  {'aliases':<12} {'created (UTC)':<19}  {'promotion':<9}  {'spearman':>8} "
               f"{'r2':>7} {'mae':>6} | {'const r2':>8} {'const mae':>9} | {'truth ρ':>7}  run")

    def num(m: dict, key: str, width: int, fmt: str = ".3f") -> str:
        return f"{m[key]:>{width}{fmt}}" if key in m else f"{'-':>{width}}"

    for v in versions:
        m = v.metrics
        typer.echo(f"{v.version:>7}  {','.join(v.aliases) or '-':<12} {v.created:<19}  {v.promotion or '-':<9}  "
                   f"{num(m, 'test_spearman', 8)} {num(m, 'test_r2', 7)} {num(m, 'test_mae', 6)} | "
                   f"{num(m, 'test_baseline_r2', 8)} {num(m, 'test_baseline_mae', 9)} | "
                   f"{num(m, 'test_truth_spearman', 7)}  {v.run_id}")


VERSION_HELP = "Model version (default: the newest registered)."


@models_app.command("evaluate")
def models_evaluate(
    ctx: typer.Context,
    version: Optional[int] = typer.Option(None, "--version", min=1, help=VERSION_HELP),
) -> None:
    """A version's held-out test metrics (logged by `pe train`) beside the constant baseline and the champion's
    on the same test videos, and the promotion gate with its intervals. Exits 1 without logged test metrics."""
    from models.promotion import EvaluationError, evaluation_of

    cfg = state(ctx).cfg
    if _no_registry(cfg.tracking_uri):
        fail(f"no model registry at {cfg.tracking_uri}; run `pe train`")
    try:
        ev = evaluation_of(cfg.tracking_uri, cfg.mlflow.model_name, None if version is None else str(version),
                           alias=cfg.mlflow.alias)
    except EvaluationError as e:
        fail(str(e))
    for line in ev.describe():
        typer.echo(line)


@models_app.command("promote")
def models_promote(
    ctx: typer.Context,
    version: Optional[int] = typer.Option(None, "--version", min=1, help=VERSION_HELP),
    force: bool = typer.Option(False, "--force", help="Move @champion to the version whatever its gate says; the "
                               "version and its run are tagged pe.promotion=forced and pe.warning in MLflow."),
) -> None:
    """Move @champion to a version evaluated by `pe train --no-promote` if the promotion gate its training run
    logged passed (the same gate as `pe train`). Exits 1 if @champion has moved since the evaluation."""
    from models.promotion import EvaluationError, StaleEvaluationError, promote_evaluated

    cfg = state(ctx).cfg
    if _no_registry(cfg.tracking_uri):
        fail(f"no model registry at {cfg.tracking_uri}; run `pe train`")
    try:
        ev, decision = promote_evaluated(
            tracking_uri=cfg.tracking_uri, model_name=cfg.mlflow.model_name,
            version=None if version is None else str(version), alias=cfg.mlflow.alias, force=force)
    except (EvaluationError, StaleEvaluationError) as e:
        fail(str(e))
    if decision.status == "forced":
        typer.echo(f"warning: {decision.reason}", err=True)
    held = f"v{ev.version}" if decision.promoted else (f"v{ev.current_champion}" if ev.current_champion else "no version")
    typer.echo(f"{cfg.mlflow.model_name} v{ev.version}: {decision.status}; @{cfg.mlflow.alias} "
               f"{'holds' if decision.promoted else 'stays with'} {held}: {decision.reason}")


@app.command()
def demo(
    ctx: typer.Context,
    videos: int = typer.Option(48, help="Videos in the sample campaign."),
    seed: int = typer.Option(7, help="Seed of the sample campaign."),
) -> None:
    """The whole pipeline on a fresh lake: sample → train → score → validate → analyze → report, then the
    ranking by PE-score. The lake folder must be missing, empty, or an earlier demo's (it is emptied)."""
    from jobs.demo import DemoError, run_demo

    try:
        run_demo(state(ctx).cfg, videos=videos, seed=seed, echo=typer.echo)
    except DemoError as e:
        fail(str(e))


@app.command()
def analyze(
    ctx: typer.Context,
    panel: Optional[Path] = typer.Option(None, "--panel", help="Folder in the paper's panel format "
                                         "(sales_panel.parquet, search_index.parquet) instead of the lake's tables."),
    engine: str = typer.Option("auto", "--engine", help="First stage over products: auto (Spark when it has more "
                               "than 2 cores and 50 products) | spark | local (this process)."),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Default: analysis-<UTC timestamp>."),
    out: Optional[Path] = typer.Option(None, "--out", help="Report folder; default <lake>/reports/analysis/<run>."),
    write_table: Optional[bool] = typer.Option(None, "--write-table/--no-write-table",
                                               help="Store the lifts in sales_lift (default: yes for the lake, "
                                               "no for --panel)."),
    model_version: Optional[str] = typer.Option(None, "--model-version",
                                                help="Scores of this model version; default the @champion, else "
                                                "the newest scored."),
    pe_column: str = typer.Option("pe_raw", "--pe-column", help="PE score of the second stage: pe_raw (the "
                                  "paper's) | pe_share."),
    sales: str = typer.Option("imputed", "--sales", help="Daily sales: imputed (from 30-day rolling sales, the "
                              "paper's) | observed (taobao_sales.daily_sales)."),
) -> None:
    """Sales-lift analysis: first stage per advertised product, second stage on the scores (paper Tables 4-5)
    with HC1/HC3/clustered errors and influence diagnostics; writes sales_lift and a Markdown/HTML report."""
    from jobs.analysis import AnalysisError
    from jobs.analyze import run_analyze
    from jobs.lake import LakeError

    for name, value, allowed in (("--engine", engine, ("auto", "spark", "local")), ("--pe-column", pe_column,
                                 ("pe_raw", "pe_share")), ("--sales", sales, ("imputed", "observed"))):
        if value not in allowed:
            fail(f"{name} must be {' or '.join(allowed)}, not {value!r}", code=2)
    if panel is not None and sales != "imputed":
        fail("--sales observed needs the lake's daily_sales; the paper's panel has rolling sales only", code=2)
    try:
        summary = run_analyze(state(ctx).cfg, panel_dir=str(panel) if panel else None, engine=engine,  # type: ignore[arg-type]
                              run_id=run_id, out_dir=str(out) if out else None, write_table=write_table,
                              model_version=model_version, pe_column=pe_column, sales_source=sales)  # type: ignore[arg-type]
    except (AnalysisError, LakeError) as e:
        fail(str(e))
    typer.echo(summary.text())


@app.command()
def evaluate(
    ctx: typer.Context,
    model_version: Optional[str] = typer.Option(None, "--model-version",
                                                help="Scores of this model version; default the @champion, else "
                                                "the newest scored."),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Default: evaluate-<UTC timestamp>-v<version>."),
    no_mlflow: bool = typer.Option(False, "--no-mlflow", help="Do not log the metrics to the model's MLflow run."),
) -> None:
    """Score the scores on a sample campaign: Spearman of pe_share with the true product engagement next to
    area-only, spectral-residual, centre-prior and constant baselines (bootstrap 95 % intervals), per scenario,
    product-map IoU and false-found rate, estimated vs true sales lifts; writes the `evaluations` table."""
    from jobs.evaluate import EvaluateError, run_evaluate
    from jobs.lake import LakeError

    lake = open_lake(ctx, with_spark=False)
    if not lake.exists("sample_truth"):  # before starting Spark: a lake without truth cannot be evaluated
        fail(f"the lake at {lake.root} has no sample_truth table: `pe evaluate` needs a sample campaign whose "
             "truth is known (`pe sample`)")
    try:
        summary = run_evaluate(state(ctx).cfg, open_lake(ctx), model_version=model_version, run=run_id,
                               log_mlflow=not no_mlflow)
    except (EvaluateError, LakeError) as e:
        fail(str(e))
    for line in summary.lines():
        typer.echo(line)
    typer.echo(f"evaluations: {len(summary.rows)} rows (table version {summary.table_version})"
               + (f"; logged to MLflow run {summary.mlflow_run_id}" if summary.mlflow_run_id else ""))


@app.command()
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
    from jobs.lake import LakeError
    from jobs.report import ReportError, write_campaign_report, write_video_report

    if (video_id is None) == (campaign is None):
        fail("give exactly one of --video-id or --campaign", code=2)
    lake = open_lake(ctx)
    try:
        if video_id is not None:
            page = write_video_report(state(ctx).cfg, lake, video_id, str(out), model_version=model_version,
                                      strip=frames)
            if page.frames_error:
                typer.echo(f"warning: frames unavailable: {page.frames_error}", err=True)
            typer.echo(f"report: {page.html} ({len(page.images)} images)")
        else:
            path = write_campaign_report(state(ctx).cfg, lake, campaign, str(out), model_version=model_version,
                                         rank_by=rank_by)
            typer.echo(f"report: {path}")
    except (ReportError, LakeError) as e:
        fail(str(e))


def run() -> None:
    """The `pe` console script: the Typer app, with set-up errors (no Delta JARs) as one line, not a traceback."""
    from jobs.delta_jars import DeltaJarsMissing

    try:
        app()
    except DeltaJarsMissing as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    run()
