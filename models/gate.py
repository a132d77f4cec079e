"""The promotion gate: may a newly trained version become ``@champion``? Evidence from its held-out test videos.

::

    test labels y (N,), candidate predictions (N,), the constant (training mean), the champion's predictions
      │
      ├─ test_videos   N ≥ min_test_videos
      ├─ r2            R² of the candidate on test > 0 (better than the test videos' own mean)
      ├─ vs_constant   Δ = metric(candidate) − metric(constant) on B paired bootstrap resamples of the test
      │                videos (the same resample for both): the interval's lower end > 0
      └─ vs_champion   Δ = metric(candidate) − metric(champion) on the candidate's test videos the champion
                       did not train on, paired likewise: lower end > +margin ("beat") or > −margin ("not_worse")
      ▼
    GateResult: promoted | rejected (fails the first three: not evidence of a useful model) | kept (a useful model,
                but the champion stays)

For mae (lower is better) Δ is taken the other way round, so Δ > 0 always means "candidate better". A constant
ranks nothing: its Spearman is 0 on every resample (models.evaluate.metric_value). The intervals are bootstrap
percentile intervals (scipy.stats.bootstrap, paired). Pure: arrays in, a result out; no console, no MLflow
(models.logged_evaluation logs it, models.promotion_text words it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import bootstrap

from models.evaluate import METRIC_DIRECTION, metric_rows, metric_value
from models.settings import GateSettings

__all__ = ["Interval", "Check", "ChampionEvidence", "GateResult", "paired_difference", "evaluate_gate",
           "PROMOTED", "REJECTED", "KEPT"]

PROMOTED, REJECTED, KEPT = "promoted", "rejected", "kept"


@dataclass(frozen=True)
class Interval:
    """Observed difference (candidate better > 0) with its bootstrap interval [low, high] at ``confidence``."""

    estimate: float
    low: float
    high: float
    confidence: float
    n: int


def paired_difference(y: np.ndarray, candidate: np.ndarray, other: np.ndarray, *, metric: str, resamples: int,
                      confidence: float, seed: int) -> Interval:
    """Δ = direction · (metric(y, candidate) − metric(y, other)) and its paired bootstrap percentile interval: the
    videos are resampled with replacement, the same draw scoring both predictions. Arrays (N,), N ≥ 2."""
    y, a, b = (np.asarray(v, dtype=np.float64) for v in (y, candidate, other))
    if not (y.shape == a.shape == b.shape) or y.ndim != 1 or len(y) < 2:
        raise ValueError(f"need equal-length vectors of at least 2 videos, got {y.shape}, {a.shape}, {b.shape}")
    if not (np.isfinite(y).all() and np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("labels and predictions must be finite")
    sign = METRIC_DIRECTION[metric]

    def delta(yy, aa, bb, axis=-1):  # (..., N) resamples → (...) differences
        return sign * (metric_rows(metric, yy, aa) - metric_rows(metric, yy, bb))

    res = bootstrap((y, a, b), delta, paired=True, vectorized=True, n_resamples=resamples,
                    confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not np.isfinite(low):  # every resample gave the same Δ (scipy returns NaN for a degenerate distribution)
        low = high = float(np.median(res.bootstrap_distribution))
    return Interval(float(delta(y, a, b)), low, high, confidence, int(len(y)))


@dataclass(frozen=True)
class ChampionEvidence:
    """The current champion, as far as it can be compared with the candidate.

    ``predictions`` (N,) on the candidate's test videos (None when it could not be evaluated: ``unavailable``
    says why); ``usable`` (N,) bool: the test videos it did not train on (None: all; ``note`` says when its
    training videos are not recorded)."""

    version: str
    predictions: np.ndarray | None = None
    usable: np.ndarray | None = None
    unavailable: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Check:
    name: str  # test_videos | r2 | vs_constant | vs_champion
    passed: bool
    value: float  # the observed number: N, R², or Δ
    threshold: float  # passed means value (test_videos, r2) or the interval's low end (vs_*) is above it (≥ for N)
    low: float | None = None
    high: float | None = None
    n: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class GateResult:
    status: str  # promoted | rejected | kept
    reason: str
    metric: str
    checks: tuple[Check, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    champion_version: str | None = None

    @property
    def promoted(self) -> bool:
        return self.status == PROMOTED

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow: gate_passed, gate_<check>_value / _low / _high / _n / _passed."""
        out = {"gate_passed": float(self.promoted)}
        for c in self.checks:
            out[f"gate_{c.name}_passed"] = float(c.passed)
            for key in ("value", "low", "high", "n"):
                v = getattr(c, key)
                if v is not None and np.isfinite(v):
                    out[f"gate_{c.name}_{key}"] = float(v)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "checks": [asdict(c) for c in self.checks]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GateResult":
        return cls(status=d["status"], reason=d["reason"], metric=d["metric"],
                   checks=tuple(Check(**c) for c in d["checks"]), settings=dict(d.get("settings") or {}),
                   champion_version=d.get("champion_version"))


