"""Ground truth of a rendered video: per second, where the product is and what drives engagement.

The engagement model of the sample campaign is explicit. Each sampled second ``s`` has an **engagement
drive map** M_s on a 56x56 grid over the squashed 224x224 frame, a sum of visual drivers a video model
can see:

========== ======================================================== ==========================================
driver     weight (drive units)                                     where (map, each normalised to sum 1)
========== ======================================================== ==========================================
face       1.6 * min(1.5, sqrt(face area share / 0.04))              Gaussian on the face box
product    2.4 * min(1.4, sqrt(visible area share / 0.06))           the product quadrilateral
           * (0.1 + 0.9 * centrality^2) * (1 + 0.4 * moving)
           + 1.0 the second it enters
motion     min(1.5, 6 * mean |thumb_s - thumb_{s-1}| / 255)          where the frame changed (not across cuts)
novelty    1.2 the second a new shot starts (and at t = 0)           broad Gaussian on the centre
(base)     0.05                                                     uniform
========== ======================================================== ==========================================

centrality = 1 - (distance of the product's centre from the frame centre) / (half the frame diagonal);
moving = min(1, product speed / 0.3 frame widths per second).

``drive`` D_s = sum of the weights; ``product_drive`` P_s = sum of M_s over the product quadrilateral
(the same region a product heatmap marks), so drive from any driver that falls on the product counts.
The first seconds count more: time weight tau_s = 1 + 2 exp(-s / 3). Per video:

* ``true_engagement`` = sum tau D / sum tau  (mean time-weighted drive);
* ``true_product_engagement`` = sum tau P / sum tau D  (share of the drive on the product, in [0, 1]),
  the quantity a PE-score (``pe_share``) estimates.

Coordinates are in the 224x224 squashed frame: x * 224 / width, y * 224 / height.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from jobs.synth.render import GRID, SecondState, clip_polygon, polygon_area

SIZE = 224
CELL = SIZE / GRID
BASE_DRIVE = 0.05
DRIVERS: tuple[str, ...] = ("face", "product", "motion", "novelty")


@dataclass(frozen=True)
class SecondTruth:
    """One row of ``sample_truth`` (per-video fields are added by :func:`video_truth`)."""

    second: int
    product_visible: bool  # product drawn and at least half of it on screen and unoccluded
    quad_224: list[float] | None  # x0, y0, x1, y1, x2, y2, x3, y3 (TL, TR, BR, BL) whenever drawn
    product_area_share: float  # quadrilateral ∩ frame, share of the frame
    product_visible_share: float  # share of the product's own pixels visible (in frame, unoccluded)
    driver: str  # the strongest driver this second: face | product | motion | novelty | none
    driver_x: float
    driver_y: float
    driver_weight: float  # the strongest driver's share of this second's drive, (0, 1]
    drive: float  # D_s
    product_drive: float  # P_s
    time_weight: float  # tau_s


@dataclass(frozen=True)
class VideoTruth:
    seconds: list[SecondTruth]
    true_engagement: float
    true_product_engagement: float


def time_weight(second: int) -> float:
    """tau_s = 1 + 2 exp(-s/3): the first seconds count more."""
    return 1.0 + 2.0 * math.exp(-second / 3.0)


_centres = (np.arange(GRID, dtype=np.float32) + 0.5) * CELL


def _gaussian(cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    gx = np.exp(-0.5 * ((_centres - cx) / max(sx, 1.0)) ** 2)
    gy = np.exp(-0.5 * ((_centres - cy) / max(sy, 1.0)) ** 2)
    g = np.outer(gy, gx)
    return g / max(float(g.sum()), 1e-12)


def quad_mask(quad_224: np.ndarray | None) -> np.ndarray:
    """(GRID, GRID) float32 coverage in [0, 1] of the quadrilateral on the grid (zeros when None)."""
    if quad_224 is None:
        return np.zeros((GRID, GRID), np.float32)
    canvas = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(canvas, [np.round(quad_224 * 16).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=4)
    return cv2.resize(canvas, (GRID, GRID), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _centroid(m: np.ndarray) -> tuple[float, float]:
    total = float(m.sum())
    if total <= 0:
        return SIZE / 2, SIZE / 2
    return float((m.sum(axis=0) * _centres).sum() / total), float((m.sum(axis=1) * _centres).sum() / total)


def second_truths(states: list[SecondState], width: int, height: int) -> list[SecondTruth]:
    """Per-second truth from the renderer's :class:`SecondState` records (in order of time)."""
    sx, sy = SIZE / width, SIZE / height
    out: list[SecondTruth] = []
    prev: SecondState | None = None
    uniform = np.full((GRID, GRID), 1.0 / GRID**2, np.float32)
    for st in states:
        quad = None if st.quad is None else st.quad * [sx, sy]
        pmask = quad_mask(quad)
        area = polygon_area(clip_polygon(quad, SIZE, SIZE)) / SIZE**2 if quad is not None else 0.0
        components: dict[str, tuple[float, np.ndarray]] = {}
        if st.face is not None:
            fx, fy, fw, fh = st.face
            share = (fw * fh) / (width * height)
            w = 1.6 * min(1.5, math.sqrt(share / 0.04))
            components["face"] = (w, _gaussian((fx + fw / 2) * sx, (fy + fh / 2) * sy, fw * sx / 2, fh * sy / 2))
        if quad is not None and st.visible_share > 0 and pmask.sum() > 0:
            cx, cy = quad.mean(axis=0)
            dist = math.hypot((cx / SIZE - 0.5) / 0.5, (cy / SIZE - 0.5) / 0.5) / math.sqrt(2)
            centrality = max(0.0, 1.0 - dist)
            moving = min(1.0, st.product_speed / 0.3)
            w = 2.4 * min(1.4, math.sqrt(area * st.visible_share / 0.06)) * (0.1 + 0.9 * centrality**2) * (1 + 0.4 * moving)
            if prev is None or prev.quad is None:
                w += 1.0  # it just appeared
            components["product"] = (w, pmask / float(pmask.sum()))
        if prev is not None and not st.cut:
            diff = cv2.GaussianBlur(cv2.absdiff(st.thumb, prev.thumb).astype(np.float32), (0, 0), 1.5)
            level = float(diff.mean())
            if level > 0:
                components["motion"] = (min(1.5, 6.0 * level / 255.0), diff / float(diff.sum()))
        if st.cut:
            components["novelty"] = (1.2, _gaussian(SIZE / 2, SIZE / 2, 60.0, 60.0))

        drive_map = BASE_DRIVE * uniform
        for w, m in components.values():
            drive_map = drive_map + w * m
        drive = BASE_DRIVE + sum(w for w, _ in components.values())
        product_drive = float((drive_map * pmask).sum())
        if components:
            name = max(components, key=lambda k: components[k][0])
            weight, m = components[name]
            dx, dy = _centroid(m)
        else:
            name, weight, (dx, dy) = "none", BASE_DRIVE, (SIZE / 2, SIZE / 2)
        out.append(SecondTruth(
            second=st.second,
            product_visible=bool(quad is not None and st.visible_share >= 0.5),
            quad_224=None if quad is None else [float(v) for v in quad.reshape(-1)],
            product_area_share=float(area),
            product_visible_share=float(st.visible_share),
            driver=name, driver_x=dx, driver_y=dy, driver_weight=float(weight / drive),
            drive=float(drive), product_drive=product_drive, time_weight=time_weight(st.second),
        ))
        prev = st
    return out


def video_truth(states: list[SecondState], width: int, height: int) -> VideoTruth:
    """Per-second truth plus the video's true engagement and true product engagement."""
    seconds = second_truths(states, width, height)
    tau = np.array([s.time_weight for s in seconds])
    drive = np.array([s.drive for s in seconds])
    pdrive = np.array([s.product_drive for s in seconds])
    return VideoTruth(seconds, float((tau * drive).sum() / tau.sum()), float((tau * pdrive).sum() / (tau * drive).sum()))
