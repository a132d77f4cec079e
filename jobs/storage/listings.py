"""Which listing images a campaign video is matched against: its product's views and the id of that set.

A video's listing is its ``product_image_uri`` plus every ``product_images`` view of its product (by
``view_rank``). ``pe_scores`` stores the id of that set (``listing_views_id``) and of its files
(``listing_files_id``, computed where scoring reads the files), so scoring can tell a changed listing and a moved
lake can carry the ids over (:mod:`jobs.storage.relocate`).
"""
from __future__ import annotations

from jobs.storage.lake import Lake

__all__ = ["VIEWS_ID", "FILES_ID", "listing_views_id", "with_listing_views"]

#: pe_scores column: which listing images a video was matched against (see :func:`listing_views_id`)
VIEWS_ID = "listing_views_id"
#: pe_scores column: those images' files as scoring found them (size and modification time)
FILES_ID = "listing_files_id"


def listing_views_id(image_uri: str, view_names: str, view_uris: str):
    """Spark column: a 16-hex id of a row's listing views (its product_image_uri and its product's view names
    and image URIs, in view_rank order): any view added, removed, renamed or pointed at another image changes it.
    (A file replaced under the same URI changes listing_files_id instead.)"""
    from pyspark.sql import functions as F

    return F.substring(F.sha2(F.to_json(F.struct(F.col(image_uri).alias("main"), F.col(view_names).alias("names"),
                                                  F.col(view_uris).alias("uris"))), 256), 1, 16)


def with_listing_views(lake: Lake, videos):
    """``videos`` (Spark rows with product_id) + view_names, view_uris: every product_images view of the row's
    product, in view_rank order (NULL when the product has none: its product_image_uri is then the only view).
    A Spark join."""
    from pyspark.sql import functions as F

    if not lake.exists("product_images"):
        return videos.select("*", F.lit(None).cast("array<string>").alias("view_names"),
                             F.lit(None).cast("array<string>").alias("view_uris"))
    views = (lake.read("product_images").where(F.col("image_uri").isNotNull()).groupBy("product_id")
             .agg(F.sort_array(F.collect_list(F.struct(F.coalesce("view_rank", F.lit(2**31 - 1)).alias("rank"),
                                                       "view", "image_uri"))).alias("_views"))
             .select("product_id", F.col("_views.view").alias("view_names"), F.col("_views.image_uri").alias("view_uris")))
    return videos.join(views, "product_id", "left").select(*videos.columns, "view_names", "view_uris")
