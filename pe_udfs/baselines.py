"""Model-free PE baselines and product-map accuracy for one video (pure: no Spark, no tables).

``pe evaluate`` compares a model's ``pe_share`` with scores that need no engagement model, on the same
product map the model's score used (rebuilt from ``pe_seconds.quad_224`` and the listing image)::

    quads (S × 8 | None) + listing silhouette ─► product_masks ─► p (S, 224, 224) 0/1
    p                                          ─► area share      Σp / (S·224·224)
    model frames (S, 224, 224, 3)              ─► spectral residual saliency e_sr ─► Σe_sr·p / Σe_sr
    centre prior g (224, 224), Gaussian        ─► Σg·p / (S·Σg)                  (centre-bias prior PE)
    p vs truth silhouettes                     ─► per second IoU (visible seconds), found on absent seconds
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from pe_udfs.pe_math import pe_scores
from pe_udfs.product import quad_mask, silhouette_mask
from pe_udfs.saliency import engagement_heatmap
from pe_udfs.settings import SaliencySettings
from pe_udfs.video import clip_tensor

__all__ = ["product_masks", "centre_prior", "baseline_shares", "mask_agreement", "CENTRE_SIGMA"]

#: sd of the centre-bias prior, share of the frame side (eye-tracking centre bias is roughly this wide)
CENTRE_SIGMA = 0.25


def product_masks(quads: Sequence[Sequence[float] | None], silhouette: np.ndarray | None, out_size: int = 224
                  ) -> np.ndarray:
    """The scorer's product map rebuilt from its per-second listing corners on the grid: ``quads`` S
    entries of (x0, y0, …, x3, y3) (TL, TR, BR, BL of the listing image) or None (not found);
    ``silhouette`` (h, w) 0/255 of the listing (None: the whole listing rectangle) → (S, out, out) uint8 0/1."""
    masks = np.zeros((len(quads), out_size, out_size), np.uint8)
    for s, q in enumerate(quads):
        if q is None or len(q) != 8:
            continue
        quad = np.asarray(q, np.float32).reshape(4, 2)
        if silhouette is None:
            masks[s] = quad_mask(quad, out_size, out_size, out_size)
            continue
        h, w = silhouette.shape
        H = cv2.getPerspectiveTransform(np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32), quad)
        masks[s] = silhouette_mask(silhouette, H, out_size, out_size, out_size)
    return masks


def centre_prior(size: int = 224, sigma: float = CENTRE_SIGMA) -> np.ndarray:
    """(size, size) float32 isotropic Gaussian centred on the frame, sd = sigma·size, peak 1."""
    c = (np.arange(size, dtype=np.float32) + 0.5) - size / 2
    g = np.exp(-0.5 * (c / (sigma * size)) ** 2)
    return np.outer(g, g).astype(np.float32)


def baseline_shares(model_frames: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Model-free PE shares of one video: frames (S, H, W, 3) uint8 RGB, masks (S, H, W) 0/1 →
    {'area_share', 'spectral_residual_pe_share', 'centre_prior_pe_share'}."""
    if model_frames.shape[:3] != masks.shape:
        raise ValueError(f"frames {model_frames.shape[:3]} and masks {masks.shape} differ")
    s, h, w = masks.shape
    sr = engagement_heatmap(None, clip_tensor(model_frames), SaliencySettings(method="spectral_residual")).heatmap
    prior = np.broadcast_to(centre_prior(h) if h == w else cv2.resize(centre_prior(max(h, w)), (w, h)), (s, h, w))
    return {"area_share": float(masks.mean()) if s else 0.0,
            "spectral_residual_pe_share": pe_scores(sr, masks)["pe_share"],
            "centre_prior_pe_share": pe_scores(prior, masks)["pe_share"]}


def mask_agreement(masks: np.ndarray, found: np.ndarray, truth: Sequence[np.ndarray | None],
                   visible: Sequence[bool]) -> list[dict]:
    """Per second of the shorter of the two: ``masks`` (S, H, W) 0/1 with ``found`` (S,), the truth region
    (H, W) bool or None (product not drawn) and whether it is visible → rows with second, kind ('visible',
    'absent' or 'partial'), found and iou (visible seconds; 0 when not found)."""
    rows = []
    for s in range(min(len(masks), len(truth))):
        t = truth[s]
        if t is None:
            rows.append({"second": s, "kind": "absent", "found": bool(found[s]), "iou": None})
            continue
        if not visible[s]:
            rows.append({"second": s, "kind": "partial", "found": bool(found[s]), "iou": None})
            continue
        ours = masks[s].astype(bool)
        union = int((ours | t).sum())
        rows.append({"second": s, "kind": "visible", "found": bool(found[s]),
                     "iou": float((ours & t).sum() / union) if union else 0.0})
    return rows
