"""The seller's listing image: read and checked, its product silhouette, and its local features.

    path or URI (pe_udfs.uris policy) ─► header size check, strict decode (Pillow) ─► OpenCV decode
      ─► (h, w, 3) uint8 RGB, transparent pixels over white                       load_image, to_rgb
    RGB listing photo ─► background model of its border ─► (h, w) 0/255 product mask   listing_silhouette

:class:`ListingFeatures` holds the keypoints and descriptors of one listing image (computed once per product
by :func:`pe_udfs.product.listing_features`); :func:`ratio_matches` pairs them with a frame's (Lowe's ratio
test) and :class:`FrameMatch` is what one frame's match found. :class:`ProductMatcher` is the contract every
matching method (``product.method``) fulfils; the registry of them is :data:`pe_udfs.product.MATCHERS`.
"""
from __future__ import annotations

import io
import os
import re
import sys
import tempfile
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Sequence

import cv2
import numpy as np
from PIL import Image

from pe_udfs.errors import ProductImageError
from pe_udfs.settings import ProductSettings
from pe_udfs.uris import open_binary

__all__ = ["ListingFeatures", "FrameMatch", "ProductMatcher", "load_image", "to_rgb", "to_gray", "listing_silhouette",
           "ratio_matches"]


@dataclass
class ListingFeatures:
    """Local features of one listing image, computed once and reused for every frame and video.

    keypoints: (N, 2) float32 pixel coordinates (x, y) in the (possibly downscaled) listing image;
    descriptors: (N, 128) float32 for SIFT, (N, 32) uint8 for ORB; width/height: that image's size in
    pixels; method: the name of the :class:`ProductMatcher` that computed them; silhouette: (height, width) uint8 0/255 product pixels of that
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


# ------------------------------------------------------------------------------------------ the image

class ProductMatcher:
    """One way to find the listing image in a frame, chosen by ``product.method``.

    ``listing_features(image_rgb (h, w, 3) uint8, settings, name)`` → :class:`ListingFeatures` (once per
    product image; raises ProductImageError when it cannot be matched); ``frame_features(frame_rgb, settings)``
    → the frame's own features, computed once and shared by all of a product's views (None: nothing to share);
    ``match(frame_rgb, listing, settings, features)`` → :class:`FrameMatch` in that frame's pixels (or in
    ``FrameMatch.size``); ``drops_unmatched_seconds(settings)``: whether the product map keeps only the seconds
    where the product was found (the authors' time axis)."""

    name: ClassVar[str]

    def listing_features(self, image_rgb: np.ndarray, settings: ProductSettings, name: str) -> ListingFeatures:
        raise NotImplementedError

    def frame_features(self, frame_rgb: np.ndarray, settings: ProductSettings) -> Any | None:
        return None

    def match(self, frame_rgb: np.ndarray, listing: ListingFeatures, settings: ProductSettings,
              features: Any | None = None) -> FrameMatch:
        raise NotImplementedError

    def drops_unmatched_seconds(self, settings: ProductSettings) -> bool:
        return False


def load_image(uri: str, *, allowed_schemes: Sequence[str] | None = None,
               allowed_roots: Sequence[str] | None = None, max_pixels: int = 25_000_000) -> np.ndarray:
    """Read an image file (JPEG, PNG, WebP, ...) from a path or URI → (h, w, 3) uint8 RGB.

    Transparent pixels are composited over white (listing images are often cut-outs). The size in the file's
    header is checked before decoding, and a truncated or corrupt file is refused, not half-read: a decoder
    warning about damaged data (libjpeg's "Corrupt JPEG data", which it fills in with grey) or a decoded size
    other than the header's is 'product_image_corrupt'. Raises :class:`ProductImageError` with reason
    'not_found', 'scheme_not_allowed', 'file_host_not_allowed', 'outside_allowed_roots', 'fetch_failed',
    'too_large', 'product_image_unreadable' or 'product_image_corrupt'."""
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
    header = _check_image(data, uri, max_pixels)
    with _native_stderr() as messages:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    damage = [m for m in messages if _DAMAGE.search(m)]
    _echo([m for m in messages if m not in damage])
    if image is None or image.size == 0:
        raise ProductImageError("product_image_unreadable", f"{uri} is not a readable image file", uri=uri)
    decoded = (int(image.shape[1]), int(image.shape[0]))
    if damage or decoded != header:
        why = (f"the decoder reports '{damage[0].strip()}'" if damage
               else f"it decodes to {decoded[0]}x{decoded[1]} pixels")
        raise ProductImageError("product_image_corrupt", f"{uri} is damaged: its header says {header[0]}x{header[1]} "
                                f"pixels and {why}; what is missing would be filled in, not the product", uri=uri)
    return to_rgb(image)


#: Native decoder messages that report damaged data (libjpeg fills what is missing with grey and goes on;
#: libpng's colour-profile warnings and the like are not damage and are passed through).
_DAMAGE = re.compile(r"corrupt|premature end|truncat|invalid|bad huffman|crc error|libpng error", re.IGNORECASE)
_STDERR_LOCK = threading.Lock()


@contextmanager
def _native_stderr() -> Iterator[list[str]]:
    """Collect what native code (libjpeg, libpng under OpenCV) writes to file descriptor 2 meanwhile: their
    warnings go nowhere else. One capture at a time per process; without a usable fd 2, nothing is collected."""
    messages: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield messages
            return
        os.dup2(sink.fileno(), 2)
        try:
            yield messages
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            messages.extend(line for line in sink.read().decode("utf-8", "replace").splitlines() if line.strip())


def _echo(lines: list[str]) -> None:
    """Pass captured native messages that are not damage on to stderr (another thread's output included)."""
    if lines:
        try:
            sys.stderr.write("\n".join(lines) + "\n")
        except (OSError, ValueError):
            pass


def _check_image(data: bytes, uri: str, max_pixels: int) -> tuple[int, int]:
    """Refuse an image too large by its header (before any pixel is decoded), or whose data is truncated or
    corrupt (Pillow decodes it strictly; OpenCV would return the readable part and grey for the rest)."""
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
            return int(w), int(h)
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


def to_gray(image_rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 RGB → (h, w) uint8 gray; a gray image is returned as it is."""
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


# ------------------------------------------------------------------------------------------ matching

def ratio_matches(listing: ListingFeatures, frame_descriptors: np.ndarray, ratio: float, norm: int = cv2.NORM_L2
                   ) -> list[tuple[int, int]]:
    """(listing index, frame index) pairs passing Lowe's ratio test on 2-NN matches under ``norm``."""
    if frame_descriptors is None or len(frame_descriptors) < 2:
        return []
    matcher = cv2.BFMatcher(norm, crossCheck=False)
    knn = matcher.knnMatch(listing.descriptors, frame_descriptors, k=2)
    return [(m[0].queryIdx, m[0].trainIdx) for m in knn
            if len(m) == 2 and m[0].distance < ratio * m[1].distance]
