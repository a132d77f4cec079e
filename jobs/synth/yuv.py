"""Planar YUV 4:2:0 (I420) images for compositing straight into the encoder's pixel format.

Every layer of a sample video (backgrounds, the person, the product, captions) is converted to planes once
(per asset, shot or pyramid level) and the frame is composited in I420, so a frame costs no RGB → YUV
conversion and half the bytes of RGB per copy or blend. Colours use ITU-R BT.601 limited range, the
coefficients of OpenCV's ``COLOR_RGB2YUV_I420`` and of H.264 decoders' default (``COLOR_YUV2RGB_I420``
turns a frame back into RGB).

Chroma planes are at half resolution; a layer placed at luma pixel (x, y) puts its chroma at (x // 2,
y // 2), so layers at odd offsets carry chroma shifted by half a luma pixel — invisible, and the luma
(which the truth and every pixel test use) is exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: RGB (0-255) → Y'CbCr, BT.601 limited range: rows Y, U (Cb), V (Cr); last column the offset
RGB_TO_YUV = np.array([
    [0.256788, 0.504129, 0.097906, 16.0],
    [-0.148223, -0.290993, 0.439216, 128.0],
    [0.439216, -0.367788, -0.071427, 128.0],
], np.float32)


def rgb_to_yuv444(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (H, W, 3) uint8 Y, U, V at full resolution."""
    return cv2.transform(rgb, RGB_TO_YUV)


@dataclass
class Planes:
    """An I420 image as three planes: ``y`` (H, W), ``u`` and ``v`` (H / 2, W / 2), uint8, H and W even."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self.y.shape[:2]
        return h, w

    @classmethod
    def from_yuv444(cls, yuv: np.ndarray) -> "Planes":
        """Planes of a (H, W, 3) full-resolution YUV image (a trailing odd row/column is dropped)."""
        h, w = yuv.shape[0] // 2 * 2, yuv.shape[1] // 2 * 2
        yuv = np.ascontiguousarray(yuv[:h, :w])
        half = cv2.resize(yuv, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        # (extractChannel: OpenCV's resize of a channel slice and cv2.split are 10-30x slower here)
        return cls(cv2.extractChannel(yuv, 0), cv2.extractChannel(half, 1), cv2.extractChannel(half, 2))

    @classmethod
    def from_rgb(cls, rgb: np.ndarray) -> "Planes":
        return cls.from_yuv444(rgb_to_yuv444(rgb))

    def crop(self, x: int, y: int, w: int, h: int) -> "Planes":
        """Views of the (w, h) window at luma pixel (x, y) (chroma at (x // 2, y // 2)); w, h even."""
        cx, cy = x // 2, y // 2
        return Planes(self.y[y:y + h, x:x + w], self.u[cy:cy + h // 2, cx:cx + w // 2], self.v[cy:cy + h // 2, cx:cx + w // 2])

    def read_only(self) -> "Planes":
        for p in (self.y, self.u, self.v):
            p.setflags(write=False)
        return self


class I420Frame(Planes):
    """A frame in one contiguous I420 buffer ``data`` ((H * 3 / 2, W) uint8: Y, then U, then V), the layout
    the encoder takes; ``y``, ``u``, ``v`` are views into it."""

    def __init__(self, width: int, height: int, data: np.ndarray | None = None):
        if width % 2 or height % 2:
            raise ValueError(f"I420 needs an even width and height, got {width}x{height}")
        self.data = np.empty((height * 3 // 2, width), np.uint8) if data is None else data
        flat = self.data.reshape(-1)
        n = width * height
        super().__init__(self.data[:height], flat[n:n + n // 4].reshape(height // 2, width // 2),
                         flat[n + n // 4:].reshape(height // 2, width // 2))

    def fill(self, src: Planes) -> None:
        """Copy ``src`` (same size) into the frame."""
        np.copyto(self.y, src.y)
        np.copyto(self.u, src.u)
        np.copyto(self.v, src.v)

    def rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB (for tests and previews)."""
        return cv2.cvtColor(self.data, cv2.COLOR_YUV2RGB_I420)


@dataclass
class Layer:
    """A premultiplied overlay: colour planes already multiplied by the coverage, ``alpha`` (H, W) and
    ``alpha_half`` (H / 2, W / 2) the coverage (0-255) at luma and chroma resolution."""

    colour: Planes
    alpha: np.ndarray
    alpha_half: np.ndarray

    @classmethod
    def premultiply(cls, planes: Planes, alpha: np.ndarray, alpha_half: np.ndarray) -> "Layer":
        """Layer of ``planes`` with coverage ``alpha`` (H, W) and ``alpha_half`` (H / 2, W / 2)."""
        return cls(Planes(cv2.multiply(planes.y, alpha, scale=1 / 255), cv2.multiply(planes.u, alpha_half, scale=1 / 255),
                          cv2.multiply(planes.v, alpha_half, scale=1 / 255)), alpha, alpha_half)

    @classmethod
    def from_rgb(cls, rgb: np.ndarray, alpha: np.ndarray) -> "Layer":
        """Layer of an RGB image (H, W, 3) with coverage ``alpha`` (H, W) (trailing odd row/column dropped)."""
        planes = Planes.from_rgb(rgb)
        h, w = planes.shape
        alpha = np.ascontiguousarray(alpha[:h, :w])
        return cls.premultiply(planes, alpha, cv2.resize(alpha, (w // 2, h // 2), interpolation=cv2.INTER_AREA))


def _overlap(size: tuple[int, ...], shape: tuple[int, ...], left: int, top: int):
    """(destination slices, source slices) of a (h, w) source placed at (left, top) in a (H, W) destination;
    None when they do not overlap."""
    H, W = size[:2]
    h, w = shape
    x0, y0, x1, y1 = max(0, left), max(0, top), min(W, left + w), min(H, top + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return (slice(y0, y1), slice(x0, x1)), (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))


def blend_plane(dst: np.ndarray, premult: np.ndarray, alpha: np.ndarray, left: int, top: int) -> tuple | None:
    """dst = dst * (1 - alpha) + premult over the overlap of the (h, w) source placed at (left, top).
    Returns the (destination, source) slices, or None when nothing overlaps."""
    hit = _overlap(dst.shape, alpha.shape, left, top)
    if hit is None:
        return None
    d, s = hit
    roi = dst[d]
    cv2.add(cv2.multiply(roi, cv2.bitwise_not(alpha[s]), scale=1 / 255), premult[s], dst=roi)
    return hit


def blend_layer(frame: Planes, layer: Layer, left: int, top: int, occlusion: np.ndarray | None = None) -> None:
    """Composite ``layer`` with its top-left corner at luma pixel (left, top); where it lands, raise
    ``occlusion`` ((H, W) uint8, optional) to the layer's coverage."""
    hit = blend_plane(frame.y, layer.colour.y, layer.alpha, left, top)
    if hit is None:
        return
    blend_plane(frame.u, layer.colour.u, layer.alpha_half, left // 2, top // 2)
    blend_plane(frame.v, layer.colour.v, layer.alpha_half, left // 2, top // 2)
    if occlusion is not None:
        d, s = hit
        np.maximum(occlusion[d], layer.alpha[s], out=occlusion[d])
