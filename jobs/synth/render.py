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

This module is the render loop; the layers are drawn by :mod:`jobs.synth.layers` and the product's corners come
from :mod:`jobs.synth.geometry`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from jobs.synth.geometry import polygon_area, product_quads, smoothstep_poses
from jobs.synth.layers import (
    PersonWindow,
    ProductLayer,
    draw_background,
    draw_caption,
    person_frame_index,
    relight,
    talk_frame,
)
from jobs.synth.storyboard import ProductTrack, VideoPlan
from jobs.synth.writer import Mp4Writer
from jobs.synth.yuv import I420Frame, Planes

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



def _draw_track(product: ProductLayer, frame: Planes, track: ProductTrack, f: int, quads: np.ndarray):
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
    products = {"front": ProductLayer(listing, alpha)}
    if side is not None:
        products["side"] = ProductLayer(*side)
    missing = {tr.view for tr in plan.tracks} - set(products)
    if missing:
        raise ValueError(f"the plan draws the product's {sorted(missing)} view but no such listing was given")
    windows: dict[int, PersonWindow] = {}
    seconds: list[SecondState] = []
    writer = Mp4Writer(path, width=W, height=H, fps=fps, n_frames=plan.n_frames, audio=plan.audio) if path else None
    shot_i = 0
    all_frames = np.arange(plan.n_frames, dtype=np.float64)
    lighting = np.stack([np.interp(all_frames, plan.lighting[:, 0], plan.lighting[:, j]) for j in (1, 2, 3)], axis=1).tolist()
    track_quads = {id(tr): product_quads(smoothstep_poses(tr.keys, np.arange(tr.start, tr.end)),
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
                face = talk_frame(frame, shot, f, fps)
            else:
                draw_background(frame, shot, f, fps)

            tracks = [tr for tr in plan.tracks if tr.start <= f < tr.end] if with_product else []
            track = tracks[0] if tracks else None  # tracks never overlap in time
            product = products[track.view] if track is not None else None
            window_shot = shot.layout == "greenscreen"
            behind = track is not None and track.behind_person and window_shot
            drawn = quad = None
            if track is not None and product is not None and behind:
                quad, drawn = _draw_track(product, frame, track, f, track_quads[id(track)])
            if window_shot:
                win = windows.get(shot_i)
                if win is None:
                    win = windows[shot_i] = PersonWindow(shot, W, H)
                i = person_frame_index(shot, f, fps, win.person)
                face = win.draw(frame, i, t, occlusion if (sampled and drawn is not None) else None)
            if track is not None and product is not None and not behind:
                quad, drawn = _draw_track(product, frame, track, f, track_quads[id(track)])
            for cap in plan.captions:
                if cap.start <= f < cap.end:
                    draw_caption(frame, cap, occlusion if (sampled and drawn is not None) else None)

            relight(frame, *lighting[f])
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
                    # drawn: a track's product was drawn this frame, and a sampled frame has its occlusion
                    assert track is not None and product is not None and quad is not None and occlusion is not None
                    (x0, y0, x1, y1), a = drawn
                    full = product.fill * polygon_area(quad)
                    seen = float(np.sum(a.astype(np.float32) * (255 - occlusion[y0:y1, x0:x1]).astype(np.float32))) / (255.0 * 255.0)
                    state.quad, state.view = quad, track.view
                    state.visible_share = float(min(1.0, seen / max(full, 1e-9)))
                    prev = product_quads(smoothstep_poses(track.keys, [f - fps / 5]), product.aspect, W, H)[0].mean(axis=0)
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
