"""Product heatmap: where the seller's listing image appears in each sampled frame.

Ours (default ``method='sift'``)::

    listing image ─► SIFT keypoints + descriptors (once per product: ListingFeatures, picklable)
    frame (h, w, 3), w ≤ ~640 ─► SIFT ─► 2-NN match, Lowe ratio 0.75 ─► RANSAC homography H (listing → frame)
        ─► gates: ≥ min_inliers inliers, projected listing outline is a convex, non-degenerate,
           upright quadrilateral of sane area and perspective ─► quad ─► scaled to the out×out grid ─► filled mask (0/1)
    no confident match ─► all-zero mask (the second is kept, so the time axis lines up)

The product region (``region``): ``silhouette`` (default) — the listing photo's non-background pixels
(:func:`pe_udfs.listing.listing_silhouette`: a background model of the white listing photo; a transparent cut-out is
composited over white when loaded, so its alpha becomes that background) warped by H onto the grid, so the
photo's white margins are not counted as product; ``listing_rect`` — the whole projected listing rectangle.

Paper-faithful (``method='orb_hull'``, for replication): :mod:`pe_udfs.product_orb`. Each method is a class
behind one contract (:class:`pe_udfs.listing.ProductMatcher`), registered by name in :data:`MATCHERS` and chosen
by ``product.method``; adding one is a class and its entry there. The listing image itself (reading, checks,
silhouette) is :mod:`pe_udfs.listing`; matching a video against a product's views is :mod:`pe_udfs.product_views`.

The model frame is the full frame squashed to out×out, so a point (x, y) of a w×h match frame lands at
(x·out/w, y·out/h) on the grid: x and y are scaled separately.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from pe_udfs.errors import ProductImageError
from pe_udfs.listing import FrameMatch, ListingFeatures, ProductMatcher, listing_silhouette, ratio_matches, to_gray
from pe_udfs.product_orb import OrbHull
from pe_udfs.settings import ProductSettings

__all__ = ["ProductMap", "MATCHERS", "Sift", "matcher", "listing_features", "frame_features", "match_frame",
           "second_mask", "quad_mask", "silhouette_mask", "scale_to_grid", "drop_unmatched_seconds"]


@dataclass
class ProductMap:
    """Product heatmap of a video on the out×out grid of the model frames.

    masks: (S, out, out) uint8 0/1; found: (S,) bool; inliers: (S,) int32; matches: (S,) int32;
    quads: S entries of (4, 2) float32 corners in grid coordinates (TL, TR, BR, BL of the listing image)
    or None; area_share: (S,) float32 share of the grid covered by the mask; reasons: S strings, why a
    second was not found ('' when found); matched_view: S names of the listing view that matched (None when
    not found, or when the listing has no view name)."""

    masks: np.ndarray
    found: np.ndarray
    inliers: np.ndarray
    matches: np.ndarray
    quads: list[np.ndarray | None]
    area_share: np.ndarray
    reasons: list[str] = field(default_factory=list)
    matched_view: list[str | None] = field(default_factory=list)

    @property
    def n_seconds(self) -> int:
        return int(self.masks.shape[0])

    @classmethod
    def empty(cls, n_seconds: int, out_size: int = 224) -> "ProductMap":
        """No product anywhere (e.g. no listing image): all-zero masks for ``n_seconds`` seconds."""
        return cls(masks=np.zeros((n_seconds, out_size, out_size), np.uint8), found=np.zeros(n_seconds, bool),
                   inliers=np.zeros(n_seconds, np.int32), matches=np.zeros(n_seconds, np.int32),
                   quads=[None] * n_seconds, area_share=np.zeros(n_seconds, np.float32),
                   reasons=["no_listing"] * n_seconds, matched_view=[None] * n_seconds)


# ------------------------------------------------------------------------------------------ the SIFT matcher

class Sift(ProductMatcher):
    """Ours (``product.method: sift``): SIFT, ratio test, RANSAC homography and the plausibility gates."""

    name = "sift"

    def listing_features(self, image_rgb: np.ndarray, settings: ProductSettings, name: str) -> ListingFeatures:
        h, w = image_rgb.shape[:2]
        scale = min(1.0, settings.listing_max_side / max(h, w))
        if scale < 1.0:
            image_rgb = cv2.resize(image_rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                                   interpolation=cv2.INTER_AREA)
            h, w = image_rgb.shape[:2]
        keypoints, descriptors = _detector(settings, listing=True).detectAndCompute(to_gray(image_rgb), None)
        n = 0 if descriptors is None else len(keypoints)
        needed = max(settings.min_inliers, 3)
        if n < needed:
            raise ProductImageError("product_no_features",
                                    f"{name} has {n} {self.name} keypoints; at least {needed} are needed to "
                                    "match it (is it blank, tiny or a flat colour?)")
        coords = np.array([kp.pt for kp in keypoints], dtype=np.float32).reshape(-1, 2)
        silhouette = None
        if settings.region == "silhouette":
            silhouette = listing_silhouette(image_rgb if image_rgb.ndim == 3 else cv2.cvtColor(image_rgb, cv2.COLOR_GRAY2RGB),
                                            settings.background_tolerance)
        return ListingFeatures(keypoints=coords, descriptors=descriptors, width=int(w), height=int(h),
                               method=self.name, silhouette=silhouette)

    def frame_features(self, frame_rgb: np.ndarray, settings: ProductSettings) -> tuple:
        """(keypoints, (N, 128) float32 descriptors or None) of one frame."""
        return _detector(settings, listing=False).detectAndCompute(to_gray(frame_rgb), None)

    def match(self, frame_rgb: np.ndarray, listing: ListingFeatures, settings: ProductSettings,
              features: Any | None = None) -> FrameMatch:
        keypoints, descriptors = features if features is not None else self.frame_features(frame_rgb, settings)
        pairs = ratio_matches(listing, descriptors, settings.ratio)
        n_matches = len(pairs)
        if not pairs:
            return FrameMatch(False, 0, 0, reason="no_matches")
        src = listing.keypoints[[i for i, _ in pairs]]
        dst = np.array([keypoints[j].pt for _, j in pairs], dtype=np.float32).reshape(-1, 2)
        h, w = frame_rgb.shape[:2]
        if n_matches < settings.min_inliers:
            return FrameMatch(False, 0, n_matches, reason="too_few_matches")
        H, inlier_mask = cv2.findHomography(src, dst, cv2.RANSAC, settings.ransac_reproj_px,
                                            maxIters=settings.ransac_max_iters, confidence=0.995)
        inliers = int(inlier_mask.sum()) if inlier_mask is not None else 0
        if H is None or inliers < settings.min_inliers:
            return FrameMatch(False, inliers, n_matches, reason="too_few_inliers")
        quad = cv2.perspectiveTransform(listing.corners.reshape(1, 4, 2), H).reshape(4, 2)
        reason = _quad_gate(quad, w, h, settings)
        if reason:
            return FrameMatch(False, inliers, n_matches, reason=reason)
        return FrameMatch(True, inliers, n_matches, quad=quad.astype(np.float32), polygon=quad.astype(np.float32),
                          homography=H)


def _detector(settings: ProductSettings, *, listing: bool):
    return cv2.SIFT_create(nfeatures=0 if listing else settings.max_frame_features)


#: name → matcher (``product.method``), in the order the documentation lists them
MATCHERS: dict[str, ProductMatcher] = {m.name: m for m in (Sift(), OrbHull())}


def matcher(settings: ProductSettings) -> ProductMatcher:
    """The registered matcher ``settings.method`` names (the config refuses any other name)."""
    try:
        return MATCHERS[settings.method]
    except KeyError:
        raise ValueError(f"unknown product method {settings.method!r}; known: {', '.join(MATCHERS)}") from None


def listing_features(image_rgb: np.ndarray, settings: ProductSettings, *, name: str = "listing image"
                     ) -> ListingFeatures:
    """(h, w, 3) uint8 RGB listing image → :class:`ListingFeatures` of ``settings.method`` (SIFT: downscaled so its
    longer side is at most ``settings.listing_max_side``). Raises :class:`ProductImageError` 'product_no_features'
    when it has too few keypoints to be matched (a blank or tiny image)."""
    if image_rgb is None or image_rgb.ndim not in (2, 3) or image_rgb.size == 0:
        raise ProductImageError("product_image_unreadable", f"{name} is empty or not an image array")
    return matcher(settings).listing_features(image_rgb, settings, name)


# ------------------------------------------------------------------------------------------ frame matching

def frame_features(frame_rgb: np.ndarray, settings: ProductSettings) -> Any | None:
    """The frame's own features under ``settings.method`` (SIFT: keypoints and descriptors), so that several
    listing views can be matched against one frame without detecting its features again; None when the method
    shares none."""
    return matcher(settings).frame_features(frame_rgb, settings)


def match_frame(frame_rgb: np.ndarray, listing: ListingFeatures, settings: ProductSettings,
                features: Any | None = None) -> FrameMatch:
    """Find the listing image in one (h, w, 3) uint8 RGB frame; coordinates in that frame's pixels.
    ``features``: the frame's :func:`frame_features` when already computed."""
    if listing.method != settings.method:
        raise ValueError(f"listing features were computed with '{listing.method}', settings ask for "
                         f"'{settings.method}'")
    return matcher(settings).match(frame_rgb, listing, settings, features)


