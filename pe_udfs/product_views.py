"""Multi-view products: every listing image of a product (front, side, packaging ...) matched against each second.

    product_images views of the product ─► listing features per image (ListingCache: once per worker, keyed by
    (name, uri), ...)                       URI + file mtime/size + settings; errors cached too)
    frame (h, w, 3) ─► its features once ─► match against every view ─► best confident match (most RANSAC inliers;
                                   ties: the earlier view) ─► mask of that view, its name in matched_view
    no view confident ─► all-zero mask; the diagnostics (inliers, reason) of the view that came closest

A video whose product has no product_images rows keeps its single ``product_image_uri`` (view ``main``):
:func:`row_views` is the rule. :func:`product_map` is the one-image case (a single view, unnamed).
"""
from __future__ import annotations

import os
import threading
import urllib.parse
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from pe_udfs.errors import PEInputError, ProductImageError
from pe_udfs.listing import FrameMatch, ListingFeatures, load_image
from pe_udfs.product import ProductMap, frame_features, listing_features, match_frame, second_mask
from pe_udfs.settings import ProductSettings
from pe_udfs.uris import resolve_uri

__all__ = ["DEFAULT_VIEW", "ListingView", "ListingCache", "row_views", "file_stamp", "best_match", "views_product_map",
           "product_map"]

#: view name of a video's own product_image_uri when product_images has no row naming that image
DEFAULT_VIEW = "main"


@dataclass(frozen=True)
class ListingView:
    """One listing image of a product: ``name`` ('front', 'side', ...; None for an unnamed single listing)."""

    name: str | None
    features: ListingFeatures


def row_views(product_image_uri: str | None, view_names: Sequence[str] | None, view_uris: Sequence[str] | None
              ) -> list[tuple[str, str]]:
    """(view name, image URI) pairs to match for one campaign row, in order: the product's product_images
    views (as given: by view_rank), preceded by the row's own ``product_image_uri`` as view 'main' when no
    view names that image (a path and its file:// URI are the same image). Empty when there is no image."""
    names = [] if view_names is None else [str(n) for n in view_names]
    uris = [] if view_uris is None else [str(u) for u in view_uris]
    if len(names) != len(uris):
        raise ValueError(f"{len(names)} view names but {len(uris)} view URIs")
    views = [(n, u) for n, u in zip(names, uris) if u]
    if product_image_uri and _location(product_image_uri) not in {_location(u) for _, u in views}:
        taken = {n for n, _ in views}
        name = DEFAULT_VIEW if DEFAULT_VIEW not in taken else "campaign"
        views.insert(0, (name, product_image_uri))
    return views


def _location(uri: str) -> str:
    """The file a local path or file:// URI names (absolute, normalised), so the two spellings compare
    equal; any other URI as it is."""
    if "://" not in uri:
        return os.path.abspath(uri)
    parsed = urllib.parse.urlparse(uri)
    return os.path.abspath(urllib.parse.unquote(parsed.path)) if parsed.scheme.lower() == "file" else uri


class ListingCache:
    """Listing features per image, computed once per process (LRU of ``max_size`` entries).

    Key: the URI, the local file's (mtime ns, size) when it is a local file (a replaced image is read
    again), the product settings and the allowed schemes/roots. A broken image's error is cached too and
    re-raised for every video that uses it, so it costs one attempt per worker. Thread-safe; ``computed``
    counts the images actually read and matched (tests, benches)."""

    def __init__(self, max_size: int = 256):
        self.max_size = max_size
        self.computed = 0
        self._entries: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, uri: str | None, settings: ProductSettings, *, allowed_schemes: Sequence[str] | None = None,
            allowed_roots: Sequence[str] | None = None) -> ListingFeatures:
        """Features of the image at ``uri``; raises the image's :class:`ProductImageError`."""
        if not uri:
            raise ProductImageError("not_found", "the campaign row has no product image")
        key = (uri, file_stamp(uri, allowed_schemes, allowed_roots), tuple(sorted(settings.model_dump(exclude={"match_workers"}).items())),
               tuple(allowed_schemes or ()), tuple(allowed_roots or ()))
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return _value(self._entries[key])
        try:
            image = load_image(uri, allowed_schemes=allowed_schemes, allowed_roots=allowed_roots,
                               max_pixels=settings.max_image_pixels)
            value: Any = listing_features(image, settings, name=uri)
        except PEInputError as e:
            value = e
        with self._lock:
            self.computed += 1
            self._entries[key] = value
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)
        return _value(value)

    def views(self, views: Sequence[tuple[str, str]], settings: ProductSettings, **allowed) -> list[ListingView]:
        """:class:`ListingView` per (name, uri) pair; the first broken image raises its error."""
        return [ListingView(name, self.get(uri, settings, **allowed)) for name, uri in views]


