"""Render a :class:`~jobs.synth.storyboard.VideoPlan` into an MP4 and record what is on screen each second.

Layers per frame, composited straight in the encoder's I420 planes (:mod:`jobs.synth.yuv`; every source is
converted once per asset, shot or pyramid level, so a frame costs no colour conversion), OpenCV vector ops on
small regions: background (clip frame or panned photo) | the person (full frame, or an oval window) | the
product | captions | scene lighting (Y gain and a U/V colour cast). The product is the seller's listing
photo warped by a homography onto a 3-D-rotated rectangle (perspective), drawn through its silhouette, with
its own brightness; it may sit behind the person's window or under a caption (partial occlusion).

At every sampled frame (t = 0, 1, 2 ... s, i.e. frame ``s * fps``) the renderer records a
:class:`SecondState`: the product's quadrilateral (the warped listing image's corners, frame pixels), how
much of it is visible, the face box, a 56x56 grey thumbnail (for motion), and whether a cut just happened.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from jobs.synth.footage import background_asset, person_asset
from jobs.synth.storyboard import Caption, ProductTrack, Shot, VideoPlan
from jobs.synth.writer import Mp4Writer
from jobs.synth.yuv import I420Frame, Layer, Planes, blend_layer, rgb_to_yuv444

GRID = 56  # side of the grey thumbnail kept per second (the 224x224 squashed frame / 4)


@dataclass
class SecondState:
    """What the frame shown at t = ``second`` contains. Pixel coordinates are of the full frame."""

    second: int
    quad: np.ndarray | None  # (4, 2) float64 x, y of the listing corners TL, TR, BR, BL; None: not drawn
    visible_share: float  # share of the product's pixels in frame and not occluded (0 when not drawn)
    product_speed: float  # product centre speed, frame widths per second
    face: tuple[float, float, float, float] | None  # x, y, w, h of the face on screen
    cut: bool  # a new shot started in (t - 1 s, t] (or the video starts)
    thumb: np.ndarray  # (GRID, GRID) uint8 grey, the squashed frame
    view: str | None = None  # which listing photo is drawn ('front' | 'side'); None: not drawn


@dataclass
class RenderedVideo:
    video_id: str
    path: str
    n_frames: int
    seconds: list[SecondState]
    encode_cpu_s: float = 0.0  # CPU seconds of H.264/MP4 writing (the rest of the render is compositing)


# ---------------------------------------------------------------------------------------------- geometry
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


def _smoothstep_poses(keys: np.ndarray, frames) -> np.ndarray:
    """Poses (N, 6) at ``frames`` (N,) from keyframes (K, 7), smoothstep-eased between keys, held outside."""
    t = keys[:, 0]
    f = np.clip(np.asarray(frames, np.float64), t[0], t[-1])
    i = np.clip(np.searchsorted(t, f, side="right") - 1, 0, max(0, len(t) - 2))
    j = np.minimum(i + 1, len(t) - 1)
    u = np.where(t[j] > t[i], (f - t[i]) / np.maximum(t[j] - t[i], 1e-9), 0.0)
    u = (u * u * (3 - 2 * u))[:, None]
    return keys[i, 1:] * (1 - u) + keys[j, 1:] * u


def _pingpong(i: int, n: int) -> int:
    if n <= 1:
        return 0
    period = 2 * (n - 1)
    i %= period
    return i if i < n else period - i


# ---------------------------------------------------------------------------------------------- layers
@lru_cache(maxsize=8)
def _background_layer(key: str, width: int, height: int) -> np.ndarray | Planes:
    """Clips: I420 frames (F, H * 3 / 2, W) cropped to the frame's aspect and resized. Photos: the photo's
    planes at 1.35 x the frame (room to pan)."""
    asset = background_asset(key)
    frames = asset.frames
    if asset.fps > 0:
        fh, fw = frames.shape[1:3]
        crop_w = min(fw, int(round(fh * width / height)))
        crop_h = min(fh, int(round(crop_w * height / width)))
        x0, y0 = (fw - crop_w) // 2, (fh - crop_h) // 2
        interp = cv2.INTER_AREA if crop_w > width else cv2.INTER_LINEAR
        out = np.empty((len(frames), height * 3 // 2, width), np.uint8)
        for f, src in zip(out, frames):
            resized = cv2.resize(src[y0:y0 + crop_h, x0:x0 + crop_w], (width, height), interpolation=interp)
            I420Frame(width, height, f).fill(Planes.from_rgb(resized))
        out.setflags(write=False)
        return out
    photo = frames[0]
    scale = 1.35 * max(width / photo.shape[1], height / photo.shape[0])
    size = (int(math.ceil(photo.shape[1] * scale)), int(math.ceil(photo.shape[0] * scale)))
    return Planes.from_rgb(cv2.resize(photo, size, interpolation=cv2.INTER_LINEAR)).read_only()


def _background(frame: I420Frame, shot: Shot, f: int, fps: int) -> None:
    """Fill ``frame`` with the shot's background at frame ``f``."""
    H, W = frame.shape
    layer = _background_layer(shot.background, W, H)
    asset = background_asset(shot.background)
    t = (f - shot.start) / fps
    if asset.fps > 0:
        i = int(shot.clip_offset * len(layer)) + int(t * asset.fps)
        np.copyto(frame.data, layer[_pingpong(i, len(layer))])
        return
    h, w = layer.shape
    u0, v0, du, dv = shot.pan
    u = 1 - abs(1 - (u0 + du * t) % 2)  # bounce in [0, 1]
    v = 1 - abs(1 - (v0 + dv * t) % 2)
    frame.fill(layer.crop(int(round(u * (w - W))), int(round(v * (h - H))), W, H))


