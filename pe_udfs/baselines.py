"""Model-free PE baselines and product-map accuracy for one video (pure: no Spark, no tables).

``pe evaluate`` compares a model's ``pe_share`` with scores that need no engagement model, on the same
product map the model's score used (rebuilt from ``pe_seconds.quad_224`` and the listing image). Each
baseline is a class behind one contract, registered by name (``BASELINES``); higher means "more of the
video's attention on the product"::

    VideoEvidence: frames (S, 224, 224, 3) uint8 RGB, product masks p (S, 224, 224) 0/1
      area_only          Σp / (S·224·224)                                  the product's size
      centre_prior       Σg·p / Σg, g a Gaussian centre prior              where the eye rests
      spectral_residual  Σe_sr·p / Σe_sr (OpenCV spectral residual)        the paper's unsupervised map
      motion_in_mask     Σd·p / Σd, d = |frame_s − frame_s−1| (blurred)    what moves, at the scoring fps
      product_speed      mean over seconds of the mask centroid's speed    a product that is swung or carried
                         (frame widths per second; 0 where not found)
      face_distance      mean over seconds of the product's distance from  a product away from the faces
                         the nearest detected face (share of the diagonal;
                         1 without a face; 0 where not found)
      steady_shots       share of seconds with the product found and no    a shot change pulls the eye away
                         shot change (a cut: colour histograms of
                         consecutive frames correlate below 0.5)

together with per-second product-map agreement against a known truth (``mask_agreement``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import cv2
import numpy as np

from pe_udfs.pe_math import pe_scores
from pe_udfs.product import quad_mask, silhouette_mask
from pe_udfs.saliency import engagement_heatmap
from pe_udfs.settings import SaliencySettings
from pe_udfs.video import clip_tensor

__all__ = ["product_masks", "centre_prior", "baseline_shares", "mask_agreement", "CENTRE_SIGMA", "BASELINES",
           "Baseline", "VideoEvidence", "register_baseline"]

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


@dataclass
class VideoEvidence:
    """What a model-free rule may look at: ``frames`` (S, H, W, 3) uint8 RGB (the model's frames) and ``masks``
    (S, H, W) 0/1 (the product map the score used). Derived maps are computed once and shared by the rules."""

    frames: np.ndarray
    masks: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.frames.shape[:3] != self.masks.shape:
            raise ValueError(f"frames {self.frames.shape[:3]} and masks {self.masks.shape} differ")

    def cached(self, key: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def gray(self) -> np.ndarray:
        """(S, H, W) float32 grey levels in [0, 255]."""
        return self.cached("gray", lambda: np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in self.frames])
                           .astype(np.float32) if len(self.frames) else np.zeros(self.masks.shape, np.float32))

    @property
    def found(self) -> np.ndarray:
        """(S,) bool: seconds with a product region."""
        return self.masks.reshape(len(self.masks), -1).any(axis=1)


class Baseline:
    """A model-free PE rule: ``score(evidence) -> float``, higher = more attention on the product."""

    name: ClassVar[str]

    def score(self, ev: VideoEvidence) -> float:
        raise NotImplementedError


#: name → rule, in the order reports list them
BASELINES: dict[str, Baseline] = {}


def register_baseline(cls: type[Baseline]) -> type[Baseline]:
    BASELINES[cls.name] = cls()
    return cls


def _share(weights: np.ndarray, masks: np.ndarray) -> float:
    total = float(weights.sum())
    return float((weights * masks).sum() / total) if total > 0 else 0.0


@register_baseline
class AreaOnly(Baseline):
    name = "area_only"

    def score(self, ev: VideoEvidence) -> float:
        return float(ev.masks.mean()) if ev.masks.size else 0.0


@register_baseline
class CentrePrior(Baseline):
    name = "centre_prior"

    def score(self, ev: VideoEvidence) -> float:
        s, h, w = ev.masks.shape
        prior = centre_prior(h) if h == w else cv2.resize(centre_prior(max(h, w)), (w, h))
        return _share(np.broadcast_to(prior, (s, h, w)), ev.masks)


@register_baseline
class SpectralResidual(Baseline):
    name = "spectral_residual"

    def score(self, ev: VideoEvidence) -> float:
        if not len(ev.frames):
            return 0.0
        sr = engagement_heatmap(None, clip_tensor(ev.frames), SaliencySettings(method="spectral_residual")).heatmap
        return pe_scores(sr, ev.masks)["pe_share"]


def frame_differences(gray: np.ndarray) -> np.ndarray:
    """(S, H, W) grey frames → (S, H, W) |frame_s − frame_{s−1}| blurred (σ 1.5 px); 0 for the first second."""
    d = np.zeros_like(gray, dtype=np.float32)
    for s in range(1, len(gray)):
        d[s] = cv2.GaussianBlur(np.abs(gray[s] - gray[s - 1]), (0, 0), 1.5)
    return d


@register_baseline
class MotionInMask(Baseline):
    name = "motion_in_mask"

    def score(self, ev: VideoEvidence) -> float:
        return _share(ev.cached("motion", lambda: frame_differences(ev.gray)), ev.masks)


def mask_centroids(masks: np.ndarray) -> np.ndarray:
    """(S, H, W) 0/1 → (S, 2) centroid (x, y) in pixels, NaN where the mask is empty."""
    out = np.full((len(masks), 2), np.nan)
    if not len(masks):
        return out
    h, w = masks.shape[1:]
    xs, ys = np.arange(w) + 0.5, np.arange(h) + 0.5
    for s, m in enumerate(masks):
        total = float(m.sum())
        if total > 0:
            out[s] = (m.sum(axis=0) @ xs / total, m.sum(axis=1) @ ys / total)
    return out


@register_baseline
class ProductSpeed(Baseline):
    name = "product_speed"

    def score(self, ev: VideoEvidence) -> float:
        if len(ev.masks) < 2:
            return 0.0
        c = mask_centroids(ev.masks)
        step = np.hypot(*(c[1:] - c[:-1]).T) / ev.masks.shape[2]  # frame widths per second
        return float(np.nan_to_num(step, nan=0.0).sum() / len(ev.masks))


_FACES: list = []


def detect_faces(gray: np.ndarray) -> list[np.ndarray]:
    """Per frame of (S, H, W) grey frames, the face boxes (k, 4) x, y, w, h of OpenCV's frontal Haar cascade."""
    if not _FACES:
        _FACES.append(cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml"))
    cascade = _FACES[0]
    out = []
    for g in gray:
        found = cascade.detectMultiScale(g.astype(np.uint8), scaleFactor=1.1, minNeighbors=4, minSize=(16, 16))
        out.append(np.asarray(found, np.float64).reshape(-1, 4))
    return out


@register_baseline
class FaceDistance(Baseline):
    name = "face_distance"

    def score(self, ev: VideoEvidence) -> float:
        if not len(ev.masks):
            return 0.0
        faces = ev.cached("faces", lambda: detect_faces(ev.gray))  # type: ignore[arg-type, return-value]
        c = mask_centroids(ev.masks)
        h, w = ev.masks.shape[1:]
        diag = float(np.hypot(h, w))
        total = 0.0
        for s, boxes in enumerate(faces):
            if np.isnan(c[s, 0]):
                continue
            if len(boxes) == 0:
                total += 1.0
                continue
            centres = boxes[:, :2] + boxes[:, 2:] / 2
            total += float(np.min(np.hypot(*(centres - c[s]).T))) / diag
        return total / len(ev.masks)


def shot_changes(frames: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(S, H, W, 3) RGB → (S,) bool: second s starts a new shot (colour histograms of s−1 and s correlate
    below ``threshold``); the first second counts as one."""
    out = np.zeros(len(frames), bool)
    hists = [cv2.normalize(cv2.calcHist([f], [0, 1, 2], None, [8, 8, 8], [0, 256] * 3), None).flatten()
             for f in frames]
    if len(frames):
        out[0] = True
    for s in range(1, len(frames)):
        out[s] = cv2.compareHist(hists[s - 1], hists[s], cv2.HISTCMP_CORREL) < threshold
    return out


@register_baseline
class SteadyShots(Baseline):
    name = "steady_shots"

    def score(self, ev: VideoEvidence) -> float:
        if not len(ev.masks):
            return 0.0
        return float((ev.found & ~shot_changes(ev.frames)).mean())


def baseline_shares(model_frames: np.ndarray, masks: np.ndarray, names: Sequence[str] | None = None
                    ) -> dict[str, float]:
    """Model-free PE scores of one video: frames (S, H, W, 3) uint8 RGB, masks (S, H, W) 0/1 →
    {baseline name: score} for ``names`` (default: every registered baseline)."""
    ev = VideoEvidence(model_frames, masks)
    unknown = sorted(set(names or ()) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; known: {', '.join(BASELINES)}")
    return {n: BASELINES[n].score(ev) for n in (names or BASELINES)}


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
