"""The sample videos' geometry: where the product's corners land in the frame (a rectangle posed in 3-D and
projected by a pinhole camera), polygon area and clipping to the frame, keyframed poses eased between keys, and
ping-pong playback of a clip. numpy only; coordinates are frame pixels unless a docstring says otherwise."""
from __future__ import annotations

import numpy as np


def product_quad(pose: np.ndarray, aspect: float, width: int, height: int) -> np.ndarray:
    """Corners (4, 2) TL, TR, BR, BL in frame pixels of the product rectangle posed by ``pose``.

    ``pose`` = (cx, cy, w, yaw, pitch, roll): centre (frame fractions), width (fraction of the frame width),
    angles in degrees. The rectangle (aspect = height/width of the listing photo) is rotated in 3-D and
    projected by a pinhole camera whose focal length is twice the frame height.
    """
    return product_quads(np.asarray(pose, np.float64)[None], aspect, width, height)[0]



def product_quads(poses: np.ndarray, aspect: float, width: int, height: int) -> np.ndarray:
    """:func:`product_quad` for many poses at once: (N, 6) → (N, 4, 2)."""
    cx, cy, w, yaw, pitch, roll = (poses[:, j] for j in range(6))
    pw = w * width
    ph = pw * aspect
    ux = np.array([-0.5, 0.5, 0.5, -0.5])[None] * pw[:, None]  # (N, 4) object x
    uy = np.array([-0.5, -0.5, 0.5, 0.5])[None] * ph[:, None]  # object y (z = 0)
    y, p, r = np.radians(yaw)[:, None], np.radians(pitch)[:, None], np.radians(roll)[:, None]
    # R = Rz(roll) @ Rx(pitch) @ Ry(yaw) applied to (ux, uy, 0)
    x1, z1 = ux * np.cos(y), -ux * np.sin(y)  # Ry
    y2, z2 = uy * np.cos(p) - z1 * np.sin(p), uy * np.sin(p) + z1 * np.cos(p)  # Rx
    x3, y3 = x1 * np.cos(r) - y2 * np.sin(r), x1 * np.sin(r) + y2 * np.cos(r)  # Rz
    focal = 2.0 * height
    z = focal + z2
    return np.stack([(cx * width)[:, None] + focal * x3 / z, (cy * height)[:, None] + focal * y3 / z], axis=2)



def polygon_area(quad: np.ndarray) -> float:
    x, y = quad[:, 0], quad[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))



def clip_polygon(poly: np.ndarray, width: float, height: float) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon (N, 2) to the rectangle [0, width] x [0, height]."""
    def clip(points, inside, cross):
        out = []
        for i in range(len(points)):
            cur, prev = points[i], points[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(cross(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cross(prev, cur))
        return out

    def at_x(x0):
        return lambda a, b: (x0, a[1] + (b[1] - a[1]) * (x0 - a[0]) / (b[0] - a[0]))

    def at_y(y0):
        return lambda a, b: (a[0] + (b[0] - a[0]) * (y0 - a[1]) / (b[1] - a[1]), y0)

    pts = [tuple(p) for p in poly]
    for inside, cross in ((lambda p: p[0] >= 0, at_x(0.0)), (lambda p: p[0] <= width, at_x(float(width))),
                          (lambda p: p[1] >= 0, at_y(0.0)), (lambda p: p[1] <= height, at_y(float(height)))):
        if not pts:
            break
        pts = clip(pts, inside, cross)
    return np.array(pts, np.float64).reshape(-1, 2)



def smoothstep_poses(keys: np.ndarray, frames) -> np.ndarray:
    """Poses (N, 6) at ``frames`` (N,) from keyframes (K, 7), smoothstep-eased between keys, held outside."""
    t = keys[:, 0]
    f = np.clip(np.asarray(frames, np.float64), t[0], t[-1])
    i = np.clip(np.searchsorted(t, f, side="right") - 1, 0, max(0, len(t) - 2))
    j = np.minimum(i + 1, len(t) - 1)
    u = np.where(t[j] > t[i], (f - t[i]) / np.maximum(t[j] - t[i], 1e-9), 0.0)
    u = (u * u * (3 - 2 * u))[:, None]
    return keys[i, 1:] * (1 - u) + keys[j, 1:] * u



def pingpong(i: int, n: int) -> int:
    if n <= 1:
        return 0
    period = 2 * (n - 1)
    i %= period
    return i if i < n else period - i