@lru_cache(maxsize=4)
def _person_yuv444(key: str) -> np.ndarray:
    """The person's footage (F, h, w, 3) as full-resolution YUV (converted once per process)."""
    out = np.stack([rgb_to_yuv444(f) for f in person_asset(key).frames])
    out.setflags(write=False)
    return out


@lru_cache(maxsize=16)
def _scaled_footage(key: str, index: int, scale: float) -> Planes:
    """Frame ``index`` of person ``key`` resized by ``scale`` (cached: a talk shot resizes once, then crops)."""
    img = _person_yuv444(key)[index]
    size = (int(math.ceil(img.shape[1] * scale)), int(math.ceil(img.shape[0] * scale)))
    return Planes.from_yuv444(cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)).read_only()


def _talk_frame(frame: I420Frame, shot: Shot, f: int, fps: int) -> tuple[float, float, float, float]:
    """Fill ``frame`` with the person's footage at frame ``f``; return the face box on screen.

    The footage is resized once per shot (zoom) and cropped per frame: face centred high, a slow drift and
    a hand-held sway (integer-pixel crops, so a frame costs a copy)."""
    height, width = frame.shape
    person = person_asset(shot.person)
    i = _person_frame_index(shot, f, fps, person)
    ih, iw = person.frames.shape[1:3]
    scale = round(max(width / iw, height / ih) * shot.zoom * 1.02, 3)
    img = _scaled_footage(shot.person, i, scale)
    fx, fy, fw, fh = (float(v) * scale for v in person.faces[i])
    u = (f - shot.start) / max(1, shot.end - shot.start - 1)
    t = (f - shot.start) / fps
    ax, ay, period = shot.sway
    cx = fx + fw / 2 - (0.5 + shot.drift[0] * u + ax * math.sin(2 * math.pi * t / period)) * width
    cy = fy + fh / 2 - (0.36 + shot.drift[1] * u + ay * math.sin(2 * math.pi * t / (0.8 * period))) * height
    x0 = int(round(min(max(cx, 0), img.shape[1] - width)))
    y0 = int(round(min(max(cy, 0), img.shape[0] - height)))
    frame.fill(img.crop(x0, y0, width, height))
    return (fx - x0, fy - y0, fw, fh)


def _person_frame_index(shot: Shot, f: int, fps: int, person) -> int:
    if person.fps <= 0:
        return 0
    n = len(person.frames)
    return _pingpong(int(shot.clip_offset * n) + int((f - shot.start) / fps * person.fps), n)


