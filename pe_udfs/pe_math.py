"""PE-score arithmetic, from the engagement map e and the product mask p over S×H×W.

    e (S, H, W) float ≥ 0 ─┐
                           ├─► per second: e_mass = Σe, pe_mass = Σe·p, p_mass = Σp   (S,) each
    p (S, H, W) 0/1 ───────┘        └─► scores: pe_raw, e_score, p_score, pe_share, pe_lift (+ _6s)

Paper-faithful: ``pe_raw = Σe·p / (S·H·W)`` (the paper's equation 1; its code divided by S only),
``e_score = Σe``, ``p_score = Σp``. Ours: ``pe_share = Σe·p / Σe`` ∈ [0, 1] (0 when Σe = 0), the share of
engagement on the product, and ``pe_lift = pe_share / (Σp / (S·H·W))`` (0 when there is no product), the
engagement on the product relative to its size (1 = no more than its area). The ``_6s`` variants use the
first ``first_seconds`` seconds only. Everything is computed from the per-second sums, so stored
``pe_seconds`` rows reproduce every score without re-running the CNN or SIFT.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["SecondSums", "per_second_sums", "scores_from_sums", "pe_scores", "coarse_grid", "SCORE_NAMES"]

BASE_SCORES = ("pe_raw", "e_score", "p_score", "pe_share", "pe_lift")
SCORE_NAMES = BASE_SCORES + tuple(f"{n}_6s" for n in BASE_SCORES)


@dataclass(frozen=True)
class SecondSums:
    """Per-second sums over the H×W grid: e_mass = Σe, pe_mass = Σe·p, p_mass = Σp, each (S,) float64;
    ``pixels`` = H·W of the grid they were summed over."""

    e_mass: np.ndarray
    pe_mass: np.ndarray
    p_mass: np.ndarray
    pixels: int

    @property
    def n_seconds(self) -> int:
        return int(self.e_mass.shape[0])


def _check_maps(e: np.ndarray, p: np.ndarray) -> None:
    if e.ndim != 3 or p.shape != e.shape:
        raise ValueError(f"e and p must both be (S, H, W); got {tuple(e.shape)} and {tuple(p.shape)}")


def per_second_sums(e: np.ndarray, p: np.ndarray) -> SecondSums:
    """e (S, H, W) float ≥ 0, p (S, H, W) 0/1 (any numeric dtype) → :class:`SecondSums`."""
    e = np.asarray(e)
    p = np.asarray(p)
    _check_maps(e, p)
    s, h, w = e.shape
    e64 = e.reshape(s, -1).astype(np.float64, copy=False)
    p64 = p.reshape(s, -1).astype(np.float64, copy=False)
    return SecondSums(e_mass=e64.sum(axis=1), pe_mass=np.einsum("sk,sk->s", e64, p64),
                      p_mass=p64.sum(axis=1), pixels=h * w)


def _scores(e_mass: np.ndarray, pe_mass: np.ndarray, p_mass: np.ndarray, pixels: int) -> dict[str, float]:
    s = int(e_mass.shape[0])
    e_sum, pe_sum, p_sum = float(e_mass.sum()), float(pe_mass.sum()), float(p_mass.sum())
    cells = float(s * pixels)
    pe_share = pe_sum / e_sum if e_sum > 0 else 0.0
    area_share = p_sum / cells if cells > 0 else 0.0
    return {
        "pe_raw": pe_sum / cells if cells > 0 else 0.0,
        "e_score": e_sum,
        "p_score": p_sum,
        "pe_share": pe_share,
        "pe_lift": pe_share / area_share if area_share > 0 else 0.0,
    }


def scores_from_sums(sums: SecondSums, first_seconds: int = 6) -> dict[str, float]:
    """All PE scores (``SCORE_NAMES``) from per-second sums; ``_6s`` keys use seconds [0, first_seconds)."""
    out = _scores(sums.e_mass, sums.pe_mass, sums.p_mass, sums.pixels)
    k = min(first_seconds, sums.n_seconds)
    first = _scores(sums.e_mass[:k], sums.pe_mass[:k], sums.p_mass[:k], sums.pixels)
    out.update({f"{name}_6s": value for name, value in first.items()})
    return out


def pe_scores(e: np.ndarray, p: np.ndarray, first_seconds: int = 6) -> dict[str, float]:
    """e (S, H, W) engagement ≥ 0, p (S, H, W) product mask 0/1 → dict of ``SCORE_NAMES`` floats."""
    return scores_from_sums(per_second_sums(e, p), first_seconds)


def coarse_grid(e: np.ndarray, grid: int) -> np.ndarray:
    """(S, H, W) → (S, grid, grid) float32 mean of e over each cell (area interpolation when H or W is not
    a multiple of ``grid``); for plots stored in ``pe_seconds``."""
    e = np.asarray(e, dtype=np.float32)
    if e.ndim != 3:
        raise ValueError(f"e must be (S, H, W), got {tuple(e.shape)}")
    s, h, w = e.shape
    if h % grid == 0 and w % grid == 0:
        return e.reshape(s, grid, h // grid, grid, w // grid).mean(axis=(2, 4), dtype=np.float64).astype(np.float32)
    return np.stack([cv2.resize(frame, (grid, grid), interpolation=cv2.INTER_AREA) for frame in e]) if s else \
        np.zeros((0, grid, grid), np.float32)
