"""Damaged media for the hostile-input tests, written for real: files whose headers lie about what they hold."""
from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


def _boxes(data: bytearray, start: int, end: int):
    """(type, offset of the box, offset of its payload, end) of each ISO-BMFF box in [start, end)."""
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        if size < 8:
            return
        yield kind, start, start + 8, start + size
        start += size


def _find(data: bytearray, start: int, end: int, kind: bytes) -> list[tuple[int, int]]:
    """(payload offset, end) of every ``kind`` box below [start, end), descending into container boxes."""
    found = []
    for k, _, body, stop in _boxes(data, start, end):
        if k == kind:
            found.append((body, stop))
        if k in _CONTAINERS:
            found += _find(data, body, stop, kind)
    return found


def one_pixel_video(path: Path, frames: int = 6) -> str:
    """A valid H.264 MP4 of 1x1-pixel frames at 2 fps (4:4:4: x264 refuses odd sizes in 4:2:0)."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=2)
        s.width, s.height, s.pix_fmt = 1, 1, "yuv444p"
        for i in range(frames):
            img = np.full((1, 1, 3), i * 30, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv444p")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return str(path)


def claims_hours_mp4(path: Path, hours: float = 4.0, seconds: int = 2) -> str:
    """A ``seconds``-long H.264 MP4 (64x48, 2 fps) whose audio track's headers claim ``hours``: FFmpeg then
    reports the container's duration as ``hours``, the video stream's as ``seconds``."""
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=2)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=8000)
        tone = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.float32), format="fltp", layout="mono")
        tone.sample_rate = 8000
        for p in [*a.encode(tone), *a.encode()]:
            c.mux(p)
        for i in range(seconds * 2):
            for p in v.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 40, np.uint8), format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    data = bytearray(Path(path).read_bytes())
    (moov, moov_end), = _find(data, 0, len(data), b"moov")
    (mvhd, _), = _find(data, moov, moov_end, b"mvhd")
    assert data[mvhd] == 0, "version-0 mvhd expected"
    movie_scale = struct.unpack(">I", data[mvhd + 12:mvhd + 16])[0]
    claim = int(hours * 3600)
    struct.pack_into(">I", data, mvhd + 16, claim * movie_scale)
    for trak, trak_end in _find(data, moov, moov_end, b"trak"):
        (hdlr, _), = _find(data, trak, trak_end, b"hdlr")
        if bytes(data[hdlr + 8:hdlr + 12]) != b"soun":
            continue
        (mdhd, _), = _find(data, trak, trak_end, b"mdhd")
        scale = struct.unpack(">I", data[mdhd + 12:mdhd + 16])[0]
        struct.pack_into(">I", data, mdhd + 16, claim * scale)
        (tkhd, _), = _find(data, trak, trak_end, b"tkhd")
        struct.pack_into(">I", data, tkhd + 20, claim * movie_scale)
        for elst, _ in _find(data, trak, trak_end, b"elst"):
            struct.pack_into(">I", data, elst + 8, claim * movie_scale)  # first edit's segment duration
        (stts, _), = _find(data, trak, trak_end, b"stts")
        n = struct.unpack(">I", data[stts + 4:stts + 8])[0]
        total = sum(c * d for c, d in (struct.unpack(">II", data[stts + 8 + 8 * k:stts + 16 + 8 * k]) for k in range(n)))
        count, delta = struct.unpack(">II", data[stts + 8 + 8 * (n - 1):stts + 16 + 8 * (n - 1)])
        if count == 1:  # the last sample lasts until the claim
            struct.pack_into(">II", data, stts + 8 + 8 * (n - 1), 1, claim * scale - (total - delta))
    Path(path).write_bytes(bytes(data))
    return str(path)


def lying_jpeg(path: Path, image_rgb: np.ndarray, header: tuple[int, int] = (4900, 4900)) -> str:
    """A JPEG of ``image_rgb`` whose frame header (SOF0) says ``header`` (width, height): libjpeg decodes it at the
    header's size, fills the rest with grey and only warns 'Corrupt JPEG data: premature end of data segment'."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    data = bytearray(encoded.tobytes())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, header[1], header[0])
    Path(path).write_bytes(bytes(data))
    return str(path)
