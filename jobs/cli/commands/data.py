"""``pe`` commands over the lake's tables: sample, ingest …, tables, sql, serve-sql, catalog, maintain, validate."""
from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Literal, Optional

import typer

from jobs.cli.commands.context import open_lake, state
from jobs.ingest.job import ManifestFormat
from jobs.quality.validate import SUITE_TABLES
from pe_udfs.errors import UsageError

SqlFormat = Literal["table", "csv", "json"]
#: The choices of ``pe validate --table`` (typer takes a list of an Enum, not of a Literal).
# mypy reads members only from a literal Enum() call; these come from the suites' registry, one name per suite
SuiteTable = Enum("SuiteTable", {t: t for t in SUITE_TABLES}, type=str)  # type: ignore[misc]


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
    scenario: Optional[str] = typer.Option(None, "--scenario", help="Every video in one scenario, e.g. 'turning' "
                                           "(the product turns its side to the camera; adds product_images with "
                                           "front and side views). Default: the usual mix."),
) -> None:
    """Generate the sample campaign (videos, listing images, engagement, sales, ground truth) into the lake."""
    from jobs.synth.sample import run_sample

    summary = run_sample(state(ctx).cfg, lambda: open_lake(ctx), n_videos=videos, seed=seed,
                         min_seconds=min_seconds, max_seconds=max_seconds, width=width, height=height,
                         workers=workers, audio=audio, scenario=scenario,
                         progress=lambda line: typer.echo(line, err=True))
    for line in summary.lines():
        typer.echo(line)


# --------------------------------------------------------------------------------------------------- ingest
ingest_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                         help="Bring your own campaign: manifests or folders into the lake's input tables.")

MANIFEST_HELP = "CSV, Parquet or JSON Lines file; relative paths in it are resolved against its folder."
DRY_RUN_HELP = "Check every row and print the summary; write nothing."


def _ingest(ctx: typer.Context, kind: str, manifest: Optional[Path], **kw) -> None:
    from jobs.ingest.job import run_ingest

    summary = run_ingest(state(ctx).cfg, kind, str(manifest) if manifest else None, **kw)
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
    format: ManifestFormat = typer.Option("table", "--format", help="table (taobao_sales' columns) | panel (the "
                                          "paper's public panel: taobao_id, updated_time, rev, treated, price, "
                                          "discount, search)."),
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
    from jobs.ingest.job import inbox_manifests

    inbox = str(folder) if folder else state(ctx).cfg.inbox
    found = inbox_manifests(inbox)
    if not found:
        typer.echo(f"pe ingest inbox: nothing to ingest in {inbox}")
        return
    for kind, path in found:
        _ingest(ctx, kind, Path(path), dry_run=dry_run)


# ---------------------------------------------------------------------------------------------- the tables
def tables(ctx: typer.Context) -> None:
    """List the lake's Delta tables with version, row count and files."""
    lake = open_lake(ctx)
    infos = lake.tables()
    typer.echo(f"lake: {lake.root}")
    if not infos:
        typer.echo("(no tables)")
        return
    w = max(len(i.name) for i in infos)
    typer.echo(f"{'table'.ljust(w)}  version      rows  files  partitioned by")
    for i in infos:
        typer.echo(f"{i.name.ljust(w)}  {i.version:>7}  {i.rows:>8}  {i.files:>5}  {', '.join(i.partition_by) or '-'}")


def sql(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="Spark SQL (Delta SQL too: DESCRIBE HISTORY t, SELECT ... VERSION AS OF n); "
                                          "every lake table and analyst view by its name."),
    format: SqlFormat = typer.Option("table", "--format", "-f", help="How to print the rows."),
    limit: int = typer.Option(1000, min=0, help="Rows to print at most."),
    write: bool = typer.Option(False, "--write", help="Allow INSERT / UPDATE / DELETE / MERGE on lake tables."),
) -> None:
    """Run a SQL statement over the lake's tables and print the result (read-only unless --write)."""
    from jobs.sql.guard import run_query
    from jobs.storage.views import champion_version, register_views

    lake = open_lake(ctx)
    register_views(lake, champion_version=champion_version(state(ctx).cfg))
    rows = run_query(lake, query, allow_write=write, limit=limit + 1)
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


