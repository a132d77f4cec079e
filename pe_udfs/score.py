"""Score one video: decode → (product heatmap ‖ engagement heatmap) → PE math. Pure: no Spark, no tables.

    uri ─► sample_video ─► model frames (S, 224, 224, 3) ──► engagement_heatmap ─► e (S, 224, 224) ─┐
                        └► match frames S × (h, w, 3) ───► product_map (thread) ─► p (S, 224, 224) ┴► pe_math

The product map runs in a worker thread while the CNN runs (OpenCV and PyTorch both release the GIL). On the
CPU the two split the torch threads the caller granted (half each, unless ``product.match_workers`` is set), so
together they never run more threads than cores — an oversubscribed OpenMP team spin-waits for its missing
core and was measured 4× slower.

Time axis: row ``second`` = s pairs engagement second s with product mask s, for s < S. Only in the paper's
``orb_hull`` mode with ``drop_unmatched_seconds`` does it follow the authors' code instead: the seconds
without a product region are dropped, mask k (from video second ``product_second``) pairs with engagement
second k, and both maps are cut to the K seconds kept, so n_seconds = K and every score sums those K rows.
Input problems raise :class:`~pe_udfs.errors.PEInputError` subclasses with their stage and reason.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from pe_udfs.errors import ModelError, ProductImageError
from pe_udfs.listing import ListingFeatures
from pe_udfs.pe_math import coarse_grid, per_second_sums, scores_from_sums
from pe_udfs.product import ProductMap, drop_unmatched_seconds, matcher
from pe_udfs.product_views import ListingView, views_product_map
from pe_udfs.saliency import METHODS, HeatmapResult, engagement_heatmap, resolve_device
from pe_udfs.settings import ClipSettings, DecodeSettings, ProductSettings, SaliencySettings
from pe_udfs.video import SampledVideo, clip_tensor, sample_video

__all__ = ["VideoScore", "score_video"]


@dataclass
class VideoScore:
    """Scores of one video.

    scores: pe_math's ``SCORE_NAMES`` → float (only ``p_score``/``p_score_6s`` in product-only mode);
    predicted_engagement: the model's prediction (None without a model); n_seconds: S;
    product_found_seconds: seconds with a confident product match; seconds: one dict per sampled second
    with second (int), timestamp_s, e_mass, pe_mass, p_mass (sums over the 224×224 grid; e/pe None in
    product-only mode), product_found, matched_view (the listing view that matched, or None), inliers,
    matches, area_share, quad_224 (x0, y0, …, x3, y3 on the
    grid, TL/TR/BR/BL of the listing image, or None), e_grid (grid·grid floats, row-major, or None);
    timings: seconds per stage (decode, product, saliency, pe, total); video: decode metadata;
    product_second (the video second its product mask came from: = second, except in orb_hull's
    drop_unmatched_seconds mode); product_only: no engagement model was run. ``heatmap`` (S, H, W) and ``product_masks`` (S, H, W) are kept
    only with ``keep_maps=True``."""

    scores: dict[str, float]
    predicted_engagement: float | None
    n_seconds: int
    product_found_seconds: int
    seconds: list[dict[str, Any]]
    timings: dict[str, float]
    video: dict[str, Any]
    product_only: bool = False
    saliency_method: str | None = None
    heatmap: np.ndarray | None = field(default=None, repr=False)
    product_masks: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (no arrays)."""
        return {"scores": self.scores, "predicted_engagement": self.predicted_engagement,
                "n_seconds": self.n_seconds, "product_found_seconds": self.product_found_seconds,
                "product_only": self.product_only, "saliency_method": self.saliency_method,
                "video": self.video, "timings": self.timings, "seconds": self.seconds}


