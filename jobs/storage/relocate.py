"""A lake moved to another folder: `pe maintain --relocated-from OLD` points its absolute paths at the new one.

Tables store absolute URIs (campaign_videos, product_images, engagement_labels, scoring_errors) and the embedded
MLflow store (``<lake>/mlflow.db``) stores absolute artifact locations, so after ``mv lake /new/place`` every video
fails the URI policy and the champion cannot be loaded. Relocation rewrites every URI under ``OLD`` to the same
path under the lake root, one Delta commit per table, carries each ``pe_scores.listing_views_id`` over to the
new URIs (so moving re-scores nothing) and rewrites the MLflow store's artifact locations. URIs outside ``OLD``
are left alone. Running it twice changes nothing the second time.
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass

from jobs.config import PEConfig
from jobs.storage.lake import Lake
from jobs.storage.listings import VIEWS_ID, listing_views_id, with_listing_views
from pe_udfs.errors import UsageError

#: The URI columns of each table that can point into the lake.
URI_COLUMNS = {
    "campaign_videos": ("video_uri", "product_image_uri"),
    "product_images": ("image_uri",),
    "engagement_labels": ("video_uri",),
    "scoring_errors": ("video_uri",),
}
#: MLflow store columns holding artifact locations (those missing from a store's schema are skipped).
MLFLOW_COLUMNS = {
    "experiments": ("artifact_location",),
    "runs": ("artifact_uri",),
    "model_versions": ("source", "storage_location"),
    "logged_models": ("artifact_location",),
}


@dataclass
class Relocated:
    """One line per table: what relocation changed."""

    target: str
    changed: int
    detail: str = ""

    def line(self) -> str:
        return f"{self.target}: {self.changed} {self.detail}"


def run_relocate(cfg: PEConfig, old_root: str, *, spark=None) -> list[Relocated]:
    """Rewrite the lake's absolute paths under ``old_root`` to the same paths under ``cfg.lake_path``."""
    from jobs.spark import get_spark

    new_root = cfg.lake_path
    if "://" in new_root:
        raise UsageError("remote_lake", "relocation rewrites local paths; the lake is not a local folder")
    old = os.path.abspath(os.path.expanduser(old_root)).rstrip(os.sep)
    if old == new_root.rstrip(os.sep):
        raise UsageError("same_folder", f"--relocated-from {old} is the lake itself; give the folder it was in")
    lake = Lake.from_config(cfg, spark or get_spark(cfg))
    before = _views_ids(lake)
    out: list[Relocated | None] = [_relocate_table(lake, name, cols, old, new_root)
                                   for name, cols in URI_COLUMNS.items() if lake.exists(name)]
    out.append(_carry_views_ids(lake, before, _views_ids(lake)))
    out.append(_relocate_mlflow(cfg, old, new_root))
    return [r for r in out if r is not None]


def _moved(col: str, old: str, new: str):
    """Spark column: ``col`` with a leading ``old`` folder (plain path or file:// URI) replaced by ``new``."""
    from pyspark.sql import functions as F

    c = F.col(col)
    out = c
    for prefix, replacement in ((f"file://{old}/", f"file://{new}/"), (f"{old}/", f"{new}/")):
        out = F.when(c.startswith(prefix), F.concat(F.lit(replacement), c.substr(len(prefix) + 1, 1 << 30))
                     ).otherwise(out)
    return out


def _relocate_table(lake: Lake, name: str, cols: tuple[str, ...], old: str, new: str) -> Relocated:
    from pyspark.sql import functions as F

    table = lake.read(name)
    present = [c for c in cols if c in table.columns]
    under = None
    for c in present:
        cond = F.col(c).startswith(f"{old}/") | F.col(c).startswith(f"file://{old}/")
        under = cond if under is None else (under | cond)
    n = table.where(under).count() if under is not None else 0
    if n:
        lake.delta_table(name).update(condition=under, set={c: _moved(c, old, new) for c in present})
    return Relocated(name, n, f"row(s) moved from {old} to {new} (version {lake.version(name)})")


def _views_ids(lake: Lake):
    """video_id → listing_views_id as scoring would compute it now (pandas), or None without the tables."""
    if not (lake.exists("campaign_videos") and lake.exists("pe_scores")):
        return None
    videos = with_listing_views(lake, lake.read("campaign_videos").select("video_id", "product_id",
                                                                          "product_image_uri"))
    return videos.select("video_id", listing_views_id("product_image_uri", "view_names", "view_uris")
                         .alias(VIEWS_ID)).toPandas()


def _carry_views_ids(lake: Lake, before, after) -> Relocated | None:
    """pe_scores rows scored against the old URIs get the new URIs' listing_views_id: same images, no re-score."""
    if before is None or after is None:
        return None
    pairs = before.merge(after, on="video_id", suffixes=("_old", "_new"))
    pairs = pairs[pairs[f"{VIEWS_ID}_old"] != pairs[f"{VIEWS_ID}_new"]].drop_duplicates()
    if not len(pairs):
        return Relocated("pe_scores", 0, "listing_views_id carried over")
    source = lake.spark.createDataFrame(pairs, schema=f"video_id STRING, {VIEWS_ID}_old STRING, {VIEWS_ID}_new STRING")
    (lake.delta_table("pe_scores").alias("t").merge(
        source.alias("s"), f"t.video_id = s.video_id AND t.{VIEWS_ID} = s.{VIEWS_ID}_old")
     .whenMatchedUpdate(set={VIEWS_ID: f"s.{VIEWS_ID}_new"}).execute())
    return Relocated("pe_scores", len(pairs), "video(s)' listing_views_id carried over to the moved images")


def _relocate_mlflow(cfg: PEConfig, old: str, new: str) -> Relocated | None:
    """The embedded MLflow store (a SQLite file in the lake): artifact locations under ``old`` → ``new``."""
    uri = cfg.tracking_uri
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):]
    if not os.path.isfile(path):
        return None
    db = sqlite3.connect(path)
    try:
        changed = _rewrite_mlflow(db, old, new)
    finally:
        db.close()
    return Relocated("mlflow", changed, f"artifact location(s) moved to {new}")


def _rewrite_mlflow(db: sqlite3.Connection, old: str, new: str) -> int:
    """Rewrite the artifact-location columns of an MLflow SQLite store in one transaction; rows changed."""
    changed = 0
    with db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, cols in MLFLOW_COLUMNS.items():
            if table not in tables:
                continue
            have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
            for col in (c for c in cols if c in have):
                for prefix in (f"file://{old}/", f"{old}/"):
                    replacement = prefix.replace(old, new, 1)
                    cur = db.execute(f"UPDATE {table} SET {col} = ? || substr({col}, ?) WHERE substr({col}, 1, ?) = ?",
                                     (replacement, len(prefix) + 1, len(prefix), prefix))
                    changed += cur.rowcount
    return changed
