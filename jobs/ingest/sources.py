"""Where ``pe ingest`` rows come from: a manifest (CSV / Parquet / JSON Lines, read by Spark) or a folder of video
or image files (listed by Spark), as untyped string rows with the kind's columns.

Every source yields ``_seq`` (row order), the kind's columns (strings; null when not given, ``defaults`` filling
nulls), ``_src`` (the file), ``_line`` (the manifest line, null for a folder) and ``_base`` (the folder relative
URIs are resolved against). Column names are matched case-insensitively; missing or unknown columns are one
:class:`jobs.ingest.kinds.IngestError` line.
"""
from __future__ import annotations

import os
import posixpath
from typing import TYPE_CHECKING

from jobs.ingest.kinds import IngestError, Kind

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "json", ".ndjson": "json",
           ".json": "json"}
VIDEO_EXTENSIONS = ("mp4", "mov", "m4v", "webm", "mkv", "avi")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp", "bmp")
#: The paper's public panel layout (jobs/analysis/panel.py) → taobao_sales; its other columns are ignored.
PANEL_COLUMNS = {"taobao_id": "product_id", "updated_time": "date", "rev": "rolling_sales_30d", "price": "price",
                 "discount": "discount", "search": "search_index", "treated": "advertised"}
PANEL_REQUIRED = ("product_id", "date", "rolling_sales_30d", "advertised")


def absolute(path: str) -> str:
    return path.rstrip("/") if "://" in path else os.path.abspath(os.path.expanduser(path))


#: Line breaks inside the quoted fields of the CSV records before this one (so ``_line`` is where a record starts).
BREAKS_BEFORE = "_breaks_before"


def _read(spark, path: str) -> "DataFrame":
    """A manifest as a DataFrame of trimmed strings (blank → null) with ``_seq`` (1-based row order) and
    ``_breaks_before``. CSV is read as RFC 4180 says: a quoted field may hold line breaks (a file name with a
    newline is one value, not two broken rows) and a doubled quote inside quotes is one quote."""
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
        df = (reader.option("header", "true").option("inferSchema", "false").option("multiLine", "true")
              .option("escape", '"').csv(path)) if FORMATS[ext] == "csv" else reader.format(FORMATS[ext]).load(path)
        df.schema  # resolves the file now, so a bad one fails here with a readable message
    except AnalysisException as e:
        raise IngestError("unreadable", f"{path}: cannot read it as {FORMATS[ext]}: {str(e).splitlines()[0]}") from None
    breaks = F.lit(0)
    if FORMATS[ext] == "csv":  # line breaks inside this record's quoted fields
        for c in df.columns:
            raw = F.col(f"`{c}`").cast("string")
            breaks = breaks + F.coalesce(F.length(raw) - F.length(F.regexp_replace(raw, "\n", "")), F.lit(0))
    header_breaks = sum(c.count("\n") for c in df.columns) if FORMATS[ext] == "csv" else 0
    df = df.select(*[F.nullif(F.trim(F.col(f"`{c}`").cast("string")), F.lit("")).alias(c) for c in df.columns],
                   breaks.alias("_breaks"))
    order = Window.orderBy("_mid")
    before = F.sum("_breaks").over(order.rowsBetween(Window.unboundedPreceding, -1))
    return df.withColumn("_mid", F.monotonically_increasing_id()).withColumn(
        "_seq", F.row_number().over(order).cast("long")).withColumn(
        BREAKS_BEFORE, (F.coalesce(before, F.lit(0)) + header_breaks).cast("long")).drop("_mid", "_breaks")


def _mapped(df: "DataFrame", spec: Kind, path: str, fmt: str, required: tuple[str, ...]) -> "DataFrame":
    """Rename ``df``'s columns to the kind's (case-insensitive; the panel layout's names with ``fmt='panel'``);
    one-line :class:`IngestError` naming missing and unknown columns."""
    names: dict[str, str] = {}
    unknown = []
    for c in (c for c in df.columns if c not in ("_seq", BREAKS_BEFORE)):
        given = c.strip().lstrip("\ufeff").lower()  # a spreadsheet export may start with a byte-order mark
        key = PANEL_COLUMNS.get(given) if fmt == "panel" else given
        if key is None:
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
    return df.select("_seq", BREAKS_BEFORE, *[df[f"`{c}`"].alias(k) for c, k in names.items()])


def manifest_rows(spark, spec: Kind, path: str, fmt: str, defaults: dict[str, str]) -> "DataFrame":
    from pyspark.sql import functions as F

    df = _mapped(_read(spark, path), spec, path, fmt, PANEL_REQUIRED if fmt == "panel" else spec.required)
    header = 1 if path.lower().endswith(".csv") else 0
    base = posixpath.dirname(path) if "://" in path else os.path.dirname(path)
    line = F.col("_seq") + header + F.col(BREAKS_BEFORE)  # where the record starts in the file
    return _with_defaults(df, spec, defaults).select(
        "*", F.lit(path).alias("_src"), line.alias("_line"), F.lit(base).alias("_base")).drop(BREAKS_BEFORE)


def folder_rows(spark, spec: Kind, folder: str, sidecar: str | None, defaults: dict[str, str]) -> "DataFrame":
    """One row per video (or image) file under ``folder``, listed by Spark (any Hadoop file system).

    videos: video_id = the file name without extension; other columns from ``sidecar`` (a manifest with
    video_id; default ``<folder>/videos.csv`` when present) or ``defaults``. products: ``<product_id>.<ext>``
    (view 'main') or ``<product_id>/<view>.<ext>``; view_rank by file name within the product.
    """
    from pyspark.errors import AnalysisException
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    root = absolute(folder)
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
            side = _mapped(_read(spark, absolute(sidecar)), spec, absolute(sidecar), "table", ("video_id",))
            side = side.drop("_seq", BREAKS_BEFORE, "video_uri").dropDuplicates(["video_id"])
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
