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
"""
from __future__ import annotations

import datetime as dt
import os
import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

import pandas as pd

from jobs import contracts
from jobs.config import PEConfig
from jobs.lake import Lake, LakeError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

KINDS_ORDER = ("products", "videos", "labels", "sales")
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "json", ".ndjson": "json",
           ".json": "json"}
VIDEO_EXTENSIONS = ("mp4", "mov", "m4v", "webm", "mkv", "avi")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp")
#: The paper's public panel layout (jobs/analysis/panel.py) → taobao_sales; its other columns are ignored.
PANEL_COLUMNS = {"taobao_id": "product_id", "updated_time": "date", "rev": "rolling_sales_30d", "price": "price",
                 "discount": "discount", "search": "search_index", "treated": "advertised"}
PANEL_REQUIRED = ("product_id", "date", "rolling_sales_30d", "advertised")
#: Layouts of a sales manifest: taobao_sales' own columns, or the paper's public panel (PANEL_COLUMNS).
ManifestFormat = Literal["table", "panel"]


class IngestError(LakeError):
    """The input cannot be ingested at all (unreadable file, missing or unknown columns); nothing was written."""

    stage = "ingest"
    exit_code = 2


@dataclass(frozen=True)
class Kind:
    name: str
    table: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    uris: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


KINDS = {k.name: k for k in (
    Kind("products", "product_images", ("product_id", "image_uri"), ("view", "view_rank"), uris=("image_uri",)),
    Kind("videos", "campaign_videos", ("video_id", "video_uri", "product_id"),
         ("influencer_id", "campaign_id", "own_product", "published_at", "product_image_uri"),
         uris=("video_uri", "product_image_uri")),
    Kind("labels", "engagement_labels", ("video_id", "views", "likes", "comments", "shares"),
         ("collected_at", "video_uri", "influencer_id", "product_id"), uris=("video_uri",),
         non_negative=("views", "likes", "comments", "shares")),
    Kind("sales", "taobao_sales", ("product_id", "date"),
         ("rolling_sales_30d", "daily_sales", "price", "discount", "search_index", "advertised"),
         non_negative=("rolling_sales_30d", "daily_sales", "price", "search_index")),
)}


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


# ---------------------------------------------------------------------------------------------- main
def run_ingest(cfg: PEConfig, kind: str, source: str | None = None, *, folder: str | None = None,
               sidecar: str | None = None, defaults: dict[str, str] | None = None, fmt: ManifestFormat = "table",
               dry_run: bool = False, run_id: str | None = None, spark=None) -> IngestSummary:
    """Ingest one manifest (``source``) or ``folder`` of ``kind`` into its table; see the module docstring.

    ``defaults``: column values for rows that have none (videos --folder: product_id, campaign_id...);
    ``fmt``: 'table' or 'panel' (sales only: the paper's public panel layout). Raises :class:`IngestError`.
    """
    from pyspark.sql import functions as F

    from jobs.spark import get_spark

    spec = _kind(kind)
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
        raw, shown = _folder_rows(spark, spec, folder, sidecar, defaults or {}), _absolute(folder)
    else:
        shown = _absolute(source)
        raw = _manifest_rows(spark, spec, shown, fmt, defaults or {})
    checked = _checked(raw, spec, cfg, lake, now).cache()
    try:
        summary = IngestSummary(kind, shown, spec.table, run_id, dry_run)
        summary.rows, summary.rejected = checked.select(
            F.count(F.lit(1)), F.coalesce(F.sum(F.when(F.size("_rejects") > 0, 1).otherwise(0)), F.lit(0))).first()
        summary.good = summary.rows - summary.rejected
        rejects = _reject_rows(checked, spec, run_id, now)
        summary.reasons = {r["reason"]: r["n"] for r in rejects.groupBy("reason").agg(
            F.countDistinct("source_file", F.coalesce("line", F.lit(-1))).alias("n")).collect()}
        if dry_run:
            return summary
        good = checked.where(F.size("_rejects") == 0).select(*contracts.spark_schema(spec.table).fieldNames())
        meta = {"pe.job": "ingest", "pe.run_id": run_id, "pe.source": shown}
        if summary.good:
            merged = lake.merge(spec.table, good, metadata=meta)
            summary.inserted, summary.updated = merged["num_target_rows_inserted"], merged["num_target_rows_updated"]
            summary.version = merged["version"]
        if summary.rejected:
            summary.rejects_version = lake.merge("ingest_rejects", rejects, metadata=meta)["version"]
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


# ---------------------------------------------------------------------------------------------- sources
def _kind(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise IngestError("unknown_kind", f"unknown kind {kind!r}: use {', '.join(KINDS_ORDER)}") from None


def _absolute(path: str) -> str:
    return path.rstrip("/") if "://" in path else os.path.abspath(os.path.expanduser(path))


def _read(spark, path: str) -> "DataFrame":
    """A manifest as a DataFrame of trimmed strings (blank → null) with ``_seq`` (1-based row order)."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ext = os.path.splitext(path.lower())[1]
    if ext not in FORMATS:
        raise IngestError("unknown_manifest_format", f"{path}: unknown manifest format '{ext or '(none)'}' (use {', '.join(sorted(FORMATS))})")
    if "://" not in path and not os.path.isfile(path):
        raise IngestError("not_found", f"{path} does not exist")
    reader = spark.read.option("mode", "PERMISSIVE")
    try:
        df = reader.option("header", "true").option("inferSchema", "false").csv(path) if FORMATS[ext] == "csv" \
            else reader.format(FORMATS[ext]).load(path)
        df.schema  # noqa: B018  (resolves the file now, so a bad one fails here with a readable message)
    except AnalysisException as e:
        raise IngestError("unreadable", f"{path}: cannot read it as {FORMATS[ext]}: {str(e).splitlines()[0]}") from None
    df = df.select(*[F.nullif(F.trim(F.col(f"`{c}`").cast("string")), F.lit("")).alias(c) for c in df.columns])
    order = Window.orderBy("_mid")
    return df.withColumn("_mid", F.monotonically_increasing_id()).withColumn(
        "_seq", F.row_number().over(order).cast("long")).drop("_mid")


def _mapped(df: "DataFrame", spec: Kind, path: str, fmt: str, required: tuple[str, ...]) -> "DataFrame":
    """Rename ``df``'s columns to the kind's (case-insensitive; the panel layout's names with ``fmt='panel'``);
    one-line :class:`IngestError` naming missing and unknown columns."""
    names: dict[str, str] = {}
    unknown = []
    for c in (c for c in df.columns if c != "_seq"):
        key = c.strip().lstrip("\ufeff").lower()  # a spreadsheet export may start with a byte-order mark
        key = PANEL_COLUMNS.get(key) if fmt == "panel" else key
        if fmt == "panel" and key is None:
            continue  # the panel's video, influencer and score columns belong to other tables
        if key not in spec.columns:
            unknown.append(c)
        elif key in names.values():
            raise IngestError("ambiguous_columns", f"{path}: columns {[k for k, v in names.items() if v == key] + [c]} both mean {key}")
        else:
            names[c] = key
    missing = [c for c in required if c not in names.values()]
    if missing or unknown:
        shown = {v: k for k, v in PANEL_COLUMNS.items()} if fmt == "panel" else {c: c for c in spec.columns}
        parts = ([f"missing columns {[shown[c] for c in missing]}"] if missing else []) + \
            ([f"unknown columns {unknown}"] if unknown else [])
        optional = [shown[c] for c in spec.columns if c not in required and c in shown]
        raise IngestError("bad_columns", f"{path}: {'; '.join(parts)} (required: {', '.join(shown[c] for c in required)}; "
                          f"optional: {', '.join(optional)})")
    return df.select("_seq", *[df[f"`{c}`"].alias(k) for c, k in names.items()])


def _manifest_rows(spark, spec: Kind, path: str, fmt: str, defaults: dict[str, str]) -> "DataFrame":
    from pyspark.sql import functions as F

    df = _mapped(_read(spark, path), spec, path, fmt, PANEL_REQUIRED if fmt == "panel" else spec.required)
    header = 1 if path.lower().endswith(".csv") else 0
    base = posixpath.dirname(path) if "://" in path else os.path.dirname(path)
    return _with_defaults(df, spec, defaults).select(
        "*", F.lit(path).alias("_src"), (F.col("_seq") + header).alias("_line"), F.lit(base).alias("_base"))


def _folder_rows(spark, spec: Kind, folder: str, sidecar: str | None, defaults: dict[str, str]) -> "DataFrame":
    """One row per video (or image) file under ``folder``, listed by Spark (any Hadoop file system).

    videos: video_id = the file name without extension; other columns from ``sidecar`` (a manifest with
    video_id; default ``<folder>/videos.csv`` when present) or ``defaults``. products: ``<product_id>.<ext>``
    (view 'main') or ``<product_id>/<view>.<ext>``; view_rank by file name within the product.
    """
    from pyspark.errors import AnalysisException
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    root = _absolute(folder)
    if "://" not in root and not os.path.isdir(root):
        raise IngestError("not_a_folder", f"{root} is not a folder")
    exts = VIDEO_EXTENSIONS if spec.name == "videos" else IMAGE_EXTENSIONS
    glob = "*.{" + ",".join(e for x in exts for e in (x, x.upper())) + "}"
    try:
        files = (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
                 .option("pathGlobFilter", glob).load(root).select("path"))  # content is not read
    except AnalysisException as e:
        raise IngestError("unreadable", f"{root}: cannot list it: {str(e).splitlines()[0]}") from None
    path = F.regexp_replace("path", r"^file:(//)?(?=/)", "") if "://" not in root else F.col("path")
    rel = F.expr(f"substring(_path, {len(root.rstrip('/')) + 2})")
    stem = F.regexp_extract("_rel", r"([^/]*)\.[^./]+$", 1)
    df = files.select(path.alias("_path")).withColumn("_rel", rel)
    df = df.withColumn("_seq", F.row_number().over(Window.orderBy("_rel")).cast("long"))
    if spec.name == "products":
        nested = F.col("_rel").contains("/")
        df = df.select("_seq", F.when(nested, F.substring_index("_rel", "/", 1)).otherwise(stem).alias("product_id"),
                       F.col("_path").alias("image_uri"), F.when(nested, stem).otherwise(F.lit("main")).alias("view"),
                       "_path")
    else:
        df = df.select("_seq", stem.alias("video_id"), F.col("_path").alias("video_uri"), "_path")
        if sidecar is None and "://" not in root and os.path.isfile(os.path.join(root, "videos.csv")):
            sidecar = os.path.join(root, "videos.csv")
        if sidecar is not None:
            side = _mapped(_read(spark, _absolute(sidecar)), spec, _absolute(sidecar), "table", ("video_id",))
            side = side.drop("_seq", "video_uri").dropDuplicates(["video_id"])
            df = df.join(side, "video_id", "left")
    df = _with_defaults(df, spec, defaults)
    return df.select("*", F.col("_path").alias("_src"), F.lit(None).cast("long").alias("_line"),
                     F.lit(root).alias("_base")).drop("_path")


def _with_defaults(df: "DataFrame", spec: Kind, defaults: dict[str, str]) -> "DataFrame":
    """Every column of the kind present (null when not given), ``defaults`` filling null values."""
    from pyspark.sql import functions as F

    bad = sorted(set(defaults) - set(spec.columns))
    if bad:
        raise IngestError("unknown_column", f"no column {bad} in {spec.name} (columns: {', '.join(spec.columns)})")
    out = []
    for c in spec.columns:
        col = F.col(c) if c in df.columns else F.lit(None).cast("string")
        out.append((F.coalesce(col, F.lit(defaults[c])) if defaults.get(c) is not None else col).alias(c))
    return df.select("_seq", *out, *[c for c in df.columns if c.startswith("_") and c != "_seq"])


# ---------------------------------------------------------------------------------------------- checks
def _checked(raw: "DataFrame", spec: Kind, cfg: PEConfig, lake: Lake, now: dt.datetime) -> "DataFrame":
    """``raw`` typed per the contract with ``_rejects``: array<struct<column, reason, message, value>> (empty
    for a good row), plus ``_seq``, ``_line``, ``_src``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    types = {f.name: f.dataType for f in contracts.spark_schema(spec.table).fields}
    df = raw.select("_seq", "_line", "_src", "_base", *[F.col(c).alias(f"_raw_{c}") for c in spec.columns],
                    *[_typed(F.col(c), types[c]).alias(c) for c in spec.columns])
    checks = []
    for c in spec.columns:
        value, typed = F.col(f"_raw_{c}"), F.col(c)
        if c in spec.required:
            checks.append(_reject(value.isNull(), c, "missing_value", F.lit(f"{c} is missing")))
        what = _TYPE_WORDS.get(types[c].typeName())
        if what:
            checks.append(_reject(value.isNotNull() & _typed(value, types[c]).isNull(), c, f"bad_{what[0]}",
                                  F.concat(F.lit(f"{c} '"), value, F.lit(f"' is not {what[1]}"))))
        if c in spec.non_negative:
            checks.append(_reject(typed < 0, c, "negative_value",
                                  F.concat(F.lit(f"{c} is negative ("), value, F.lit(")"))))
    if spec.name == "products":  # defaults before the key check: view 'main', rank = order within the product
        df = df.withColumn("view", F.coalesce("view", F.lit("main"))).withColumn("view_rank", F.coalesce(
            "view_rank", F.row_number().over(Window.partitionBy("product_id").orderBy("_seq"))))
    for c in spec.uris:
        check = _uri_udf(tuple(cfg.io.allowed_schemes), tuple(cfg.allowed_roots))
        df = df.withColumn(f"_u_{c}", check(F.col(c), F.col("_base"))).withColumn(c, F.col(f"_u_{c}.uri"))
        result = F.col(f"_u_{c}")
        checks.append(_reject(result["reason"].isNotNull(), c, result["reason"], result["message"]))
    keys = list(contracts.contract(spec.table).keys)
    first = Window.partitionBy(*keys).orderBy("_seq")
    df = df.withColumn("_first", F.first(F.coalesce(F.concat(F.lit("line "), F.col("_line").cast("string")),
                                                     F.col("_src"))).over(first))
    df = df.withColumn("_nth", F.row_number().over(first))
    present = F.lit(True)
    for k in keys:
        present = present & F.col(k).isNotNull()
    checks.append(_reject(present & (F.col("_nth") > 1), ",".join(keys), "duplicate_key",
                          F.concat(F.lit(f"duplicate {', '.join(keys)}: first at "), F.col("_first"))))
    df, known = _references(df, spec, lake)
    if known is not None:
        checks.append(known)
    stamp = {"campaign_videos": "ingested_at", "product_images": "ingested_at", "engagement_labels": "collected_at"}
    if spec.table in stamp:  # ingested_at / a missing collected_at: now (volatile: a re-ingest is no change)
        col = stamp[spec.table]
        df = df.withColumn(col, F.coalesce(F.col(col), F.lit(now)) if col in df.columns else F.lit(now))
    rejects = F.filter(F.array(*checks), lambda r: r.isNotNull())
    return df.select("_seq", "_line", "_src", *[F.col(c).cast(t).alias(c) for c, t in types.items()],
                     rejects.alias("_rejects"))


#: Spark type name → (reason suffix: bad_<suffix>, what the value should be).
_TYPE_WORDS = {"timestamp": ("timestamp", "a timestamp"), "date": ("timestamp", "a date"),
               "boolean": ("boolean", "true or false"), "long": ("number", "a whole number"),
               "integer": ("number", "a whole number"), "double": ("number", "a number")}


def _typed(raw: "Column", t) -> "Column":
    """A string column cast to ``t``; null where the value does not parse (never an error, ANSI mode or not)."""
    from pyspark.sql import functions as F

    name = t.typeName()
    if name in ("long", "integer"):
        d = raw.try_cast("double")
        return F.when(d == F.floor(d), d.cast(t))
    if name == "boolean":
        low = F.lower(raw)
        return (F.when(low.isin("true", "t", "yes", "y"), F.lit(True))
                .when(low.isin("false", "f", "no", "n"), F.lit(False))
                .otherwise(raw.try_cast("double") != 0))
    return raw if name == "string" else raw.try_cast(t)


def _reject(cond: "Column", column: str, reason, message: "Column") -> "Column":
    from pyspark.sql import functions as F

    reason = F.lit(reason) if isinstance(reason, str) else reason
    value = F.concat_ws(",", *[F.col(f"_raw_{c}") for c in column.split(",")])
    return F.when(cond, F.struct(F.lit(column).alias("column"), reason.alias("reason"), message.alias("message"),
                                 value.alias("value")))


def _references(df: "DataFrame", spec: Kind, lake: Lake):
    """Videos: the product's main listing image fills a missing product_image_uri; a product without any is
    unknown. Labels: a video not in campaign_videos is unknown. Returns (frame, the check or None)."""
    from pyspark.sql import functions as F

    if spec.name == "videos":
        images = _product_images(lake)
        df = df.join(F.broadcast(images), "product_id", "left").withColumn(
            "product_image_uri", F.coalesce("product_image_uri", "_main_image"))
        cond = (F.col("product_id").isNotNull() & F.col("_main_image").isNull()
                & F.col("_raw_product_image_uri").isNull())
        return df, _reject(cond, "product_id", "unknown_product", F.concat(
            F.lit("product '"), F.col("product_id"), F.lit("' has no listing image: ingest products first, or give "
                                                           "product_image_uri")))
    if spec.name == "labels":
        known = (lake.read("campaign_videos").select("video_id").distinct() if lake.exists("campaign_videos")
                 else df.sparkSession.createDataFrame([], "video_id STRING"))
        df = df.join(known.withColumn("_known", F.lit(True)), "video_id", "left")
        cond = F.col("video_id").isNotNull() & F.col("_known").isNull()
        return df, _reject(cond, "video_id", "unknown_video", F.concat(
            F.lit("video '"), F.col("video_id"), F.lit("' is not in campaign_videos: ingest videos first")))
    return df, None


def _product_images(lake: Lake) -> "DataFrame":
    """product_id → _main_image: product_images' view_rank 1 (else the lowest), else an image that
    campaign_videos already uses for the product (lakes made by pe sample)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    parts = []
    if lake.exists("product_images"):
        best = Window.partitionBy("product_id").orderBy(F.col("view_rank").asc_nulls_last(), "view")
        parts.append(lake.read("product_images").where(F.col("image_uri").isNotNull())
                     .withColumn("_n", F.row_number().over(best)).where("_n = 1")
                     .select("product_id", F.col("image_uri").alias("_main_image"), F.lit(0).alias("_from")))
    if lake.exists("campaign_videos"):
        parts.append(lake.read("campaign_videos").where(F.col("product_image_uri").isNotNull()).groupBy("product_id")
                     .agg(F.min("product_image_uri").alias("_main_image")).withColumn("_from", F.lit(1)))
    if not parts:
        return lake.spark.createDataFrame([], "product_id STRING, _main_image STRING")
    union = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    pick = Window.partitionBy("product_id").orderBy("_from")
    return union.withColumn("_n", F.row_number().over(pick)).where("_n = 1").select("product_id", "_main_image")


def _uri_udf(allowed_schemes: tuple[str, ...], allowed_roots: tuple[str, ...]):
    """pandas UDF (uri, base folder) → struct<uri, reason, message>: a relative path joined to the base and
    normalised, then checked by :func:`pe_udfs.uris.resolve_uri` (scheme, roots, local file exists)."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("uri STRING, reason STRING, message STRING")
    def check(uri: pd.Series, base: pd.Series) -> pd.DataFrame:
        return pd.DataFrame([resolve_location(u, b, allowed_schemes, allowed_roots) for u, b in zip(uri, base)],
                            columns=["uri", "reason", "message"])

    return check


def resolve_location(uri: str | None, base: str | None, allowed_schemes, allowed_roots) -> tuple:
    """``(location, reason, message)`` of one manifest URI: reason/message None when it passes the io checks."""
    from pe_udfs.errors import PEInputError
    from pe_udfs.uris import resolve_uri

    if uri is None or (isinstance(uri, float) and uri != uri):
        return None, None, None
    if "://" in uri:
        location = uri
    elif os.path.isabs(os.path.expanduser(uri)) or not base:
        location = os.path.normpath(os.path.expanduser(uri))
    elif "://" in base:
        scheme, rest = base.split("://", 1)
        location = f"{scheme}://{posixpath.normpath(posixpath.join(rest, uri))}"
    else:
        location = os.path.normpath(os.path.join(base, uri))
    try:
        resolve_uri(location, allowed_schemes=list(allowed_schemes), allowed_roots=list(allowed_roots))
    except PEInputError as e:
        return location, e.reason, str(e)
    return location, None, None


def _reject_rows(checked: "DataFrame", spec: Kind, run_id: str, now: dt.datetime) -> "DataFrame":
    from pyspark.sql import functions as F

    return (checked.where(F.size("_rejects") > 0).select("_src", "_line", F.explode("_rejects").alias("r"))
            .select(F.col("_src").alias("source_file"), F.col("_line").alias("line"), "r.column", "r.reason",
                    "r.message", "r.value", F.lit(spec.name).alias("kind"), F.lit(spec.table).alias("target_table"),
                    F.lit(run_id).alias("ingest_run"), F.lit(now).alias("at")))
