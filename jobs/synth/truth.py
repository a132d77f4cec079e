"""Ground truth of a rendered video: per second, where the product is and what drives engagement.

The engagement model of the sample campaign is explicit. Each sampled second ``s`` has an **engagement
drive map** M_s on a 56x56 grid over the squashed 224x224 frame, a sum of visual drivers a video model
can see:

========== ======================================================== ==========================================
driver     weight (drive units)                                     where (map, each normalised to sum 1)
========== ======================================================== ==========================================
face       1.6 * min(1.5, sqrt(face area share / 0.04))              Gaussian on the face box
product    2.6 * (0.08 + 0.92 * activity) * (0.6 + 0.4 centrality)   the product's silhouette
           * sqrt(min(1, visible silhouette share / 0.02))
           + 0.8 the second it enters
motion     min(1.5, 6 * mean |thumb_s - thumb_{s-1}| / 255)          where the frame changed (not across cuts)
novelty    1.2 the second a new shot starts (and at t = 0)           Gaussian on the face (a person on screen),
                                                                    else broad on the centre
(base)     0.05                                                     uniform
========== ======================================================== ==========================================

activity = min(1, product speed / 0.25 frame widths per second): a product that is swung, carried or turned
draws the eye, one that stands still does not, however large; centrality = 1 - (distance of the product's
centre from the frame centre) / (half the frame diagonal). The product's **size barely matters** (only
products under 2 % of the frame are discounted), so the storyboard's scenarios (a large static ``prop``
beside a talking face, a small ``held`` product at the centre of the action, ...) separate the product's
area from the engagement on it.

The product region is the product's **silhouette** (the listing photo's alpha mask warped onto the
product's quadrilateral), not the listing rectangle with its white margins. ``drive`` D_s = sum of the
weights; ``product_drive`` P_s = sum of M_s over the silhouette, so drive from any driver that falls on the
product counts. The first seconds count more: time weight tau_s = 1 + 2 exp(-s / 3). Per video:

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

from jobs.synth.geometry import clip_polygon, polygon_area
from jobs.synth.render import GRID, SecondState

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
    product_area_share: float  # silhouette ∩ frame, share of the frame
    quad_area_share: float  # listing rectangle (quadrilateral) ∩ frame, share of the frame
    product_mask_png: bytes | None  # the silhouette on the 224x224 grid (PNG, 0/255) whenever drawn
    product_visible_share: float  # share of the product's own pixels visible (in frame, unoccluded)
    driver: str  # the strongest driver this second: face | product | motion | novelty | none
    driver_x: float
    driver_y: float
    driver_weight: float  # the strongest driver's share of this second's drive, (0, 1]
    drive: float  # D_s
    product_drive: float  # P_s
    time_weight: float  # tau_s
    product_view: str | None = None  # the listing photo drawn ('front' | 'side'); None when not drawn


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


def silhouette_224(quad_224: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(SIZE, SIZE) uint8 0/255: the listing's silhouette ``alpha`` (h, w) warped onto ``quad_224`` (4, 2)
    (listing corners TL, TR, BR, BL in 224 coordinates), as the renderer draws it."""
    h, w = alpha.shape
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    to_grid = cv2.getPerspectiveTransform(corners, quad_224.astype(np.float32))
    warped = cv2.warpPerspective(alpha, to_grid, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return np.where(warped >= 128, 255, 0).astype(np.uint8)


def mask_png(mask: np.ndarray) -> bytes:
    """Lossless PNG bytes of a 0/255 mask (decode with ``cv2.imdecode(..., cv2.IMREAD_GRAYSCALE)``)."""
    ok, buf = cv2.imencode(".png", mask)
    if not ok:
        raise ValueError("could not encode a product mask as PNG")
    return buf.tobytes()


def _centroid(m: np.ndarray) -> tuple[float, float]:
    total = float(m.sum())
    if total <= 0:
        return SIZE / 2, SIZE / 2
    return float((m.sum(axis=0) * _centres).sum() / total), float((m.sum(axis=1) * _centres).sum() / total)


def second_truths(states: list[SecondState], width: int, height: int, alpha: np.ndarray,
                  side_alpha: np.ndarray | None = None) -> list[SecondTruth]:
    """Per-second truth from the renderer's :class:`SecondState` records (in order of time); ``alpha``
    (h, w) uint8 is the listing's silhouette the renderer drew the product through (``side_alpha``: the
    side panel's, for the seconds that show it)."""
    alphas = {"front": alpha, **({"side": side_alpha} if side_alpha is not None else {})}
    sx, sy = SIZE / width, SIZE / height
    out: list[SecondTruth] = []
    prev: SecondState | None = None
    uniform = np.full((GRID, GRID), 1.0 / GRID**2, np.float32)
    for st in states:
        quad = None if st.quad is None else st.quad * [sx, sy]
        silhouette = None if quad is None else silhouette_224(quad, alphas[st.view or "front"])
        pmask = (np.zeros((GRID, GRID), np.float32) if silhouette is None else
                 cv2.resize(silhouette, (GRID, GRID), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)
        area = float(pmask.mean())
        components: dict[str, tuple[float, np.ndarray]] = {}
        face_centre = None
        if st.face is not None:
            fx, fy, fw, fh = st.face
            share = (fw * fh) / (width * height)
            w = 1.6 * min(1.5, math.sqrt(share / 0.04))
            face_centre = ((fx + fw / 2) * sx, (fy + fh / 2) * sy, fw * sx / 2, fh * sy / 2)
            components["face"] = (w, _gaussian(*face_centre))
        if quad is not None and st.visible_share > 0 and pmask.sum() > 0:
            cx, cy = _centroid(pmask)
            dist = math.hypot((cx / SIZE - 0.5) / 0.5, (cy / SIZE - 0.5) / 0.5) / math.sqrt(2)
            centrality = max(0.0, 1.0 - dist)
            activity = min(1.0, st.product_speed / 0.25)
            w = (2.6 * (0.08 + 0.92 * activity) * (0.6 + 0.4 * centrality)
                 * math.sqrt(min(1.0, area * st.visible_share / 0.02)))
            if prev is None or prev.quad is None:
                w += 0.8  # it just appeared
            components["product"] = (w, pmask / float(pmask.sum()))
        if prev is not None and not st.cut:
            diff = cv2.GaussianBlur(cv2.absdiff(st.thumb, prev.thumb).astype(np.float32), (0, 0), 1.5)
            level = float(diff.mean())
            if level > 0:
                components["motion"] = (min(1.5, 6.0 * level / 255.0), diff / float(diff.sum()))
        if st.cut:  # a new shot: the eye goes to the person, or looks around the centre
            components["novelty"] = (1.2, _gaussian(*face_centre) if face_centre else _gaussian(SIZE / 2, SIZE / 2, 60.0, 60.0))

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
            product_area_share=area,
            quad_area_share=polygon_area(clip_polygon(quad, SIZE, SIZE)) / SIZE**2 if quad is not None else 0.0,
            product_mask_png=None if silhouette is None else mask_png(silhouette),
            product_visible_share=float(st.visible_share),
            driver=name, driver_x=dx, driver_y=dy, driver_weight=float(weight / drive),
            drive=float(drive), product_drive=product_drive, time_weight=time_weight(st.second),
            product_view=None if quad is None else (st.view or "front"),
        ))
        prev = st
    return out


def video_truth(states: list[SecondState], width: int, height: int, alpha: np.ndarray,
                side_alpha: np.ndarray | None = None) -> VideoTruth:
    """Per-second truth plus the video's true engagement and true product engagement (``alpha``: the
    listing's silhouette, (h, w) uint8; ``side_alpha``: the side panel's, turning scenario)."""
    seconds = second_truths(states, width, height, alpha, side_alpha)
    tau = np.array([s.time_weight for s in seconds])
    drive = np.array([s.drive for s in seconds])
    pdrive = np.array([s.product_drive for s in seconds])
    return VideoTruth(seconds, float((tau * drive).sum() / tau.sum()), float((tau * pdrive).sum() / (tau * drive).sum()))