def score_video(uri_or_sampled: str | SampledVideo, listing: ListingFeatures | Sequence[ListingView] | None, *,
                model: torch.nn.Module | None = None, clip: ClipSettings, product: ProductSettings,
                saliency: SaliencySettings, device: str | torch.device | None = "cpu",
                product_only: bool = False, allowed_schemes: Sequence[str] | None = None,
                allowed_roots: Sequence[str] | None = None, keep_maps: bool = False,
                decode: DecodeSettings | None = None) -> VideoScore:
    """Score one video (a path/URI, or an already :class:`SampledVideo`) against one listing, or against
    every view of a multi-view product (a sequence of :class:`ListingView`; the best view per second).

    ``listing=None`` (or no views) means no product image: every product mask is empty and every PE score is 0.
    ``product_only=True`` skips the engagement model and reports the product map alone. Without a model
    and not product-only, ``saliency.method`` must be 'spectral_residual'. Raises FetchError /
    DecodeError (decoding), ProductImageError (product stage), ModelError (stage 'model')."""
    needs_engagement = not product_only
    method = METHODS[saliency.method]
    if needs_engagement and model is None and method.needs_model:
        raise ModelError("model_failed", f"saliency method '{saliency.method}' needs an engagement model; "
                                         "pass a model, product_only=True or method 'spectral_residual'")
    views = _as_views(listing) or None
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    if isinstance(uri_or_sampled, SampledVideo):
        sampled = uri_or_sampled
        timings["decode"] = 0.0
    else:
        sampled = sample_video(uri_or_sampled, clip, allowed_schemes=allowed_schemes, allowed_roots=allowed_roots,
                               with_match_frames=views is not None, decode=decode)
        timings["decode"] = time.perf_counter() - t_start
    size = int(sampled.model_frames.shape[1])
    if views is not None and len(sampled.match_frames) != sampled.n_seconds:
        raise ValueError("the sampled video has no match frames; sample it with with_match_frames=True")

    threads = torch.get_num_threads()
    # a method that reads the product map (ablation) runs after it, with every core; the others beside it
    side_by_side = needs_engagement and not method.needs_product_map
    cnn_threads, product = _split_cores(threads, product, side_by_side and views is not None
                                        and resolve_device(device).type == "cpu")
    heat: HeatmapResult | None = None

    def engagement(masks: np.ndarray | None) -> HeatmapResult:
        t = time.perf_counter()
        torch.set_num_threads(cnn_threads)
        try:
            return engagement_heatmap(model, clip_tensor(sampled.model_frames), saliency, device=device,
                                      product_masks=masks)
        finally:
            torch.set_num_threads(threads)
            timings["saliency"] = time.perf_counter() - t

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pe-product") as pool:
        product_future = pool.submit(_timed_product_map, sampled, views, product, size)
        if side_by_side:
            heat = engagement(None)
        pmap, product_seconds, timings["product"] = product_future.result()
    if needs_engagement and heat is None:
        heat = engagement(_masks_on_video_seconds(pmap, product_seconds, sampled.n_seconds))

    t = time.perf_counter()
    result = _assemble(sampled, pmap, product_seconds, heat, saliency, keep_maps)
    timings["pe"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start
    result.timings = timings
    return result


def _masks_on_video_seconds(pmap: ProductMap, product_seconds: np.ndarray, n_seconds: int) -> np.ndarray:
    """The product masks (S, H, W) on the video's own seconds: mask k belongs to video second
    ``product_seconds[k]`` (differs only when the paper's mode dropped unmatched seconds); others empty."""
    masks = np.zeros((n_seconds, *pmap.masks.shape[1:]), pmap.masks.dtype)
    masks[product_seconds] = pmap.masks
    return masks


def _as_views(listing: ListingFeatures | Sequence[ListingView] | None) -> list[ListingView]:
    if listing is None:
        return []
    if isinstance(listing, ListingFeatures):
        return [ListingView(None, listing)]
    return list(listing)


def _split_cores(threads: int, product: ProductSettings, concurrent: bool) -> tuple[int, ProductSettings]:
    """(torch threads for the CNN, product settings with their matching threads) when the CNN and product
    matching share ``threads`` cores at once; unchanged when they do not run side by side on the CPU."""
    if not concurrent:
        return threads, product
    workers = product.match_workers or max(1, threads // 2)
    return max(1, threads - workers), product.model_copy(update={"match_workers": workers})


def _timed_product_map(sampled: SampledVideo, views: list[ListingView] | None, settings: ProductSettings,
                       size: int) -> tuple[ProductMap, np.ndarray, float]:
    """(product map, (K,) video second of each of its masks, seconds taken); K = S unless the paper's
    orb_hull mode (the matcher's ``drops_unmatched_seconds``) drops the seconds without a product region."""
    t = time.perf_counter()
    if views is None:
        pmap = ProductMap.empty(sampled.n_seconds, size)
    else:
        try:
            pmap = views_product_map(sampled.match_frames, views, settings, out_size=size)
        except cv2.error as e:
            raise ProductImageError("product_match_failed", f"{sampled.uri}: product matching failed: {e}",
                                    uri=sampled.uri) from e
    if matcher(settings).drops_unmatched_seconds(settings):
        pmap, seconds = drop_unmatched_seconds(pmap)
    else:
        seconds = np.arange(pmap.n_seconds, dtype=np.int32)
    return pmap, seconds, time.perf_counter() - t


def _assemble(sampled: SampledVideo, pmap: ProductMap, product_seconds: np.ndarray, heat: HeatmapResult | None,
              saliency: SaliencySettings, keep_maps: bool) -> VideoScore:
    s = pmap.n_seconds  # = sampled.n_seconds unless seconds were dropped (then both maps are cut to it)
    masks = pmap.masks
    if heat is not None:
        if heat.heatmap.shape != (sampled.n_seconds, *masks.shape[1:]):
            raise ModelError("bad_output", f"engagement heatmap {heat.heatmap.shape} does not match the product "
                                           f"map {masks.shape}")
        heatmap = heat.heatmap[:s]
        sums = per_second_sums(heatmap, masks)
        scores = scores_from_sums(sums, saliency.first_seconds)
        grid = coarse_grid(heatmap, saliency.grid).reshape(s, -1)
        e_mass, pe_mass, p_mass = sums.e_mass, sums.pe_mass, sums.p_mass
    else:
        p_mass = masks.reshape(s, -1).sum(axis=1, dtype=np.float64)
        k = min(saliency.first_seconds, s)
        scores = {"p_score": float(p_mass.sum()), "p_score_6s": float(p_mass[:k].sum())}
        grid, e_mass, pe_mass, heatmap = None, None, None, None
    seconds = []
    for i in range(s):
        quad = pmap.quads[i]
        seconds.append({
            "second": i,
            "product_second": int(product_seconds[i]),
            "timestamp_s": float(sampled.timestamps[i]),
            "e_mass": float(e_mass[i]) if e_mass is not None else None,
            "pe_mass": float(pe_mass[i]) if pe_mass is not None else None,
            "p_mass": float(p_mass[i]),
            "product_found": bool(pmap.found[i]),
            "matched_view": pmap.matched_view[i],
            "inliers": int(pmap.inliers[i]),
            "matches": int(pmap.matches[i]),
            "area_share": float(pmap.area_share[i]),
            "quad_224": [float(v) for v in quad.reshape(-1)] if quad is not None else None,
            "e_grid": [float(v) for v in grid[i]] if grid is not None else None,
        })
    video = {"uri": sampled.uri, "duration_s": sampled.duration_s, "native_fps": sampled.native_fps,
             "width": sampled.width, "height": sampled.height, "rotation": sampled.rotation,
             "truncated": sampled.truncated, "warnings": list(sampled.warnings)}
    return VideoScore(scores=scores, predicted_engagement=heat.prediction if heat is not None else None,
                      n_seconds=s, product_found_seconds=int(pmap.found.sum()), seconds=seconds, timings={},
                      video=video, product_only=heat is None,
                      saliency_method=heat.method if heat is not None else None,
                      heatmap=heatmap if keep_maps else None,
                      product_masks=masks if keep_maps else None)
