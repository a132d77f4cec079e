"""The layers of a sample video's frame, each drawn straight into the encoder's I420 planes (:mod:`jobs.synth.yuv`):
background (clip frame or panned photo), the person (full frame, or an oval greenscreen window), the product
(the listing photo warped onto its quadrilateral through its silhouette), captions and scene lighting.

Every source is converted once per asset, shot or pyramid level (cached), so a frame costs no colour conversion;
the render loop (:mod:`jobs.synth.render`) stacks them per frame.
"""
from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from jobs.synth.footage import background_asset, person_asset
from jobs.synth.geometry import pingpong
from jobs.synth.storyboard import Caption, Shot
from jobs.synth.yuv import I420Frame, Layer, Planes, blend_layer, rgb_to_yuv444


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



def draw_background(frame: I420Frame, shot: Shot, f: int, fps: int) -> None:
    """Fill ``frame`` with the shot's background at frame ``f``."""
    H, W = frame.shape
    layer = _background_layer(shot.background, W, H)
    asset = background_asset(shot.background)
    t = (f - shot.start) / fps
    if isinstance(layer, np.ndarray):  # a clip (asset.fps > 0): its frames; a photo: its planes, panned
        i = int(shot.clip_offset * len(layer)) + int(t * asset.fps)
        np.copyto(frame.data, layer[pingpong(i, len(layer))])
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



def talk_frame(frame: I420Frame, shot: Shot, f: int, fps: int) -> tuple[float, float, float, float]:
    """Fill ``frame`` with the person's footage at frame ``f``; return the face box on screen.

    The footage is resized once per shot (zoom) and cropped per frame: face centred high, a slow drift and
    a hand-held sway (integer-pixel crops, so a frame costs a copy)."""
    height, width = frame.shape
    person = person_asset(shot.person)
    i = person_frame_index(shot, f, fps, person)
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



def person_frame_index(shot: Shot, f: int, fps: int, person) -> int:
    if person.fps <= 0:
        return 0
    n = len(person.frames)
    return pingpong(int(shot.clip_offset * n) + int((f - shot.start) / fps * person.fps), n)



class PersonWindow:
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



class ProductLayer:
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



def draw_caption(frame: Planes, cap: Caption, occlusion: np.ndarray | None) -> None:
    H, W = frame.shape
    x, y, w, h = cap.box
    pw, ph = max(8, int(round(w * W / 2)) * 2), max(8, int(round(h * H / 2)) * 2)
    blend_layer(frame, _caption_layer(cap.text, pw, ph, cap.opacity), int(round(x * W)), int(round(y * H)), occlusion)



def relight(frame: Planes, gain: float, red: float, blue: float) -> None:
    """Scene lighting in place: brightness ``gain`` (Y scaled) and a colour cast (V shifted towards red by
    ``red`` - 1, U towards blue by ``blue`` - 1). ~0.05 ms at 360x640."""
    if gain != 1.0:
        cv2.convertScaleAbs(frame.y, dst=frame.y, alpha=gain)
    if blue != 1.0:
        cv2.add(frame.u, int(round((blue - 1) * 90)), dst=frame.u)
    if red != 1.0:
        cv2.add(frame.v, int(round((red - 1) * 90)), dst=frame.v)
