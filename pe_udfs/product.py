"""Product heatmap: where the seller's listing image appears in each sampled frame.

Ours (default ``method='sift'``)::

    listing image ─► SIFT keypoints + descriptors (once per product: ListingFeatures, picklable)
    frame (h, w, 3), w ≤ ~640 ─► SIFT ─► 2-NN match, Lowe ratio 0.75 ─► RANSAC homography H (listing → frame)
        ─► gates: ≥ min_inliers inliers, projected listing outline is a convex, non-degenerate,
           upright quadrilateral of sane area and perspective ─► quad ─► scaled to the out×out grid ─► filled mask (0/1)
    no confident match ─► all-zero mask (the second is kept, so the time axis lines up)

The product region (``region``): ``silhouette`` (default) — the listing photo's non-background pixels
(:func:`listing_silhouette`: a background model of the white listing photo; a transparent cut-out is
composited over white when loaded, so its alpha becomes that background) warped by H onto the grid, so the
photo's white margins are not counted as product; ``listing_rect`` — the whole projected listing rectangle.

Paper-faithful (``method='orb_hull'``, the authors' code setting by setting, for replication)::

    listing image, frame ─► grayscale, squashed to orb_size×orb_size (224) ─► ORB (1000 features, FAST score)
        ─► 2-NN match (norm: 'l2' theirs | 'hamming' the fix), ratio 0.75 ─► matched frame keypoints, rounded
        to whole pixels ─► mask = their convex hull, boundary included (no RANSAC, no minimum)
    fewer than 3 distinct points, or all on a line ─► no hull: the second is dropped (drop_unmatched_seconds,
        theirs; see :func:`drop_unmatched_seconds`) or kept with an empty mask (the fix)

The model frame is the full frame squashed to out×out, so a point (x, y) of a w×h match frame lands at
(x·out/w, y·out/h) on the grid: x and y are scaled separately.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from pe_udfs.errors import ProductImageError
from pe_udfs.settings import ProductSettings
from pe_udfs.uris import open_binary

__all__ = ["ListingFeatures", "ProductMap", "FrameMatch", "load_image", "listing_features", "listing_silhouette",
           "product_map", "frame_features", "match_frame", "second_mask", "quad_mask", "silhouette_mask", "drop_unmatched_seconds", "orb_detector",
           "orb_norm", "orb_input"]


@dataclass
class ListingFeatures:
    """Local features of one listing image, computed once and reused for every frame and video.

    keypoints: (N, 2) float32 pixel coordinates (x, y) in the (possibly downscaled) listing image;
    descriptors: (N, 128) float32 for SIFT, (N, 32) uint8 for ORB; width/height: that image's size in
    pixels; method: 'sift' | 'orb_hull'; silhouette: (height, width) uint8 0/255 product pixels of that
    image, or None (region 'listing_rect'). Plain arrays only, so it pickles (Spark broadcast, processes)."""

    keypoints: np.ndarray
    descriptors: np.ndarray
    width: int
    height: int
    method: str
    silhouette: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def corners(self) -> np.ndarray:
        """(4, 2) float32 outline of the listing image: top-left, top-right, bottom-right, bottom-left."""
        w, h = float(self.width), float(self.height)
        return np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)


@dataclass
class FrameMatch:
    """Result of matching the listing against one frame (coordinates in that frame's pixels).

    found: a confident match passed every gate; inliers: RANSAC inliers (sift) or distinct matched pixels
    (orb_hull); matches: ratio-test matches; quad: (4, 2) float32 projected listing outline (sift, found
    only); polygon: (K, 2) float32 region outline (the quad, or the convex hull for orb_hull); reason:
    why it was not found ('' when found); homography: H (sift, found only); size: (w, h) of the image the
    coordinates are in when it is not the frame itself (orb_hull: the orb_size×orb_size squash), else None."""

    found: bool
    inliers: int
    matches: int
    quad: np.ndarray | None = None
    polygon: np.ndarray | None = None
    reason: str = ""
    homography: np.ndarray | None = None  # (3, 3) listing pixels → frame pixels (sift, found only)
    size: tuple[int, int] | None = None


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


# ------------------------------------------------------------------------------------------ listing image

def load_image(uri: str, *, allowed_schemes: Sequence[str] | None = None,
               allowed_roots: Sequence[str] | None = None, max_pixels: int = 25_000_000) -> np.ndarray:
    """Read an image file (JPEG, PNG, WebP, ...) from a path or URI → (h, w, 3) uint8 RGB.

    Transparent pixels are composited over white (listing images are often cut-outs). The size in the file's
    header is checked before decoding, and a truncated or corrupt file is refused, not half-read. Raises
    :class:`ProductImageError` with reason 'not_found', 'scheme_not_allowed', 'outside_allowed_roots',
    'fetch_failed', 'too_large' or 'product_image_unreadable'."""
    with open_binary(uri, allowed_schemes=allowed_schemes, allowed_roots=allowed_roots,
                     error_cls=ProductImageError) as (source, _size):
        try:
            if isinstance(source, str):
                with open(source, "rb") as f:
                    data = f.read()
            else:
                data = source.read()
        except OSError as e:
            raise ProductImageError("fetch_failed", f"{uri}: {e}", uri=uri) from e
    if not data:
        raise ProductImageError("product_image_unreadable", f"{uri} is an empty file", uri=uri)
    _check_image(data, uri, max_pixels)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ProductImageError("product_image_unreadable", f"{uri} is not a readable image file", uri=uri)
    return to_rgb(image)


def _check_image(data: bytes, uri: str, max_pixels: int) -> None:
    """Refuse an image too large by its header (before any pixel is decoded), or whose data is truncated or
    corrupt (Pillow decodes it strictly; OpenCV would return the readable part and grey for the rest)."""
    import io
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():  # our own, lower cap decides; Pillow's bomb warning is noise here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
        with im:
            w, h = im.size
            if w * h > max_pixels:
                raise ProductImageError("too_large", f"{uri}: {w}x{h} pixels is over the limit of {max_pixels:,} "
                                        f"(product.max_image_pixels); use a smaller listing image", uri=uri)
            im.load()
    except ProductImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ProductImageError("too_large", f"{uri}: {e}", uri=uri) from None
    except (OSError, SyntaxError, ValueError) as e:  # not an image, truncated, or corrupt data
        raise ProductImageError("product_image_unreadable", f"{uri} is not a complete, readable image: {e}",
                                uri=uri) from None


def to_rgb(image: np.ndarray) -> np.ndarray:
    """An OpenCV-decoded image (gray, BGR or BGRA; 8 or 16 bit) → (h, w, 3) uint8 RGB, alpha over white."""
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        bgr = image[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return cv2.cvtColor(bgr.round().astype(np.uint8), cv2.COLOR_BGR2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _detector(settings: ProductSettings, *, listing: bool):
    return cv2.SIFT_create(nfeatures=0 if listing else settings.max_frame_features)


def _gray(image_rgb: np.ndarray) -> np.ndarray:
    if image_rgb.ndim == 2:
        return image_rgb
    return cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)


def listing_silhouette(image_rgb: np.ndarray, tolerance: int = 28) -> np.ndarray:
    """(h, w, 3) uint8 RGB listing photo → (h, w) uint8 0/255 product mask (background model).

    The background colour is the median of the image's border; background = pixels within ``tolerance``
    (max over RGB) of it that are connected to the border; the product = the rest, holes in it filled
    (only components the border can reach count as background), specks under 0.1 % of the image removed.
    A photo without a plain border (under half of the border is background-coloured) is all product."""
    h, w = image_rgb.shape[:2]
    border = np.concatenate([image_rgb[0], image_rgb[-1], image_rgb[:, 0], image_rgb[:, -1]]).astype(np.int16)
    colour = np.median(border, axis=0)
    if (np.abs(border - colour).max(axis=1) <= tolerance).mean() < 0.5:
        return np.full((h, w), 255, np.uint8)
    like = (np.abs(image_rgb.astype(np.int16) - colour).max(axis=2) <= tolerance).astype(np.uint8)
    _, labels = cv2.connectedComponents(like, connectivity=4)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, edge[edge > 0])  # label 0: the pixels that are not background-coloured
    product = (~background).astype(np.uint8) * 255
    product = cv2.morphologyEx(product, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(product, connectivity=8)
    small = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] < 0.001 * h * w]
    if small:
        product[np.isin(labels, small)] = 0
    return product


def listing_features(image_rgb: np.ndarray, settings: ProductSettings, *, name: str = "listing image"
                     ) -> ListingFeatures:
    """(h, w, 3) uint8 RGB listing image → :class:`ListingFeatures` (downscaled so its longer side is at
    most ``settings.listing_max_side``). Raises :class:`ProductImageError` 'product_no_features' when it
    has fewer keypoints than ``settings.min_inliers`` (a blank or tiny image cannot be matched)."""
    if image_rgb is None or image_rgb.ndim not in (2, 3) or image_rgb.size == 0:
        raise ProductImageError("product_image_unreadable", f"{name} is empty or not an image array")
    if settings.method == "orb_hull":
        return _orb_listing(image_rgb, settings, name)
    h, w = image_rgb.shape[:2]
    scale = min(1.0, settings.listing_max_side / max(h, w))
    if scale < 1.0:
        image_rgb = cv2.resize(image_rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
        h, w = image_rgb.shape[:2]
    keypoints, descriptors = _detector(settings, listing=True).detectAndCompute(_gray(image_rgb), None)
    n = 0 if descriptors is None else len(keypoints)
    needed = max(settings.min_inliers, 3)
    if n < needed:
        raise ProductImageError("product_no_features",
                                f"{name} has {n} {settings.method} keypoints; at least {needed} are needed to "
                                "match it (is it blank, tiny or a flat colour?)")
    coords = np.array([kp.pt for kp in keypoints], dtype=np.float32).reshape(-1, 2)
    silhouette = None
    if settings.region == "silhouette" and settings.method == "sift":
        silhouette = listing_silhouette(image_rgb if image_rgb.ndim == 3 else cv2.cvtColor(image_rgb, cv2.COLOR_GRAY2RGB),
                                        settings.background_tolerance)
    return ListingFeatures(keypoints=coords, descriptors=descriptors, width=int(w), height=int(h),
                           method=settings.method, silhouette=silhouette)


# ------------------------------------------------------------------------------------------ frame matching

def _ratio_matches(listing: ListingFeatures, frame_descriptors: np.ndarray, ratio: float, norm: int = cv2.NORM_L2
                   ) -> list[tuple[int, int]]:
    """(listing index, frame index) pairs passing Lowe's ratio test on 2-NN matches under ``norm``."""
    if frame_descriptors is None or len(frame_descriptors) < 2:
        return []
    matcher = cv2.BFMatcher(norm, crossCheck=False)
    knn = matcher.knnMatch(listing.descriptors, frame_descriptors, k=2)
    return [(m[0].queryIdx, m[0].trainIdx) for m in knn
            if len(m) == 2 and m[0].distance < ratio * m[1].distance]


def frame_features(frame_rgb: np.ndarray, settings: ProductSettings) -> tuple:
    """SIFT (keypoints, (N, 128) float32 descriptors or None) of one (h, w, 3) uint8 RGB frame, so that
    several listing views can be matched against one frame without detecting its features again."""
    return _detector(settings, listing=False).detectAndCompute(_gray(frame_rgb), None)


def match_frame(frame_rgb: np.ndarray, listing: ListingFeatures, settings: ProductSettings,
                features: tuple | None = None) -> FrameMatch:
    """Find the listing image in one (h, w, 3) uint8 RGB frame; coordinates in that frame's pixels.
    ``features``: the frame's :func:`frame_features` when already computed (sift only)."""
    if listing.method != settings.method:
        raise ValueError(f"listing features were computed with '{listing.method}', settings ask for "
                         f"'{settings.method}'")
    if settings.method == "orb_hull":
        return _hull_match(frame_rgb, listing, settings)
    keypoints, descriptors = features if features is not None else frame_features(frame_rgb, settings)
    pairs = _ratio_matches(listing, descriptors, settings.ratio)
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


def product_map(match_frames: Sequence[np.ndarray], listing: ListingFeatures | None, settings: ProductSettings,
                out_size: int = 224) -> ProductMap:
    """S frames (h, w, 3) uint8 RGB at native resolution → :class:`ProductMap` on the out×out grid, for one
    listing image (several views of a product: :func:`pe_udfs.product_views.views_product_map`).

    Every second gets a mask (all-zero when the product is not confidently found); with ``listing=None``
    every mask is empty. Frames are matched by ``settings.match_workers`` threads (OpenCV releases the GIL)."""
    from pe_udfs.product_views import ListingView, views_product_map

    views = [] if listing is None else [ListingView(None, listing)]
    return views_product_map(match_frames, views, settings, out_size)


# ------------------------------------------------------------------------------------------ orb_hull (paper)

def orb_detector(settings: ProductSettings) -> cv2.ORB:
    """The authors' detector: ORB with ``settings.orb_features`` (1000) keypoints, ranked by the FAST score."""
    return cv2.ORB_create(nfeatures=settings.orb_features, scoreType=cv2.ORB_FAST_SCORE)


def orb_norm(settings: ProductSettings) -> int:
    """The matcher's distance: their cv2.BFMatcher() default L2, or Hamming (right for binary descriptors)."""
    return cv2.NORM_HAMMING if settings.norm == "hamming" else cv2.NORM_L2


def orb_input(image_rgb: np.ndarray, settings: ProductSettings) -> np.ndarray:
    """(h, w, 3) RGB or (h, w) gray → (orb_size, orb_size) uint8 gray, squashed (aspect not kept) with
    OpenCV's default bilinear resize, as the authors' code did to both the listing and every frame."""
    size = settings.orb_size
    return cv2.resize(_gray(image_rgb), (size, size))


def _orb_listing(image_rgb: np.ndarray, settings: ProductSettings, name: str) -> ListingFeatures:
    image = orb_input(image_rgb, settings)
    keypoints, descriptors = orb_detector(settings).detectAndCompute(image, None)
    n = 0 if descriptors is None else len(keypoints)
    if n < 3:  # no hull can be drawn from fewer points; the authors set no other minimum
        raise ProductImageError("product_no_features",
                                f"{name} has {n} orb_hull keypoints; at least 3 are needed to match it (is it "
                                "blank, tiny or a flat colour?)")
    coords = np.array([kp.pt for kp in keypoints], dtype=np.float32).reshape(-1, 2)
    return ListingFeatures(keypoints=coords, descriptors=descriptors, width=image.shape[1], height=image.shape[0],
                           method="orb_hull")


def _hull_match(frame_rgb: np.ndarray, listing: ListingFeatures, settings: ProductSettings) -> FrameMatch:
    """The authors' product region in one frame: the convex hull (boundary included) of the matched frame
    keypoints rounded to whole pixels of the squashed frame. ``inliers`` = distinct matched pixels; the
    polygon is in orb_size×orb_size coordinates (``size``), shifted by half a pixel so that the grid's cell
    centres (i + 0.5) test exactly the pixels they tested."""
    image = orb_input(frame_rgb, settings)
    keypoints, descriptors = orb_detector(settings).detectAndCompute(image, None)
    pairs = _ratio_matches(listing, descriptors, settings.ratio, orb_norm(settings))
    size = (image.shape[1], image.shape[0])
    if not pairs:
        return FrameMatch(False, 0, 0, reason="no_matches", size=size)
    points = np.unique(np.rint([keypoints[j].pt for _, j in pairs]).astype(np.int32), axis=0)
    if len(points) < 3:
        return FrameMatch(False, len(points), len(pairs), reason="too_few_matches", size=size)
    hull = cv2.convexHull(points.reshape(-1, 1, 2)).reshape(-1, 2)
    if len(hull) < 3 or cv2.contourArea(hull) <= 0:  # all on one line: no hull (their Delaunay fails)
        return FrameMatch(False, len(points), len(pairs), reason="degenerate_hull", size=size)
    return FrameMatch(True, len(points), len(pairs), polygon=hull.astype(np.float32) + 0.5, size=size)


def drop_unmatched_seconds(pmap: ProductMap) -> tuple[ProductMap, np.ndarray]:
    """The authors' time axis: only the seconds where the product was found, in order → (the K-second
    :class:`ProductMap`, (K,) int32 video second each of its masks came from). Their PE code then paired
    mask k with engagement second k, truncating both to K: masks drift earlier by the dropped seconds."""
    kept = np.flatnonzero(pmap.found).astype(np.int32)
    return ProductMap(masks=pmap.masks[kept], found=pmap.found[kept], inliers=pmap.inliers[kept],
                      matches=pmap.matches[kept], quads=[pmap.quads[i] for i in kept],
                      area_share=pmap.area_share[kept], reasons=[pmap.reasons[i] for i in kept],
                      matched_view=[pmap.matched_view[i] for i in kept]), kept
