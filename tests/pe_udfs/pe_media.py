"""Media for the per-video tests: tiny real videos written with PyAV (H.264 via libx264), products pasted
into real photos by a known homography."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

LEVEL_STEP = 4  # frame i is filled with grey level LEVEL_BASE + LEVEL_STEP·i (≤ 60 frames), so decoded frames name their index
LEVEL_BASE = 10


def frame_level(i: int) -> int:
    return LEVEL_BASE + LEVEL_STEP * i


def index_of(rgb: np.ndarray) -> int:
    """Which written frame a decoded frame is (from its mean grey level, robust to compression)."""
    return int(round((float(rgb[rgb.shape[0] // 3:, rgb.shape[1] // 3:].mean()) - LEVEL_BASE) / LEVEL_STEP))


def write_video(path: Path, n_frames: int, *, fps: int = 10, width: int = 64, height: int = 48,
                times: Sequence[float] | None = None, rotation: int | None = None, audio: bool = False,
                codec: str = "libx264", pix_fmt: str = "yuv420p", gop: int | None = None,
                faststart: bool = False, marker: bool = False) -> Path:
    """Write ``n_frames`` flat grey frames (frame i at level ``frame_level(i)``) as an MP4.

    times: presentation times in seconds (variable frame rate); default i/fps. rotation: display-matrix
    rotation (degrees counterclockwise). marker: a white block in the top-left quarter (for rotation)."""
    import av

    options = {"movflags": "+faststart"} if faststart else {}
    container = av.open(str(path), "w", options=options)
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    tb = Fraction(1, 1000) if times is not None else Fraction(1, fps)
    stream.time_base = tb
    stream.codec_context.time_base = tb  # else the encoder rounds VFR times to 1/fps
    if gop:
        stream.codec_context.gop_size = gop
        stream.codec_context.options = {"keyint_min": str(gop), "sc_threshold": "0"} if codec == "libx264" else {}
    if rotation is not None:
        stream.set_display_rotation(rotation)
    astream = container.add_stream("aac", rate=16000) if audio else None
    for i in range(n_frames):
        assert frame_level(i) <= 255, "too many frames for the grey-level index code"
        img = np.full((height, width, 3), frame_level(i), np.uint8)
        if marker:
            img[: height // 4, : width // 4] = 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = int(round(times[i] / tb)) if times is not None else i
        frame.time_base = tb
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    if astream is not None:
        seconds = (times[-1] if times is not None else n_frames / fps) + 0.5
        _write_tone(container, astream, seconds)
    container.close()
    return path


def _write_tone(container, astream, seconds: float) -> None:
    import av

    rate, chunk = 16000, 1024
    t = 0
    total = int(seconds * rate)
    while t < total:
        samples = (0.2 * np.sin(2 * np.pi * 440 * (np.arange(chunk) + t) / rate)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, t
        for packet in astream.encode(frame):
            container.mux(packet)
        t += chunk
    for packet in astream.encode():
        container.mux(packet)


def paste(product: np.ndarray, scene: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Warp ``product`` (h, w, 3) so that its outline lands on ``quad`` (4×2: TL, TR, BR, BL) in ``scene``."""
    h, w = product.shape[:2]
    H = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), np.float32(quad))
    size = (scene.shape[1], scene.shape[0])
    warped = cv2.warpPerspective(product, H, size, flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(np.full((h, w), 255, np.uint8), H, size) > 127
    return np.where(inside[..., None], warped, scene)


def write_frames(path: Path, frames: Sequence[np.ndarray], *, fps: int = 2, crf: int = 18) -> Path:
    """Write RGB frames (all the same even size) as an H.264 MP4."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": str(crf)})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
