"""Paper-faithful product region (``product.method='orb_hull'``): the authors' code, setting by setting.

    listing image, frame ─► grayscale, squashed to orb_size×orb_size (224) ─► ORB (1000 features, FAST score)
        ─► 2-NN match (norm: 'l2' theirs | 'hamming' the fix), ratio 0.75 ─► matched frame keypoints, rounded
        to whole pixels ─► mask = their convex hull, boundary included (no RANSAC, no minimum)
    fewer than 3 distinct points, or all on a line ─► no hull: the second is dropped (drop_unmatched_seconds,
        theirs; see :func:`pe_udfs.product.drop_unmatched_seconds`) or kept with an empty mask (the fix)

:class:`OrbHull` is this method behind the matcher contract (:class:`pe_udfs.listing.ProductMatcher`).
"""
from __future__ import annotations

import cv2
import numpy as np

from pe_udfs.errors import ProductImageError
from pe_udfs.listing import FrameMatch, ListingFeatures, ProductMatcher, ratio_matches, to_gray
from pe_udfs.settings import ProductSettings

__all__ = ["OrbHull", "orb_detector", "orb_norm", "orb_input", "orb_listing_features", "hull_match"]


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
    return cv2.resize(to_gray(image_rgb), (size, size))


def orb_listing_features(image_rgb: np.ndarray, settings: ProductSettings, name: str) -> ListingFeatures:
    """The authors' listing features: ORB on the squashed gray image (at least 3 keypoints, or
    :class:`ProductImageError` 'product_no_features')."""
    image = orb_input(image_rgb, settings)
    keypoints, descriptors = orb_detector(settings).detectAndCompute(image, None)
    n = 0 if descriptors is None else len(keypoints)
    if n < 3:  # no hull can be drawn from fewer points; the authors set no other minimum
        raise ProductImageError("product_no_features",
                                f"{name} has {n} orb_hull keypoints; at least 3 are needed to match it (is it "
                                "blank, tiny or a flat colour?)")
    coords = np.array([kp.pt for kp in keypoints], dtype=np.float32).reshape(-1, 2)
    return ListingFeatures(keypoints=coords, descriptors=descriptors, width=image.shape[1], height=image.shape[0],
                           method=OrbHull.name)


def hull_match(frame_rgb: np.ndarray, listing: ListingFeatures, settings: ProductSettings) -> FrameMatch:
    """The authors' product region in one frame: the convex hull (boundary included) of the matched frame
    keypoints rounded to whole pixels of the squashed frame. ``inliers`` = distinct matched pixels; the
    polygon is in orb_size×orb_size coordinates (``size``), shifted by half a pixel so that the grid's cell
    centres (i + 0.5) test exactly the pixels they tested."""
    image = orb_input(frame_rgb, settings)
    keypoints, descriptors = orb_detector(settings).detectAndCompute(image, None)
    pairs = ratio_matches(listing, descriptors, settings.ratio, orb_norm(settings))
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


class OrbHull(ProductMatcher):
    """The authors' ORB + convex hull (``product.method: orb_hull``), for replication."""

    name = "orb_hull"

    def listing_features(self, image_rgb: np.ndarray, settings: ProductSettings, name: str) -> ListingFeatures:
        return orb_listing_features(image_rgb, settings, name)

    def match(self, frame_rgb: np.ndarray, listing: ListingFeatures, settings: ProductSettings,
              features=None) -> FrameMatch:
        return hull_match(frame_rgb, listing, settings)  # ORB is detected per (frame, listing) pair: no sharing

    def drops_unmatched_seconds(self, settings: ProductSettings) -> bool:
        return settings.drop_unmatched_seconds
