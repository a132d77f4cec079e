"""Agreement of scores with a known truth, with bootstrap 95 % intervals (pure: NumPy and SciPy only).

Used by ``pe evaluate`` on the sample campaign, where the true product engagement of every video is known::

    truth t (n,), score a (n,)  ─► spearman(a, t)                      rank correlation, scipy.stats
                                 ─► bootstrap(a, t, groups=g)           percentile interval over resampled
                                                                         clusters (g: each video's influencer)
    truth t, scores a, b        ─► paired_difference(a, b, t, groups=g) spearman(a, t) - spearman(b, t) on the
                                                                         same resamples (paired interval)
    truth t, score a            ─► permutation_null(a, t)              the band chance alone gives (a shuffled)

With ``groups`` the bootstrap resamples whole clusters (an influencer's videos share a person, a style and an
audience, so they are not independent draws): each resample draws as many clusters as there are, with
replacement, and takes every video of each drawn cluster. Without ``groups`` every video is its own cluster.

A constant score ranks nothing: its Spearman correlation is undefined and is reported as 0 with the
interval [0, 0] (as :mod:`models.evaluate` does for the constant baseline).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.stats import rankdata

__all__ = ["Estimate", "spearman", "pearson", "bootstrap", "paired_difference", "permutation_null", "n_clusters",
           "N_BOOT"]

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


def _resamples(n: int, n_boot: int, seed: int, groups=None) -> "np.ndarray | _Weights":
    """``n_boot`` resamples: row indices (n_boot, n) without groups; with ``groups`` (n,), :class:`_Weights`:
    how often each row is taken when as many clusters as there are are drawn with replacement (a row counts
    once per draw of its cluster)."""
    rng = np.random.default_rng(seed)
    if groups is None:
        return rng.integers(0, n, size=(n_boot, n))
    codes, k = _clusters(groups, n)
    draws = rng.integers(0, k, size=(n_boot, k))
    counts = np.zeros((n_boot, k))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return _Weights(counts[:, codes])


@dataclass(frozen=True)
class _Weights:
    """Cluster-bootstrap resamples as row weights (n_boot, n): a statistic of the resample is the statistic of
    the rows repeated that many times."""

    w: np.ndarray


def _clusters(groups, n: int) -> tuple[np.ndarray, int]:
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must be (n,) = ({n},), got {g.shape}")
    uniq, codes = np.unique(g.astype(str), return_inverse=True)
    return codes, len(uniq)


def _weighted_ranks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average ranks (B, n) of x (n,) repeated w (B, n) times: a tie group of total weight W after weight
    ``before`` ranks ``before + (W + 1) / 2``, as rankdata does on the repeated rows."""
    _, inv = np.unique(x, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(inv[order])) + 1]
    tie_weight = np.add.reduceat(w[:, order], starts, axis=1)  # (B, U)
    ranks = np.cumsum(tie_weight, axis=1) - tie_weight + (tie_weight + 1) / 2
    return ranks[:, inv]


def _weighted_corr(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson correlation of rows repeated w times: a, b (n,) or (B, n), w (B, n) → (B,); 0 where constant."""
    sw = w.sum(axis=1, keepdims=True)
    da = a - (w * a).sum(axis=1, keepdims=True) / sw
    db = b - (w * b).sum(axis=1, keepdims=True) / sw
    num = (w * da * db).sum(axis=1)
    den = np.sqrt((w * da * da).sum(axis=1) * (w * db * db).sum(axis=1))
    return np.where(den > 1e-12 * np.maximum(1.0, np.abs(num)), num / np.where(den > 0, den, 1.0), 0.0)


def _stat_over(stat: Callable, resamples, *arrays: np.ndarray) -> np.ndarray:
    """``stat`` of the arrays on every resample: one vectorised call on indexed rows (B, n); for cluster weights,
    weighted ranks/correlations for Spearman and Pearson, else one call per resample on the repeated rows."""
    if isinstance(resamples, np.ndarray):
        return np.asarray(stat(*(a[resamples] for a in arrays)))
    w = resamples.w
    if stat is spearman and len(arrays) == 2:
        return _weighted_corr(_weighted_ranks(arrays[0], w), _weighted_ranks(arrays[1], w), w)
    if stat is pearson and len(arrays) == 2:
        return _weighted_corr(np.broadcast_to(arrays[0], w.shape), np.broadcast_to(arrays[1], w.shape), w)
    rows = np.arange(w.shape[1])
    return np.array([float(stat(*(a[np.repeat(rows, wi.astype(int))] for a in arrays))) for wi in w])


def n_clusters(groups, n: int) -> int:
    """How many clusters ``groups`` (n,) has (n when None)."""
    return n if groups is None else _clusters(groups, n)[1]


def bootstrap(x: np.ndarray, y: np.ndarray, stat: Callable = spearman, *, n_boot: int = N_BOOT, seed: int = 0,
              level: float = 0.95, groups=None) -> Estimate:
    """``stat(x, y)`` (default Spearman) of paired samples (n,) with a percentile interval over n_boot
    resamples of the units (rows, or whole clusters of ``groups`` (n,), resampled with replacement)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be (n,) of the same length, got {x.shape} and {y.shape}")
    n = len(x)
    if n < 3 or n_clusters(groups, n) < 3:
        return Estimate(float("nan"), float("nan"), float("nan"), n)
    boots = _stat_over(stat, _resamples(n, n_boot, seed, groups), x, y)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(float(stat(x, y)), float(lo), float(hi), n)


def paired_difference(a: np.ndarray, b: np.ndarray, truth: np.ndarray, stat: Callable = spearman, *,
                      n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95, groups=None) -> Estimate:
    """stat(a, truth) - stat(b, truth), with the interval of the difference computed on the same resamples
    of the units (or of the clusters of ``groups``) for both scores (a paired bootstrap): its lower end above
    0 means a ranks the truth better."""
    a, b, t = (np.asarray(v, np.float64) for v in (a, b, truth))
    if not (a.shape == b.shape == t.shape) or a.ndim != 1:
        raise ValueError(f"a, b and truth must be (n,) of the same length, got {a.shape}, {b.shape}, {t.shape}")
    n = len(t)
    if n < 3 or n_clusters(groups, n) < 3:
        return Estimate(float("nan"), float("nan"), float("nan"), n)
    idx = _resamples(n, n_boot, seed, groups)
    diffs = _stat_over(stat, idx, a, t) - _stat_over(stat, idx, b, t)
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