class _Window:
    """The person's oval window for a greenscreen shot: source crop, size and soft mask (cached per shot)."""

    def __init__(self, shot: Shot, width: int, height: int):
        self.person = person_asset(shot.person)
        ih, iw = self.person.frames.shape[1:3]
        fx, fy, fw, fh = self.person.faces[0]
        cx = fx + fw / 2
        # head and shoulders around the first frame's face, clamped to the footage
        x0, x1 = max(0, int(cx - 1.5 * fw)), min(iw, int(cx + 1.5 * fw))
        y0, y1 = max(0, int(fy - 0.9 * fh)), min(ih, int(fy + 2.6 * fh))
        if self.person.fps > 0:  # a (small) clip: a portrait strip around the mean face, full height
            cx = float(self.person.faces[:, 0].mean() + self.person.faces[:, 2].mean() / 2)
            half = min(iw, int(0.8 * ih)) // 2
            x0 = int(min(max(cx - half, 0), iw - 2 * half))
            x1, y0, y1 = x0 + 2 * half, 0, ih
        self.crop = (x0, y0, x1, y1)
        wh = max(16, int(shot.window[2] * height))
        ww = max(16, int(wh * (x1 - x0) / (y1 - y0)))
        if ww > 0.8 * width:  # keep the window narrower than the frame
            wh, ww = max(16, int(wh * 0.8 * width / ww)), int(0.8 * width)
        ww, wh = ww // 2 * 2, wh // 2 * 2  # whole chroma samples
        self.size = (ww, wh)
        self.scale = (ww / (x1 - x0), wh / (y1 - y0))
        mask = np.zeros((wh, ww), np.uint8)
        cv2.ellipse(mask, (ww // 2, wh // 2), (int(ww * 0.47), int(wh * 0.47)), 0, 0, 360, 255, -1, cv2.LINE_AA)
        self.alpha = cv2.GaussianBlur(mask, (0, 0), max(1.0, ww / 60))
        self.alpha_half = cv2.resize(self.alpha, (ww // 2, wh // 2), interpolation=cv2.INTER_AREA)
        self.centre = (shot.window[0] * width, shot.window[1] * height)
        self._static = None
        if self.person.fps <= 0:
            self._static = self._layer(0)

    def _layer(self, i: int) -> Layer:
        x0, y0, x1, y1 = self.crop
        img = cv2.resize(_person_yuv444(self.person.key)[i][y0:y1, x0:x1], self.size, interpolation=cv2.INTER_AREA)
        return Layer.premultiply(Planes.from_yuv444(img), self.alpha, self.alpha_half)

    def draw(self, frame: Planes, i: int, t: float, occlusion: np.ndarray | None) -> tuple[float, float, float, float]:
        """Blend the window into ``frame``; return the face box on screen."""
        ww, wh = self.size
        bob = 4.0 * math.sin(2 * math.pi * t / 2.3)
        left = int(round(self.centre[0] - ww / 2))
        top = int(round(self.centre[1] - wh / 2 + bob))
        blend_layer(frame, self._static if self._static is not None else self._layer(i), left, top, occlusion)
        fx, fy, fw, fh = self.person.faces[i]
        x0, y0 = self.crop[:2]
        sx, sy = self.scale
        return (left + (fx - x0) * sx, top + (fy - y0) * sy, fw * sx, fh * sy)


class _Product:
    """The listing photo as a small mip pyramid of premultiplied full-resolution YUVA (Y, U, V x silhouette,
    silhouette), warped per frame onto its quadrilateral and blended in I420."""

    def __init__(self, listing: np.ndarray, alpha: np.ndarray):
        self.h, self.w = alpha.shape
        self.aspect = self.h / self.w
        self.fill = float(alpha.mean()) / 255.0  # silhouette share of the listing rectangle
        yuv = rgb_to_yuv444(listing)
        premult = cv2.multiply(yuv, cv2.cvtColor(alpha, cv2.COLOR_GRAY2RGB), scale=1 / 255)
        yuva = np.dstack([premult, alpha])
        self.levels = [yuva]
        while self.levels[-1].shape[1] >= 120:
            self.levels.append(cv2.pyrDown(self.levels[-1]))
        # the silhouette's bounding box (listing fractions, 1 px margin): pixels outside it stay transparent
        ys, xs = np.nonzero(alpha)
        if len(xs):
            self.object_box = np.array([[max(0, xs.min() - 1) / self.w, max(0, ys.min() - 1) / self.h],
                                        [min(self.w, xs.max() + 2) / self.w, min(self.h, ys.max() + 2) / self.h]])
        else:
            self.object_box = np.array([[0.0, 0.0], [1.0, 1.0]])

    def draw(self, frame: Planes, quad: np.ndarray, gain: float) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """Warp onto ``quad`` ((4, 2) frame pixels, TL TR BR BL) with brightness ``gain`` and blend into
        ``frame``; return (bbox x0, y0, x1, y1, the warped silhouette (y1 - y0, x1 - x0) uint8) or None if
        nothing lands in the frame."""
        H, W = frame.shape
        unit = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
        to_frame = cv2.getPerspectiveTransform(unit, quad.astype(np.float32))  # listing fractions → frame
        (bx0, by0), (bx1, by1) = self.object_box
        corners = np.array([[[bx0, by0], [bx1, by0], [bx1, by1], [bx0, by1]]], np.float64)
        drawn = cv2.perspectiveTransform(corners, to_frame)[0]
        x0, y0 = np.floor(drawn.min(axis=0)).astype(int)
        x1, y1 = np.ceil(drawn.max(axis=0)).astype(int) + 1
        # whole chroma samples: even corners
        x0, y0 = max(0, x0) // 2 * 2, max(0, y0) // 2 * 2
        x1, y1 = min(W, x1 + (x1 & 1)), min(H, y1 + (y1 & 1))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        longest = max(math.hypot(*(quad[1] - quad[0])), math.hypot(*(quad[2] - quad[1])))
        yuva = self.levels[0]
        for level in self.levels[1:]:  # the smallest level still larger than the drawn size (no aliasing)
            if level.shape[1] >= longest * 1.2:
                yuva = level
        lh, lw = yuva.shape[:2]
        m = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64) @ to_frame @ np.diag([1 / lw, 1 / lh, 1.0])
        warped = cv2.warpPerspective(yuva, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        y, a = cv2.extractChannel(warped, 0), cv2.extractChannel(warped, 3)
        half = cv2.resize(warped, ((x1 - x0) // 2, (y1 - y0) // 2), interpolation=cv2.INTER_AREA)
        u, v, a_half = (cv2.extractChannel(half, c) for c in (1, 2, 3))
        if gain != 1.0:
            y = cv2.convertScaleAbs(y, alpha=gain)
        blend_layer(frame, Layer(Planes(y, u, v), a, a_half), x0, y0)
        return (x0, y0, x1, y1), a


@lru_cache(maxsize=64)
def _caption_layer(text: str, w: int, h: int, opacity: float) -> Layer:
    box = np.zeros((h, w, 3), np.uint8)
    box[:] = (20, 20, 24)
    scale = 1.0
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, 1)
    scale = min((w - 12) / tw, (h * 0.7) / (th + base))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, 1)
    cv2.putText(box, text, ((w - tw) // 2, (h + th) // 2), cv2.FONT_HERSHEY_DUPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    mask = np.zeros((h, w), np.uint8)
    r = max(2, min(w, h) // 4)
    cv2.rectangle(mask, (r, 0), (w - r, h - 1), 255, -1)
    cv2.rectangle(mask, (0, r), (w - 1, h - r), 255, -1)
    for cx, cy in ((r, r), (w - r - 1, r), (r, h - r - 1), (w - r - 1, h - r - 1)):
        cv2.circle(mask, (cx, cy), r, 255, -1, cv2.LINE_AA)
    alpha = (mask.astype(np.float32) * opacity).round().astype(np.uint8)
    return Layer.from_rgb(box, alpha)


def _draw_caption(frame: Planes, cap: Caption, occlusion: np.ndarray | None) -> None:
    H, W = frame.shape
    x, y, w, h = cap.box
    pw, ph = max(8, int(round(w * W / 2)) * 2), max(8, int(round(h * H / 2)) * 2)
    blend_layer(frame, _caption_layer(cap.text, pw, ph, cap.opacity), int(round(x * W)), int(round(y * H)), occlusion)


def _relight(frame: Planes, gain: float, red: float, blue: float) -> None:
    """Scene lighting in place: brightness ``gain`` (Y scaled) and a colour cast (V shifted towards red by
    ``red`` - 1, U towards blue by ``blue`` - 1). ~0.05 ms at 360x640."""
    if gain != 1.0:
        cv2.convertScaleAbs(frame.y, dst=frame.y, alpha=gain)
    if blue != 1.0:
        cv2.add(frame.u, int(round((blue - 1) * 90)), dst=frame.u)
    if red != 1.0:
        cv2.add(frame.v, int(round((red - 1) * 90)), dst=frame.v)


# ---------------------------------------------------------------------------------------------- render
def _draw_track(product: _Product, frame: Planes, track: ProductTrack, f: int, quads: np.ndarray):
    """Draw the product at frame ``f`` (``quads``: the track's precomputed (n, 4, 2) corners); return
    (quad, (bbox, silhouette) or None)."""
    quad = quads[f - track.start]
    u = (f - track.start) / max(1, track.end - track.start - 1)
    return quad, product.draw(frame, quad, track.light[0] + (track.light[1] - track.light[0]) * u)


def render_video(plan: VideoPlan, listing: np.ndarray, alpha: np.ndarray, path: str | os.PathLike | None, *,
                 with_product: bool = True, frame_hook=None,
                 side: tuple[np.ndarray, np.ndarray] | None = None) -> RenderedVideo:
    """Render ``plan`` with the product (``listing`` (h, w, 3) RGB, ``alpha`` (h, w)) to an MP4 at ``path``.
    ``side`` (listing, alpha) is the side panel the plan's 'side' tracks draw (the turning scenario).

    ``path=None`` renders without writing a file (and, without a ``frame_hook``, only the sampled frames the
    truth needs); ``with_product=False`` renders the same video without the product (tests compare the
    two); ``frame_hook(f, yuv)`` sees every finished frame as I420 ((H * 3 / 2, W) uint8, as encoded).
    """
    cv2.setNumThreads(1)
    W, H, fps = plan.width, plan.height, plan.fps
    products = {"front": _Product(listing, alpha)}
    if side is not None:
        products["side"] = _Product(*side)
    missing = {tr.view for tr in plan.tracks} - set(products)
    if missing:
        raise ValueError(f"the plan draws the product's {sorted(missing)} view but no such listing was given")
    windows: dict[int, _Window] = {}
    seconds: list[SecondState] = []
    writer = Mp4Writer(path, width=W, height=H, fps=fps, n_frames=plan.n_frames, audio=plan.audio) if path else None
    shot_i = 0
    all_frames = np.arange(plan.n_frames, dtype=np.float64)
    lighting = np.stack([np.interp(all_frames, plan.lighting[:, 0], plan.lighting[:, j]) for j in (1, 2, 3)], axis=1).tolist()
    track_quads = {id(tr): product_quads(_smoothstep_poses(tr.keys, np.arange(tr.start, tr.end)),
                                         products[tr.view].aspect, W, H) for tr in plan.tracks}
    frame = I420Frame(W, H)  # one buffer, refilled every frame (the encoder copies what it is given)
    try:
        only_sampled = writer is None and frame_hook is None
        for f in range(0, plan.n_frames, fps if only_sampled else 1):
            while plan.shots[shot_i].end <= f:
                shot_i += 1
            shot = plan.shots[shot_i]
            sampled = f % fps == 0
            occlusion = np.zeros((H, W), np.uint8) if sampled else None
            t = (f - shot.start) / fps

            face = None
            if shot.layout == "talk":
                face = _talk_frame(frame, shot, f, fps)
            else:
                _background(frame, shot, f, fps)

            tracks = [tr for tr in plan.tracks if tr.start <= f < tr.end] if with_product else []
            track = tracks[0] if tracks else None  # tracks never overlap in time
            product = products[track.view] if track is not None else None
            window_shot = shot.layout == "greenscreen"
            behind = track is not None and track.behind_person and window_shot
            drawn = quad = None
            if track is not None and behind:
                quad, drawn = _draw_track(product, frame, track, f, track_quads[id(track)])
            if window_shot:
                win = windows.get(shot_i)
                if win is None:
                    win = windows[shot_i] = _Window(shot, W, H)
                i = _person_frame_index(shot, f, fps, win.person)
                face = win.draw(frame, i, t, occlusion if (sampled and drawn is not None) else None)
            if track is not None and not behind:
                quad, drawn = _draw_track(product, frame, track, f, track_quads[id(track)])
            for cap in plan.captions:
                if cap.start <= f < cap.end:
                    _draw_caption(frame, cap, occlusion if (sampled and drawn is not None) else None)

            _relight(frame, *lighting[f])
            if writer is not None:
                writer.write_i420(frame.data)
            if frame_hook is not None:
                frame_hook(f, frame.data)
            if sampled:
                s = f // fps
                cut = any(f - fps < sh.start <= f for sh in plan.shots)
                state = SecondState(s, None, 0.0, 0.0, face, cut,
                                    cv2.resize(frame.y, (GRID, GRID), interpolation=cv2.INTER_AREA))
                if drawn is not None:
                    (x0, y0, x1, y1), a = drawn
                    full = product.fill * polygon_area(quad)
                    seen = float(np.sum(a.astype(np.float32) * (255 - occlusion[y0:y1, x0:x1]).astype(np.float32))) / (255.0 * 255.0)
                    state.quad, state.view = quad, track.view
                    state.visible_share = float(min(1.0, seen / max(full, 1e-9)))
                    prev = product_quads(_smoothstep_poses(track.keys, [f - fps / 5]), product.aspect, W, H)[0].mean(axis=0)
                    state.product_speed = float(np.linalg.norm(quad.mean(axis=0) - prev) / W * 5)
                seconds.append(state)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    return RenderedVideo(plan.video_id, str(path) if path else "", plan.n_frames, seconds,
                         writer.cpu_s if writer is not None else 0.0)
