"""Agreement of scores with a known truth, with bootstrap 95 % intervals (pure: NumPy and SciPy only).

Used by ``pe evaluate`` on the sample campaign, where the true product engagement of every video is known::

    truth t (n,), score a (n,)  ─► spearman(a, t)                      rank correlation, scipy.stats
                                 ─► bootstrap(a, t)                     percentile interval over videos
    truth t, scores a, b        ─► paired_difference(a, b, t)          spearman(a, t) - spearman(b, t) on the
                                                                         same resamples (paired interval)
    truth t, score a            ─► permutation_null(a, t)              the band chance alone gives (a shuffled)

A constant score ranks nothing: its Spearman correlation is undefined and is reported as 0 with the
interval [0, 0] (as :mod:`models.evaluate` does for the constant baseline).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.stats import rankdata

__all__ = ["Estimate", "spearman", "pearson", "bootstrap", "paired_difference", "permutation_null", "N_BOOT"]

N_BOOT = 2000


@dataclass(frozen=True)
class Estimate:
    """A statistic on n units with its percentile bootstrap interval (``level``, default 95 %)."""

    value: float
    ci_low: float
    ci_high: float
    n: int


def _corr_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of x (B, n) with the same row of y; 0 where either row is constant."""
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    num = (x * y).sum(axis=-1)
    return np.where(den > 1e-12 * np.maximum(1.0, np.abs(num)), num / np.where(den > 0, den, 1.0), 0.0)


def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
    """Pearson correlation along the last axis ((n,) → float, (B, n) → (B,)); 0 for a constant input."""
    r = _corr_rows(np.asarray(x, np.float64), np.asarray(y, np.float64))
    return float(r) if np.ndim(r) == 0 else r


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray | float:
    """Spearman rank correlation (average ranks for ties) along the last axis; 0 for a constant input."""
    rx = rankdata(np.asarray(x, np.float64), axis=-1)
    ry = rankdata(np.asarray(y, np.float64), axis=-1)
    return pearson(rx, ry)


def _resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap(x: np.ndarray, y: np.ndarray, stat: Callable = spearman, *, n_boot: int = N_BOOT, seed: int = 0,
              level: float = 0.95) -> Estimate:
    """``stat(x, y)`` (default Spearman) of paired samples (n,) with a percentile interval over n_boot
    resamples of the units (rows resampled with replacement)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be (n,) of the same length, got {x.shape} and {y.shape}")
    n = len(x)
    if n < 3:
        return Estimate(float("nan"), float("nan"), float("nan"), n)
    idx = _resamples(n, n_boot, seed)
    boots = np.asarray(stat(x[idx], y[idx]))
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(float(stat(x, y)), float(lo), float(hi), n)


def paired_difference(a: np.ndarray, b: np.ndarray, truth: np.ndarray, stat: Callable = spearman, *,
                      n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> Estimate:
    """stat(a, truth) - stat(b, truth), with the interval of the difference computed on the same resamples
    of the units for both scores (a paired bootstrap): its lower end above 0 means a ranks the truth better."""
    a, b, t = (np.asarray(v, np.float64) for v in (a, b, truth))
    if not (a.shape == b.shape == t.shape) or a.ndim != 1:
        raise ValueError(f"a, b and truth must be (n,) of the same length, got {a.shape}, {b.shape}, {t.shape}")
    n = len(t)
    if n < 3:
        return Estimate(float("nan"), float("nan"), float("nan"), n)
    idx = _resamples(n, n_boot, seed)
    diffs = np.asarray(stat(a[idx], t[idx])) - np.asarray(stat(b[idx], t[idx]))
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(float(stat(a, t) - stat(b, t)), float(lo), float(hi), n)


def permutation_null(x: np.ndarray, y: np.ndarray, stat: Callable = spearman, *, n_perm: int = N_BOOT, seed: int = 0,
                     level: float = 0.95) -> Estimate:
    """The negative control: ``stat`` of x shuffled against y over n_perm permutations → the median and the
    central ``level`` band of that null distribution (a score whose statistic lies inside it ranks nothing)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = len(x)
    if n < 3:
        return Estimate(float("nan"), float("nan"), float("nan"), n)
    rng = np.random.default_rng(seed)
    null = np.asarray(stat(np.stack([rng.permutation(x) for _ in range(n_perm)]), np.broadcast_to(y, (n_perm, n))))
    lo, mid, hi = np.quantile(null, [(1 - level) / 2, 0.5, (1 + level) / 2])
    return Estimate(float(mid), float(lo), float(hi), n)