def _quad_gate(quad: np.ndarray, w: int, h: int, settings: ProductSettings) -> str:
    """'' when the projected outline is a plausible view of a flat product, else the failed gate's name."""
    if not np.all(np.isfinite(quad)):
        return "degenerate_quad"
    # signed area (shoelace) in image coordinates: the listing outline TL→TR→BR→BL is clockwise on screen,
    # which is a positive area with y pointing down; a negative area means a mirrored (impossible) view
    x, y = quad[:, 0].astype(np.float64), quad[:, 1].astype(np.float64)
    signed_area = 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    if signed_area <= 0:
        return "mirrored_or_degenerate"
    if not cv2.isContourConvex(quad.reshape(-1, 1, 2).astype(np.float32)):
        return "not_convex"
    share = signed_area / float(w * h)
    if share < settings.min_area_share:
        return "too_small"
    if share > settings.max_area_share:
        return "too_large"
    # every corner inside the frame grown by half its size: far-away corners mean a near-singular H
    if (x.min() < -0.5 * w or x.max() > 1.5 * w or y.min() < -0.5 * h or y.max() > 1.5 * h):
        return "outside_frame"
    sides = np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1)  # top, right, bottom, left
    if sides.min() < settings.min_side_ratio * sides.max():
        return "too_skewed"
    opposite = max(sides[0], sides[2]) / min(sides[0], sides[2]), max(sides[1], sides[3]) / min(sides[1], sides[3])
    if max(opposite) > settings.max_opposite_side_ratio:
        return "too_foreshortened"
    return ""


