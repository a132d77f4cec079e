"""What ``pe ingest`` can bring in: each kind's table, its required and optional columns, which of them are URIs
or must not be negative; and :class:`IngestError`, raised when an input cannot be ingested at all."""
from __future__ import annotations

from dataclasses import dataclass

from jobs.storage.lake import LakeError

KINDS_ORDER = ("products", "videos", "labels", "sales")


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


class IngestError(LakeError):
    """The input cannot be ingested at all (unreadable file, missing or unknown columns); nothing was written."""

    stage = "ingest"
    exit_code = 2


def get_kind(kind: str) -> Kind:
    try:
        return KINDS[kind]
    except KeyError:
        raise IngestError("unknown_kind", f"unknown kind {kind!r}: use {', '.join(KINDS_ORDER)}") from None