def _value(v: Any) -> ListingFeatures:
    if isinstance(v, PEInputError):
        raise v
    return v


def file_stamp(uri: str, allowed_schemes=None, allowed_roots=None) -> tuple[int, int] | None:
    """(mtime ns, size) of a local image file; None for a remote URI or a file that cannot be checked (the
    load then raises the precise error)."""
    try:
        scheme, location = resolve_uri(uri, allowed_schemes=allowed_schemes, allowed_roots=allowed_roots,
                                       error_cls=ProductImageError)
        if scheme != "file":
            return None
        st = os.stat(location)
    except (PEInputError, OSError):
        return None
    return st.st_mtime_ns, st.st_size


def best_match(frame_rgb: np.ndarray, views: Sequence[ListingView], settings: ProductSettings
               ) -> tuple[FrameMatch, ListingView | None]:
    """Match one (h, w, 3) uint8 RGB frame against every view (the frame's own features computed once) →
    (the confident match with most inliers, its view), or (the closest unconfident match, None)."""
    features = frame_features(frame_rgb, settings)
    best: tuple[FrameMatch, ListingView | None] | None = None
    closest: FrameMatch | None = None
    for view in views:
        m = match_frame(frame_rgb, view.features, settings, features=features)
        if m.found and (best is None or m.inliers > best[0].inliers):
            best = (m, view)
        elif not m.found and (closest is None or (m.inliers, m.matches) > (closest.inliers, closest.matches)):
            closest = m
    if best is not None:
        return best
    return (closest if closest is not None else FrameMatch(False, 0, 0, reason="no_listing")), None


def views_product_map(match_frames: Sequence[np.ndarray], views: Sequence[ListingView], settings: ProductSettings,
                      out_size: int = 224) -> ProductMap:
    """S frames (h, w, 3) uint8 RGB at native resolution → :class:`ProductMap` on the out×out grid, each second
    masked by its best confident view (``matched_view``: that view's name). No views: every mask empty.
    Frames are matched by ``settings.match_workers`` threads (OpenCV releases the GIL)."""
    n = len(match_frames)
    result = ProductMap.empty(n, out_size)
    if not views or n == 0:
        return result
    workers = max(1, min(settings.match_workers or (os.cpu_count() or 1), n))
    if workers == 1:
        matches = [best_match(frame, views, settings) for frame in match_frames]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pe-match") as pool:
            matches = list(pool.map(lambda frame: best_match(frame, views, settings), match_frames))
    for i, (frame, (m, view)) in enumerate(zip(match_frames, matches)):
        result.inliers[i], result.matches[i], result.reasons[i] = m.inliers, m.matches, m.reason
        if view is None:
            continue
        mask, quad = second_mask(frame, m, view.features, out_size)
        if not mask.any():
            result.reasons[i] = "empty_on_grid"
            continue
        result.masks[i], result.found[i], result.quads[i] = mask, True, quad
        result.area_share[i] = float(mask.mean())
        result.matched_view[i] = view.name
    return result


def product_map(match_frames: Sequence[np.ndarray], listing: ListingFeatures | None, settings: ProductSettings,
                out_size: int = 224) -> ProductMap:
    """:func:`views_product_map` for one listing image (None: every mask empty)."""
    return views_product_map(match_frames, [] if listing is None else [ListingView(None, listing)], settings, out_size)