def quad_mask(polygon: np.ndarray, frame_w: int, frame_h: int, out_size: int = 224) -> np.ndarray:
    """Fill a convex polygon given in frame pixels (K, 2) on the out×out grid → (out, out) uint8 0/1.

    x is scaled by out/frame_w and y by out/frame_h (the model frame is a squash of the full frame);
    a grid cell is set exactly when its centre lies inside (or on) the polygon."""
    pts = scale_to_grid(polygon, frame_w, frame_h, out_size).astype(np.float64)
    x, y = pts[:, 0], pts[:, 1]
    signed_area = 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    if len(pts) < 3 or not np.isfinite(signed_area) or signed_area == 0:
        return np.zeros((out_size, out_size), np.uint8)
    centres = np.arange(out_size, dtype=np.float64) + 0.5
    cy, cx = centres[:, None], centres[None, :]
    inside = np.ones((out_size, out_size), bool)
    for (ax, ay), (bx, by) in zip(pts, np.roll(pts, -1, axis=0)):
        # the interior is on the same side of every edge as the polygon's orientation
        inside &= ((bx - ax) * (cy - ay) - (by - ay) * (cx - ax)) * np.sign(signed_area) >= 0
    return inside.astype(np.uint8)


def silhouette_mask(silhouette: np.ndarray, homography: np.ndarray, frame_w: int, frame_h: int,
                    out_size: int = 224) -> np.ndarray:
    """The listing's ``silhouette`` (h, w) 0/255 warped by ``homography`` (listing → frame pixels) onto the
    out×out grid (x scaled by out/frame_w, y by out/frame_h) → (out, out) uint8 0/1."""
    to_grid = np.diag([out_size / frame_w, out_size / frame_h, 1.0]) @ homography
    warped = cv2.warpPerspective(silhouette, to_grid, (out_size, out_size), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT)
    return (warped >= 128).astype(np.uint8)


def scale_to_grid(points: np.ndarray, frame_w: int, frame_h: int, out_size: int = 224) -> np.ndarray:
    """(K, 2) frame-pixel coordinates → (K, 2) float32 coordinates on the out×out grid."""
    return (np.asarray(points, np.float32) * np.array([out_size / frame_w, out_size / frame_h], np.float32))


def second_mask(frame: np.ndarray, m: FrameMatch, listing: ListingFeatures, out_size: int = 224
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """The product region of one found match on the out×out grid → ((out, out) uint8 0/1 mask, (4, 2) quad
    on the grid or None): the listing's silhouette warped by H, else the filled polygon."""
    w, h = m.size or (frame.shape[1], frame.shape[0])
    if listing.silhouette is not None and m.homography is not None:
        mask = silhouette_mask(listing.silhouette, m.homography, w, h, out_size)
    else:
        mask = quad_mask(m.polygon, w, h, out_size)  # type: ignore[arg-type]  # found: it has a polygon
    return mask, (scale_to_grid(m.quad, w, h, out_size) if m.quad is not None else None)


# ------------------------------------------------------------------------------------------ time axis

def drop_unmatched_seconds(pmap: ProductMap) -> tuple[ProductMap, np.ndarray]:
    """The authors' time axis: only the seconds where the product was found, in order → (the K-second
    :class:`ProductMap`, (K,) int32 video second each of its masks came from). Their PE code then paired
    mask k with engagement second k, truncating both to K: masks drift earlier by the dropped seconds."""
    kept = np.flatnonzero(pmap.found).astype(np.int32)
    return ProductMap(masks=pmap.masks[kept], found=pmap.found[kept], inliers=pmap.inliers[kept],
                      matches=pmap.matches[kept], quads=[pmap.quads[i] for i in kept],
                      area_share=pmap.area_share[kept], reasons=[pmap.reasons[i] for i in kept],
                      matched_view=[pmap.matched_view[i] for i in kept]), kept
