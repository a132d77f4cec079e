"""Held-out evaluation of the engagement model, always beside a constant-prediction baseline.

The paper's 73% "accuracy" was barely above what a constant prediction scores, so every report holds both:

    model     spearman, r2, mae          of the predictions on the test split
    baseline  spearman=0, r2, mae        of predicting the training mean for every test video

A constant ranks nothing, so its Spearman correlation is undefined; it is reported as 0 (no rank
information), which is the bar a model must clear.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Mapping

import numpy as np
from scipy.stats import rankdata

__all__ = ["Metrics", "EvalReport", "regression_metrics", "metric_rows", "metric_value", "evaluate_predictions",
           "METRIC_DIRECTION"]

#: +1: higher is better; -1: lower is better
METRIC_DIRECTION: dict[str, int] = {"spearman": 1, "r2": 1, "mae": -1}


@dataclass(frozen=True)
class Metrics:
    spearman: float
    r2: float
    mae: float

    def get(self, name: str) -> float:
        if name not in METRIC_DIRECTION:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRIC_DIRECTION)}")
        return float(getattr(self, name))


@dataclass(frozen=True)
class EvalReport:
    """Model vs constant baseline on one set of videos (n of them); ``baseline_value`` is the constant."""

    n: int
    model: Metrics
    baseline: Metrics
    baseline_value: float

    def beats_baseline(self, metric: str) -> bool:
        """True when the model is strictly better than the constant on ``metric``."""
        d = METRIC_DIRECTION[metric]
        return d * (self.model.get(metric) - self.baseline.get(metric)) > 0

    def as_flat_dict(self, prefix: str = "test_") -> dict[str, float]:
        """{'test_spearman': ..., 'test_baseline_spearman': ..., ...} for MLflow metrics."""
        out: dict[str, float] = {f"{prefix}n": float(self.n), f"{prefix}baseline_value": self.baseline_value}
        for k, v in asdict(self.model).items():
            out[f"{prefix}{k}"] = float(v)
        for k, v in asdict(self.baseline).items():
            out[f"{prefix}baseline_{k}"] = float(v)
        return out

    @classmethod
    def from_flat_dict(cls, metrics: Mapping[str, float], prefix: str = "test_", *,
                       baseline: "EvalReport | None" = None) -> "EvalReport":
        """The report :meth:`as_flat_dict` wrote with ``prefix`` (e.g. a run's logged MLflow metrics; other keys
        are ignored). ``baseline``: take the constant baseline (metrics and value) from this report instead, for
        a report logged without its baseline keys (``pe train`` logs the champion's, on the candidate's test
        videos, that way). Raises KeyError naming the missing metric keys."""
        names = [f.name for f in fields(Metrics)]
        needed = [f"{prefix}n", *(f"{prefix}{k}" for k in names)]
        if baseline is None:
            needed += [f"{prefix}baseline_value", *(f"{prefix}baseline_{k}" for k in names)]
        missing = [k for k in needed if k not in metrics]
        if missing:
            raise KeyError(f"missing metrics: {', '.join(missing)}")
        model = Metrics(**{k: float(metrics[f"{prefix}{k}"]) for k in names})
        if baseline is not None:
            base, value = baseline.baseline, baseline.baseline_value
        else:
            base = Metrics(**{k: float(metrics[f"{prefix}baseline_{k}"]) for k in names})
            value = float(metrics[f"{prefix}baseline_value"])
        return cls(n=int(round(float(metrics[f"{prefix}n"]))), model=model, baseline=base, baseline_value=value)

    def table(self) -> str:
        """A small text table for the console."""
        lines = [f"{'':10}{'spearman':>10}{'r2':>10}{'mae':>10}   (n={self.n})"]
        for name, m in (("model", self.model), ("constant", self.baseline)):
            lines.append(f"{name:10}{m.spearman:>10.3f}{m.r2:>10.3f}{m.mae:>10.3f}")
        return "\n".join(lines)


def _checked(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be equal-length vectors, got {y_true.shape} and {y_pred.shape}")
    if len(y_true) < 2:
        raise ValueError(f"need at least 2 videos to evaluate, got {len(y_true)}")
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise ValueError("labels and predictions must be finite")
    return y_true, y_pred


def metric_rows(name: str, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """``name`` (spearman | r2 | mae) of ``y_pred`` against ``y_true`` along the last axis: (..., N) → (...).

    Vectorised so the gate's bootstrap scores thousands of resamples in one call. Spearman is the Pearson
    correlation of average ranks (SciPy's ``rankdata``; equal to ``scipy.stats.spearmanr``) and 0 when either side
    is constant (no ranking information; SciPy would return NaN); R² is 1 − SS_res/SS_tot (as scikit-learn: 1.0 for
    a perfect fit of constant labels, else 0.0 when SS_tot = 0)."""
    if name not in METRIC_DIRECTION:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRIC_DIRECTION)}")
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if name == "mae":
        return np.abs(y_true - y_pred).mean(axis=-1)
    if name == "r2":
        ss_res = ((y_true - y_pred) ** 2).sum(axis=-1)
        ss_tot = ((y_true - y_true.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), np.where(ss_res == 0, 1.0, 0.0))
    rt = rankdata(y_true, axis=-1)
    rp = rankdata(y_pred, axis=-1)
    rt -= rt.mean(axis=-1, keepdims=True)
    rp -= rp.mean(axis=-1, keepdims=True)
    den = np.sqrt((rt ** 2).sum(axis=-1) * (rp ** 2).sum(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(den > 1e-12, (rt * rp).sum(axis=-1) / np.where(den > 1e-12, den, 1), 0.0)
    return np.clip(rho, -1.0, 1.0)


def metric_value(name: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """One metric of ``y_pred`` against ``y_true`` (both (N,), finite, N ≥ 2); see :func:`metric_rows`."""
    y_true, y_pred = _checked(y_true, y_pred)
    return float(metric_rows(name, y_true, y_pred))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> Metrics:
    """Spearman rank correlation, R² and MAE of ``y_pred`` against ``y_true`` (both (N,)); see :func:`metric_value`."""
    y_true, y_pred = _checked(y_true, y_pred)
    return Metrics(**{m: float(metric_rows(m, y_true, y_pred)) for m in ("spearman", "r2", "mae")})


def evaluate_predictions(y_true: np.ndarray, y_pred: np.ndarray, *, baseline_value: float) -> EvalReport:
    """The model's metrics and those of predicting ``baseline_value`` (the training mean) for every video."""
    y_true = np.asarray(y_true, dtype=np.float64)
    baseline = regression_metrics(y_true, np.full_like(y_true, float(baseline_value)))
    return EvalReport(n=int(len(y_true)), model=regression_metrics(y_true, y_pred), baseline=baseline,
                      baseline_value=float(baseline_value))
