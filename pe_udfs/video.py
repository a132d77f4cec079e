"""Open a video from a path or URI and sample it at a fixed rate (default 1 frame per second, first 60 s).

Paper-faithful: one frame per second from the first 60 seconds, each frame resized (squashed, not cropped)
to 224×224 RGB. Besides the model frames we return the same frames at native resolution (capped at
``clip.match_max_width`` pixels wide) for local-feature matching of the product image.

    uri ─► fetch (local / file:// / fsspec / pyarrow fs) ─► PyAV demux+decode (threaded) ─► frame shown at
    t = 0, 1/fps, 2/fps, ... (< min(duration, max_seconds)) ─► upright (display matrix) ─► RGB
        ├─► model_frames (S, size, size, 3) uint8   (cv2.INTER_AREA squash of the full frame)
        └─► match_frames S × (h, w, 3) uint8        (width ≤ match_max_width, aspect kept)

Only the sampled frames are converted to RGB; the others are decoded (they are needed as references) and
dropped. When the container has a keyframe index and keyframes are closer together than the sampling step,
the decoder seeks to the keyframe before each sampled time instead of decoding every frame in between.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from pe_udfs.errors import DecodeError, FetchError
from pe_udfs.settings import ClipSettings, DecodeSettings
from pe_udfs.uris import open_binary

if TYPE_CHECKING:
    import torch

__all__ = ["SampledVideo", "sample_video", "clip_tensor"]


@dataclass
class SampledVideo:
    """A video sampled at ``clip.fps``.

    model_frames: (S, size, size, 3) uint8 RGB, the full frame squashed to size×size (the paper's resize).
    match_frames: S arrays (h, w, 3) uint8 RGB at native resolution with w ≤ clip.match_max_width
        (empty list when not requested).
    timestamps: (S,) float64, presentation time in seconds (from the first frame) of each sampled frame.
    duration_s: seconds of decodable video (or of the container's stated duration when decoding stopped at
        max_seconds); native_fps: average frame rate; width/height: display size after rotation; rotation:
        degrees counterclockwise applied to make frames upright (0, 90, 180, 270).
    truncated: decoding ended early (corrupt or cut-off data) before the container's stated duration;
    warnings: why (kept with the scores); n_decoded: frames the decoder produced (seeking skips some).
    """

    model_frames: np.ndarray
    match_frames: list[np.ndarray]
    timestamps: np.ndarray
    duration_s: float
    native_fps: float
    width: int
    height: int
    rotation: int
    truncated: bool = False
    uri: str = ""
    warnings: list[str] = field(default_factory=list)
    n_decoded: int = 0

    @property
    def n_seconds(self) -> int:
        """S, the number of sampled frames."""
        return int(self.model_frames.shape[0])


def clip_tensor(frames: np.ndarray) -> torch.Tensor:
    """(S, H, W, 3) uint8 RGB → (S, 3, H, W) float32 in [0, 1] (contiguous, on CPU)."""
    import torch

    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (S, H, W, 3), got {tuple(frames.shape)}")
    t = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    return t.to(torch.float32).div_(255.0).contiguous()


# --------------------------------------------------------------------------------------------- decoding

def sample_video(uri: str, clip: ClipSettings, *, allowed_schemes: Sequence[str] | None = None,
                 allowed_roots: Sequence[str] | None = None, with_match_frames: bool = True,
                 decode: DecodeSettings | None = None) -> SampledVideo:
    """Decode ``uri`` and return the frames shown at t = 0, 1/fps, ... (< min(duration, max_seconds)).

    Frames are made upright from the display-matrix side data (or the legacy 'rotate' tag), and squashed
    to ``clip.size``×``clip.size`` with ``cv2.INTER_AREA`` as the paper does. Audio and other streams are
    ignored. Raises :class:`FetchError` (not_found, scheme_not_allowed, outside_allowed_roots, fetch_failed)
    or :class:`DecodeError` (empty_file, unreadable, format_not_allowed, no_video_stream, zero_frames,
    too_few_frames, truncated, too_long, too_large, too_small); ``decode`` is the integrity policy (default
    :class:`DecodeSettings`: a truncated video is kept and flagged)."""
    import av  # local imports (av, torch): `import pe_udfs.video` stays light for Spark drivers

    with open_binary(uri, allowed_schemes=allowed_schemes, allowed_roots=allowed_roots) as (source, size):
        if size == 0:
            raise DecodeError("empty_file", f"{uri} is an empty (zero-byte) file", uri=uri)
        try:
            container = av.open(source, mode="r", metadata_errors="ignore")
        except av.error.FileNotFoundError as e:
            raise FetchError("not_found", f"{uri} does not exist", uri=uri) from e
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise DecodeError("unreadable", f"{uri} is not a readable video file ({_ffmpeg_msg(e)})", uri=uri) from e
        try:
            policy = decode or DecodeSettings()
            _check_format(container, uri, policy)
            sampled = _sample_container(container, uri, clip, with_match_frames, policy)
            _check_integrity(sampled, uri, policy)
            return sampled
        finally:
            container.close()


def _check_format(container, uri: str, policy: DecodeSettings) -> None:
    names = [n.strip() for n in (container.format.name or "").split(",") if n.strip()]
    if not set(names) & set(policy.allowed_formats):
        raise DecodeError("format_not_allowed", f"{uri} is a '{container.format.name}' file "
                          f"({container.format.long_name}), not one of the video containers allowed by "
                          f"decode.allowed_formats", uri=uri)


def _check_integrity(sampled: SampledVideo, uri: str, policy: DecodeSettings) -> None:
    if sampled.n_decoded < policy.min_frames:
        if sampled.truncated:
            raise DecodeError("truncated", f"{uri}: only {sampled.n_decoded} frame(s) decoded before "
                              f"{'; '.join(sampled.warnings)}", uri=uri)
        raise DecodeError("too_few_frames", f"{uri}: {sampled.n_decoded} decodable frame(s), fewer than "
                          f"decode.min_frames = {policy.min_frames}: a still image, not a video", uri=uri)
    if sampled.truncated and policy.on_truncated == "fail":
        raise DecodeError("truncated", f"{uri}: {'; '.join(sampled.warnings) or 'decoding stopped early'} "
                          f"(decode.on_truncated = fail)", uri=uri)


def _ffmpeg_msg(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _sample_container(container, uri: str, clip: ClipSettings, with_match_frames: bool,
                      policy: DecodeSettings | None = None) -> SampledVideo:
    import av

    policy = policy or DecodeSettings()
    if not container.streams.video:
        raise DecodeError("no_video_stream", f"{uri} has no video stream", uri=uri)
    stream = container.streams.video[0]
    ctx = stream.codec_context
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width * height > clip.max_pixels:
        raise DecodeError("too_large", f"{uri}: frame size {width}x{height} exceeds the limit of "
                                       f"{clip.max_pixels} pixels", uri=uri)
    if width and height and min(width, height) < policy.min_frame_side:
        raise DecodeError("too_small", f"{uri}: frame size {width}x{height} is below decode.min_frame_side = "
                                       f"{policy.min_frame_side} pixels: too small to show a product", uri=uri)
    # the video's own stated length decides 'too long': a container's (the longest of its streams, an audio
    # track's claim included) is compared with what decodes below instead
    container_stated = _stated_duration(container, stream)
    stated = _video_stated_duration(stream) or container_stated
    if stated is not None and stated > clip.max_duration_s:
        raise DecodeError("too_long", f"{uri}: the file states a duration of {stated:.1f} s, over the limit of "
                                      f"{clip.max_duration_s:g} s (clip.max_duration_s)", uri=uri)
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    native_fps = float(rate) if rate else 0.0
    stream.thread_type = "AUTO"  # frame + slice threads; FFmpeg picks the thread count

    step = 1.0 / clip.fps
    limit = float(clip.max_seconds)  # sample times are < limit
    converter = _FrameConverter(stream, clip, with_match_frames)
    cursor = _Cursor(step=step, limit=limit, frame_step=1.0 / native_fps if native_fps > 0 else step,
                     convert=converter)
    truncated = False
    warnings: list[str] = []
    frames = _iter_frames(container, stream, cursor)
    try:
        for frame in frames:
            if cursor.push(frame):
                break
    except av.error.FFmpegError as e:
        truncated = True
        warnings.append(f"decoding stopped early: {_ffmpeg_msg(e)}")
    finally:
        frames.close()

    if cursor.prev is None:
        raise DecodeError("zero_frames", f"{uri}: no video frame could be decoded", uri=uri)
    video_stated = _video_stated_duration(stream)
    if cursor.reached_limit:
        duration = video_stated or stated or cursor.prev_time + cursor.last_frame_duration
    else:  # decoded to the end: the frame shown last stays on screen for its duration
        content_end = cursor.prev_time + cursor.last_frame_duration
        duration = content_end
        if (not truncated and video_stated is not None
                and content_end < video_stated - max(1.0, 2 * cursor.last_frame_duration)):
            truncated = True
            warnings.append(f"decodable video ends at {content_end:.2f} s, the container states {video_stated:.2f} s")
        elif (not truncated and container_stated is not None
              and content_end < container_stated - max(2.0, 0.25 * container_stated)):
            # far beyond, not a slightly longer soundtrack: the file claims content that is not there
            truncated = True
            warnings.append(f"decodable video ends at {content_end:.2f} s, the container states "
                            f"{container_stated:.2f} s")
        cursor.finish(min(content_end, limit))

    rotation = converter.rotation or 0
    disp_w, disp_h = (height, width) if rotation in (90, 270) else (width, height)
    return SampledVideo(model_frames=np.stack(cursor.model_frames),
                        match_frames=cursor.match_frames if with_match_frames else [],
                        timestamps=np.asarray(cursor.times, dtype=np.float64), duration_s=float(duration),
                        native_fps=native_fps, width=disp_w, height=disp_h, rotation=rotation,
                        truncated=truncated, uri=uri, warnings=warnings, n_decoded=cursor.n_decoded)


class _Cursor:
    """Walks decoded frames in presentation order and keeps, for each target t = k·step, the frame shown
    at t: the last frame whose time (from the first frame) is ≤ t. A frame is converted (RGB, upright,
    resized) once, when it is first chosen; other frames are never converted."""

    def __init__(self, *, step: float, limit: float, frame_step: float, convert: "_FrameConverter") -> None:
        self.step, self.limit, self.frame_step, self.convert = step, limit, frame_step, convert
        self.model_frames: list[np.ndarray] = []
        self.match_frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.t0: float | None = None
        self.prev = None  # the latest decoded av.VideoFrame
        self.prev_time = 0.0
        self.prev_converted: tuple[np.ndarray, np.ndarray | None] | None = None
        self.n_decoded = 0
        self.reached_limit = False
        self.intervals: list[float] = []  # between consecutive frames; their median is how long the last one shows

    @property
    def last_frame_duration(self) -> float:
        """How long the last decoded frame stays on screen: the median interval between frames (muxers'
        own last-sample durations are often guesses), or the first frame's duration / 1/fps."""
        return float(np.median(self.intervals)) if self.intervals else self.frame_step

    @property
    def next_target(self) -> float:
        return len(self.times) * self.step

    def _emit_prev(self) -> None:
        if self.prev_converted is None:
            self.prev_converted = self.convert(self.prev)
        model, match = self.prev_converted
        self.model_frames.append(model)
        if match is not None:
            self.match_frames.append(match)
        self.times.append(self.prev_time)

    def push(self, frame) -> bool:
        """Take the next decoded frame; True once every target below the limit is resolved."""
        ft = frame.time
        if ft is None:  # no timestamps (raw elementary stream): count frames
            ft = (self.t0 or 0.0) + self.n_decoded * self.frame_step
        if self.t0 is None:
            self.t0 = ft
        rel = ft - self.t0
        self.n_decoded += 1
        if self.prev is not None and rel < self.prev_time:
            return False  # a late frame from before the current position (e.g. right after a seek)
        while self.prev is not None and self.next_target < rel - 1e-9 and self.next_target < self.limit - 1e-9:
            self._emit_prev()
        if self.prev is None and frame.duration and frame.time_base:
            self.frame_step = float(frame.duration * frame.time_base) or self.frame_step
        elif self.prev is not None and rel > self.prev_time:
            self.intervals.append(rel - self.prev_time)
        self.prev, self.prev_time, self.prev_converted = frame, rel, None
        self.reached_limit = self.next_target >= self.limit - 1e-9
        return self.reached_limit

    def finish(self, end: float) -> None:
        """End of stream: the last frame is shown for every remaining target before ``end`` (at least one)."""
        while self.prev is not None and (self.next_target < end - 1e-9 or not self.times):
            self._emit_prev()

    def seek_target(self, keyframes: list[float], margin: float) -> float | None:
        """Decode time of a keyframe to seek to, when one lies between the current position and the next
        target (so every frame in between would be decoded for nothing); else None."""
        if self.t0 is None or self.prev is None or not keyframes:
            return None
        target_abs = self.t0 + self.next_target
        i = bisect.bisect_right(keyframes, target_abs - margin) - 1
        if i >= 0 and keyframes[i] > self.t0 + self.prev_time + margin:
            return keyframes[i]
        return None


class _FrameConverter:
    """av.VideoFrame → (model frame (size, size, 3), match frame (h, w ≤ match_max_width, 3) or None), RGB
    uint8, made upright; the rotation is read from the first frame converted."""

    def __init__(self, stream, clip: ClipSettings, with_match_frames: bool) -> None:
        self.stream, self.clip, self.with_match_frames = stream, clip, with_match_frames
        self.rotation: int | None = None

    def __call__(self, frame) -> tuple[np.ndarray, np.ndarray | None]:
        if self.rotation is None:
            self.rotation = _rotation(frame, self.stream)
        rgb = frame.to_ndarray(format="rgb24")
        if self.rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=self.rotation // 90))
        size = self.clip.size
        model = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)  # squash, as the paper does
        if not self.with_match_frames:
            return model, None
        h, w = rgb.shape[:2]
        if w > self.clip.match_max_width:
            new_h = max(1, int(round(h * self.clip.match_max_width / w)))
            rgb = cv2.resize(rgb, (self.clip.match_max_width, new_h), interpolation=cv2.INTER_AREA)
        return model, rgb