def _ci(iv: Interval) -> str:
    return f"{iv.estimate:+.3f} ({iv.confidence:.0%} CI {iv.low:+.3f} to {iv.high:+.3f}, {iv.n} videos)"


def evaluate_gate(y: np.ndarray, candidate: np.ndarray, *, baseline_value: float, settings: GateSettings,
                  champion: ChampionEvidence | None = None) -> GateResult:
    """Run the checks (module docstring) in order and decide. ``y``, ``candidate``: (N,) test labels and
    predictions; ``baseline_value``: the constant (the training labels' mean)."""
    y = np.asarray(y, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    s, m = settings, settings.metric
    boot: dict[str, Any] = {"metric": m, "resamples": s.bootstrap, "confidence": s.confidence, "seed": s.seed}
    checks: list[Check] = []

    def result(status: str, reason: str) -> GateResult:
        return GateResult(status, reason, m, tuple(checks), s.model_dump(),
                          None if champion is None else champion.version)

    n = len(y)
    checks.append(Check("test_videos", n >= s.min_test_videos, float(n), float(s.min_test_videos), n=n))
    if n < s.min_test_videos:
        return result(REJECTED, f"{n} test videos, fewer than train.gate.min_test_videos = {s.min_test_videos}: "
                                "no evidence either way; label more videos")
    r2 = metric_value("r2", y, candidate)
    checks.append(Check("r2", r2 > 0, r2, 0.0, n=n))
    iv = paired_difference(y, candidate, np.full_like(y, float(baseline_value)), **boot)
    checks.append(Check("vs_constant", iv.low > 0, iv.estimate, 0.0, iv.low, iv.high, iv.n))
    failed = [c for c in checks if not c.passed]
    if failed:
        why = [f"R² {r2:.3f} is not above 0" if c.name == "r2" else
               f"{m} vs the constant {_ci(iv)}: the interval does not lie above 0" for c in failed]
        return result(REJECTED, "; ".join(why))
    beats = f"{m} vs the constant {_ci(iv)}, R² {r2:.3f}"
    if champion is None:
        return result(PROMOTED, f"no current champion; {beats}")
    threshold = s.margin if s.champion == "beat" else -s.margin
    if champion.unavailable is not None or champion.predictions is None:
        checks.append(Check("vs_champion", False, float("nan"), threshold, note=champion.unavailable))
        return result(KEPT, f"{beats}; but champion v{champion.version} could not be evaluated on these test videos "
                            f"({champion.unavailable}); move the alias by hand if intended")
    usable = np.ones(n, bool) if champion.usable is None else np.asarray(champion.usable, bool)
    k = int(usable.sum())
    if k < s.min_test_videos:
        checks.append(Check("vs_champion", False, float("nan"), threshold, n=k, note=champion.note))
        return result(KEPT, f"{beats}; but only {k} of the {n} test videos were not in champion v{champion.version}'s "
                            f"training data (fewer than {s.min_test_videos}): no fair comparison, the champion stays")
    civ = paired_difference(y[usable], candidate[usable], np.asarray(champion.predictions, float)[usable], **boot)
    ok = civ.low > threshold
    checks.append(Check("vs_champion", ok, civ.estimate, threshold, civ.low, civ.high, civ.n, champion.note))
    rule = "beat" if s.champion == "beat" else "not fall behind"
    versus = f"{m} vs champion v{champion.version} {_ci(civ)}"
    if ok:
        return result(PROMOTED, f"{beats}; {versus}")
    return result(KEPT, f"{beats}; but {versus}: the interval does not lie above {threshold:+.3f}, so it does not "
                        f"{rule} the champion (train.gate.champion = {s.champion})")