def serve_sql(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(10000, "--port", min=1, max=65535, help="TCP port of the JDBC/ODBC endpoint."),
    metastore: Optional[Path] = typer.Option(None, "--metastore", help="Folder of the embedded Derby metastore "
                                             "(default: <lake>/_metastore)."),
) -> None:
    """Serve the lake's tables and analyst views over JDBC/ODBC (Spark's Thrift server; read-only, guarded like
    pe sql). Prints one line when ready; SIGTERM or Ctrl-C stops it."""
    from jobs.sql.serve import Endpoint, serve
    from jobs.storage.views import champion_version

    cfg = state(ctx).cfg
    serve(cfg, Endpoint(host, port), metastore=str(metastore) if metastore else None,
          champion=lambda: champion_version(cfg), say=lambda line: typer.echo(line))


def catalog(
    ctx: typer.Context,
    metastore: Optional[Path] = typer.Option(None, "--metastore", help="Folder of the embedded Derby metastore "
                                             "(default: sql.metastore_dir, else <lake>/_metastore)."),
) -> None:
    """Register the lake's tables and analyst views in the persistent catalog (pe serve-sql's, spark-sql's), so
    new tables and a new champion are seen; a running pe serve-sql keeps its catalog current itself."""
    from jobs.sql.serve import refresh_catalog
    from jobs.storage.views import champion_version

    cfg = state(ctx).cfg
    typer.echo(refresh_catalog(cfg, champion_version(cfg), metastore=str(metastore) if metastore else None))


def maintain(
    ctx: typer.Context,
    table: Optional[list[str]] = typer.Option(None, "--table", "-t", help="Table to maintain (repeatable); default: all."),
    retention_hours: Optional[float] = typer.Option(
        None, "--retention-hours", help="VACUUM retention (default: maintain.retention_hours, 168)."),
    relocated_from: Optional[str] = typer.Option(
        None, "--relocated-from", help="The folder the lake was moved from: rewrite the tables' and the MLflow "
        "store's absolute paths under it to the lake's folder (nothing else is done)."),
) -> None:
    """Compact the lake's tables (Z-ordered by their merge key) and VACUUM files older than the retention."""
    from jobs.storage.maintain import run_maintain

    if relocated_from is not None:
        from jobs.storage.relocate import run_relocate

        for r in run_relocate(state(ctx).cfg, relocated_from):
            typer.echo(r.line())
        return

    if retention_hours is not None and not (0 <= retention_hours < float("inf")):
        raise UsageError("bad_retention", f"--retention-hours must be a finite number of hours >= 0, not "
                         f"{retention_hours}")
    results = run_maintain(state(ctx).cfg, table, retention_hours=retention_hours)
    for m in results:
        typer.echo(m.line())
    if not results:
        typer.echo("(no tables)")


def validate(
    ctx: typer.Context,
    table: Optional[list[SuiteTable]] = typer.Option(
        None, "--table", "-t", help="Table to validate (repeatable); default: every table with a suite that exists."),
    allow_rejects: bool = typer.Option(
        False, "--allow-rejects",
        help="Report failing rows of input tables without failing (pe score rejects and records them)."),
) -> None:
    """Run the Great Expectations suites; exit 1 naming every failed expectation. Writes Data Docs (HTML)."""
    from jobs.quality.validate import QualityError, ValidationFailed, gate, validate_tables

    lake = open_lake(ctx)  # Spark: pe_seconds' aggregation, and tables whose files pyarrow cannot read
    reports = validate_tables(lake, state(ctx).cfg, [t.value for t in table or ()] or None, run_name="pe-validate")
    if not reports:
        raise QualityError("no_tables", f"no table with a quality suite exists in {lake.root}")
    for r in reports:
        typer.echo(r.describe())
    if reports[0].docs_path:
        typer.echo(f"data docs: {reports[0].docs_path}")
    failing = gate(reports, allow_rejects=allow_rejects)
    if failing:
        raise ValidationFailed(failing)
    if not table or {t.value for t in table} & {"pe_scores", "pe_seconds"}:
        from jobs.storage.integrity import require_agreement

        leftovers = require_agreement(lake)  # a rolled-back table passes every suite: the versions tell
        if leftovers:
            typer.echo(f"note: {leftovers.line()} (an interrupted run; the next `pe score` scores them again)")