def _iter_frames(container, stream, cursor: _Cursor):
    """Decoded frames of ``stream`` in presentation order. With a keyframe index whose keyframes are
    closer than the sampling step, seek to the keyframe before the next target instead of decoding the
    frames in between (they are never shown at a sampled time)."""
    keyframes = _keyframe_times(stream)
    use_seek = len(keyframes) >= 3 and float(np.median(np.diff(keyframes))) < 0.75 * cursor.step
    fps = float(stream.average_rate or 0) or 30.0
    margin = 4.0 / fps  # covers the decoder's reorder delay between a keyframe's decode and display time
    last_seek = -float("inf")
    while True:
        seek_to = None
        for packet in container.demux(stream):
            for frame in packet.decode():
                yield frame
            if use_seek:
                seek_to = cursor.seek_target(keyframes, margin)
                if seek_to is not None and seek_to > last_seek:
                    break
                seek_to = None
        if seek_to is None:
            return
        last_seek = seek_to
        container.seek(int(round(seek_to / stream.time_base)), stream=stream, backward=True, any_frame=False)


def _stated_duration(container, stream) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000.0  # AV_TIME_BASE
    return _video_stated_duration(stream)


def _video_stated_duration(stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    return None


def _keyframe_times(stream) -> list[float]:
    """Sorted keyframe decode times (seconds) from the container index; empty when there is none."""
    try:
        entries = stream.index_entries
        tb = stream.time_base
        if entries is None or tb is None:
            return []
        return sorted(float(e.timestamp * tb) for e in entries if e.is_keyframe)
    except Exception:  # any failure: the index is an optimisation only
        return []


def _rotation(frame, stream) -> int:
    """Counterclockwise degrees (0/90/180/270) that make the frame upright, as FFmpeg's autorotate does."""
    angle = None
    try:
        angle = frame.rotation  # display matrix: degrees the display rotates the frame counterclockwise
    except Exception:  # any failure: old PyAV / no side data
        angle = None
    if not angle:
        tag = stream.metadata.get("rotate") if stream.metadata else None  # legacy tag: clockwise degrees
        if tag:
            try:
                angle = -float(tag)
            except ValueError:
                angle = 0
    angle = int(round((angle or 0) / 90.0)) * 90 % 360
    return angle
