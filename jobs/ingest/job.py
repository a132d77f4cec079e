"""``pe ingest``: bring your own campaign — manifests and folders into the lake's input tables (Spark).

    source: a CSV / Parquet / JSON Lines manifest (Spark reads it), or a folder (Spark lists it: one row
            per video or image file, ids from file names, an optional sidecar manifest joined on video_id)
      ─► column names mapped case-insensitively to the table's (missing or unknown columns: one-line error)
      ─► typed per the contract; relative URIs resolved against the manifest's folder
      ─► per row, as Spark expressions and one pandas UDF (URIs checked by pe_udfs.uris.resolve_uri against
         io.allowed_schemes / allowed_roots, on the executors): missing value, bad timestamp / number /
         boolean, negative value, duplicate key, unknown product / video, disallowed or missing file
      ─► good rows: Lake.merge into the table by key (one commit; the same file again commits nothing)
      ─► failed checks: Lake.merge into ingest_rejects (source file, line, column, reason) ─► summary line

    kind      table              required columns                          key
    products  product_images     product_id, image_uri                     product_id, view
    videos    campaign_videos    video_id, video_uri, product_id           video_id
    labels    engagement_labels  video_id, views, likes, comments, shares  video_id
    sales     taobao_sales       product_id, date                          product_id, date

A video without a product_image_uri gets its product's main listing image (view_rank 1 in product_images);
a video whose product has no image at all is rejected (unknown_product): ingest products first.

This module runs the job; the kinds are in :mod:`jobs.ingest.kinds`, the sources in :mod:`jobs.ingest.sources`
and the per-row checks in :mod:`jobs.ingest.checks`.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Literal, get_args

from jobs.config import PEConfig
from jobs.ingest.checks import checked_rows, reject_rows
from jobs.ingest.kinds import KINDS_ORDER, IngestError, get_kind
from jobs.ingest.sources import FORMATS, absolute, folder_rows, manifest_rows
from jobs.storage import contracts
from jobs.storage.lake import Lake

#: Layouts of a sales manifest: taobao_sales' own columns, or the paper's public panel
#: (:data:`jobs.ingest.sources.PANEL_COLUMNS`).
ManifestFormat = Literal["table", "panel"]


@dataclass
class IngestSummary:
    kind: str
    source: str
    table: str
    run_id: str
    dry_run: bool
    rows: int = 0
    good: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    inserted: int = 0
    updated: int = 0
    version: int | None = None
    rejects_version: int | None = None

    def line(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.reasons.items()))
        head = f"pe ingest {self.kind}: {self.source} → {self.table}: rows={self.rows} good={self.good} " \
               f"rejected={self.rejected}{f' ({reasons})' if reasons else ''}"
        if self.dry_run:
            return head + " (dry run: nothing written)"
        written = f"inserted={self.inserted} updated={self.updated}"
        versions = f"{self.table} v{self.version}" if self.version is not None else f"{self.table} unchanged"
        if self.rejects_version is not None:
            versions += f", ingest_rejects v{self.rejects_version}"
        return f"{head} {written} ({versions}) run {self.run_id}"


def run_ingest(cfg: PEConfig, kind: str, source: str | None = None, *, folder: str | None = None,
               sidecar: str | None = None, defaults: dict[str, str] | None = None, fmt: ManifestFormat = "table",
               dry_run: bool = False, run_id: str | None = None, spark=None) -> IngestSummary:
    """Ingest one manifest (``source``) or ``folder`` of ``kind`` into its table; see the module docstring.

    ``defaults``: column values for rows that have none (videos --folder: product_id, campaign_id...);
    ``fmt``: 'table' or 'panel' (sales only: the paper's public panel layout). Raises :class:`IngestError`.
    """
    from pyspark.sql import functions as F

    from jobs.spark import get_spark

    spec = get_kind(kind)
    if (source is None) == (folder is None):
        raise IngestError("bad_arguments", f"give a manifest file or --folder DIR for pe ingest {kind}, not both or neither")
    if folder is not None and kind not in ("videos", "products"):
        raise IngestError("bad_arguments", f"--folder works for videos and products, not {kind}")
    if fmt not in get_args(ManifestFormat) or (fmt == "panel" and kind != "sales"):
        raise IngestError("bad_format", f"--format {fmt!r}: use 'table', or 'panel' with pe ingest sales")
    spark = spark or get_spark(cfg, app_name=f"pe-ingest-{kind}")
    lake = Lake.from_config(cfg, spark)
    now = dt.datetime.now(dt.timezone.utc)
    run_id = run_id or f"ingest-{kind}-{now:%Y%m%dT%H%M%S}"
    if folder is not None:
        raw, shown = folder_rows(spark, spec, folder, sidecar, defaults or {}), absolute(folder)
    else:
        assert source is not None  # exactly one of source and folder, checked above
        shown = absolute(source)
        raw = manifest_rows(spark, spec, shown, fmt, defaults or {})
    checked = checked_rows(raw, spec, cfg, lake, now).cache()
    try:
        summary = IngestSummary(kind, shown, spec.table, run_id, dry_run)
        counts = checked.select(
            F.count(F.lit(1)), F.coalesce(F.sum(F.when(F.size("_rejects") > 0, 1).otherwise(0)), F.lit(0))).first()
        assert counts is not None  # an aggregate without grouping has one row
        summary.rows, summary.rejected = counts
        summary.good = summary.rows - summary.rejected
        rejects = reject_rows(checked, spec, run_id, now)
        summary.reasons = {r["reason"]: r["n"] for r in rejects.groupBy("reason").agg(
            F.countDistinct("source_file", F.coalesce("line", F.lit(-1))).alias("n")).collect()}
        if dry_run:
            return summary
        good = checked.where(F.size("_rejects") == 0).select(*contracts.spark_schema(spec.table).fieldNames())
        meta = {"pe.job": "ingest", "pe.run_id": run_id, "pe.source": shown}
        if summary.good:
            merged = lake.merge(spec.table, good, metadata=meta)
            summary.inserted, summary.updated, summary.version = merged.inserted, merged.updated, merged.version
        if summary.rejected:
            summary.rejects_version = lake.merge("ingest_rejects", rejects, metadata=meta).version
        return summary
    finally:
        checked.unpersist()


def inbox_manifests(inbox: str) -> list[tuple[str, str]]:
    """``(kind, path)`` of the manifests named ``<kind>.<csv|parquet|jsonl|ndjson|json>`` in a local ``inbox``
    folder, in the order products, videos, labels, sales (products before the videos that name them)."""
    if not os.path.isdir(inbox):
        return []
    names = {n.lower(): n for n in os.listdir(inbox)}
    return [(kind, os.path.join(inbox, names[f"{kind}{ext}"])) for kind in KINDS_ORDER for ext in FORMATS
            if f"{kind}{ext}" in names]
