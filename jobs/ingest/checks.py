"""The checks of ``pe ingest``: source rows typed per the table's contract, each row's failed checks listed.

Per row, as Spark expressions and one pandas UDF: missing value, bad timestamp / number / boolean, negative
value, duplicate key, unknown product / video (references to other tables), disallowed or missing file (URIs
resolved against the manifest's folder and checked by :func:`pe_udfs.uris.resolve_uri` on the executors).
:func:`checked_rows` adds ``_rejects`` (empty for a good row); :func:`reject_rows` turns them into ``ingest_rejects``.
"""
from __future__ import annotations

import datetime as dt
import os
import posixpath
from typing import TYPE_CHECKING

import pandas as pd

from jobs.config import PEConfig
from jobs.ingest.kinds import Kind
from jobs.storage import contracts
from jobs.storage.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def checked_rows(raw: "DataFrame", spec: Kind, cfg: PEConfig, lake: Lake, now: dt.datetime) -> "DataFrame":
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

    # pyspark's stubs know the old functionType overloads only, not a DDL string with the type hints deciding
    @pandas_udf("uri STRING, reason STRING, message STRING")  # type: ignore[call-overload]
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


def reject_rows(checked: "DataFrame", spec: Kind, run_id: str, now: dt.datetime) -> "DataFrame":
    from pyspark.sql import functions as F

    return (checked.where(F.size("_rejects") > 0).select("_src", "_line", F.explode("_rejects").alias("r"))
            .select(F.col("_src").alias("source_file"), F.col("_line").alias("line"), "r.column", "r.reason",
                    "r.message", "r.value", F.lit(spec.name).alias("kind"), F.lit(spec.table).alias("target_table"),
                    F.lit(run_id).alias("ingest_run"), F.lit(now).alias("at")))
