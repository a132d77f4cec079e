"""The promotion gate on known predictions: noise never passes, real signal does, the champion is compared fairly."""
from __future__ import annotations

import numpy as np
import pytest

from models.gate import KEPT, PROMOTED, REJECTED, ChampionEvidence, GateResult, evaluate_gate, paired_difference
from models.settings import GateSettings

RNG = np.random.default_rng(0)
Y = RNG.normal(size=30)
GOOD = 0.8 * Y + 0.3 * RNG.normal(size=30)  # Spearman ≈ 0.9, R² ≈ 0.8
FAST = GateSettings(bootstrap=500)


def test_paired_difference_is_zero_for_identical_predictions_and_signed_by_the_metric():
    iv = paired_difference(Y, GOOD, GOOD, metric="spearman", resamples=200, confidence=0.95, seed=0)
    assert (iv.estimate, iv.low, iv.high, iv.n) == (0.0, 0.0, 0.0, 30)
    worse = GOOD + RNG.normal(size=30)
    for metric in ("spearman", "r2", "mae"):  # candidate better → Δ > 0 whether higher or lower is better
        iv = paired_difference(Y, GOOD, worse, metric=metric, resamples=300, confidence=0.95, seed=1)
        assert iv.estimate > 0 and iv.low < iv.estimate < iv.high
    with pytest.raises(ValueError, match="equal-length"):
        paired_difference(Y, GOOD[:5], GOOD, metric="r2", resamples=100, confidence=0.9, seed=0)


def test_a_real_model_without_a_champion_is_promoted_with_its_interval():
    g = evaluate_gate(Y, GOOD, baseline_value=0.1, settings=FAST)
    assert g.status == PROMOTED and g.promoted and "no current champion" in g.reason and "95% CI" in g.reason
    c = g.check("vs_constant")
    assert c.passed and c.low > 0.5 and c.value == pytest.approx(g.check("vs_constant").value)
    m = g.metrics()
    assert m["gate_passed"] == 1.0 and m["gate_vs_constant_low"] == c.low and m["gate_test_videos_value"] == 30
    assert GateResult.from_dict(g.to_dict()) == g


def test_noise_is_rejected_and_too_few_videos_decide_nothing():
    noise = RNG.normal(size=30)
    g = evaluate_gate(Y, noise, baseline_value=0.0, settings=FAST)
    assert g.status == REJECTED and ("does not lie above 0" in g.reason or "R²" in g.reason)
    g = evaluate_gate(Y[:10], GOOD[:10], baseline_value=0.0, settings=FAST)
    assert g.status == REJECTED and "fewer than train.gate.min_test_videos = 15" in g.reason
    assert [c.name for c in g.checks] == ["test_videos"]
    # a model that ranks well but whose predictions are badly scaled: R² < 0 on test
    g = evaluate_gate(Y, 10 * GOOD, baseline_value=0.0, settings=FAST)
    assert g.status == REJECTED and not g.check("r2").passed and g.check("vs_constant").passed


def test_noise_models_almost_never_pass():
    """The point of the gate: of many models that predict noise, at most a few per cent get through."""
    settings = GateSettings(bootstrap=1000)
    rng = np.random.default_rng(42)
    interval_passed = promoted = 0
    for _ in range(400):
        y = rng.normal(size=20)
        g = evaluate_gate(y, rng.normal(size=20), baseline_value=float(rng.normal(0, 0.2)), settings=settings)
        interval_passed += g.check("vs_constant").passed
        promoted += g.promoted
    # the one-sided 97.5 % lower bound alone lets ~2.5 % through (measured: 10 of 400); R² > 0 stops nearly all
    assert interval_passed <= 20 and promoted <= 4


def test_the_champion_is_compared_on_the_same_videos_it_did_not_train_on():
    champ_good = ChampionEvidence("3", predictions=GOOD + 0.05 * RNG.normal(size=30))
    g = evaluate_gate(Y, GOOD, baseline_value=0.0, settings=FAST, champion=champ_good)
    assert g.status == KEPT and "does not lie above +0.000" in g.reason and g.champion_version == "3"
    # "not_worse" with a margin lets an equally good candidate replace it
    lenient = GateSettings(bootstrap=500, champion="not_worse", margin=0.1)
    assert evaluate_gate(Y, GOOD, baseline_value=0.0, settings=lenient, champion=champ_good).promoted
    weak = ChampionEvidence("3", predictions=0.3 * Y + RNG.normal(size=30))
    g = evaluate_gate(Y, GOOD, baseline_value=0.0, settings=FAST, champion=weak)
    assert g.promoted and "vs champion v3" in g.reason and g.check("vs_champion").low > 0
    # only the videos the champion never trained on count; too few of them: no fair comparison
    usable = np.arange(30) < 10
    g = evaluate_gate(Y, GOOD, baseline_value=0.0, settings=FAST,
                      champion=ChampionEvidence("3", predictions=weak.predictions, usable=usable))
    assert g.status == KEPT and "only 10 of the 30 test videos" in g.reason
    g = evaluate_gate(Y, GOOD, baseline_value=0.0, settings=FAST,
                      champion=ChampionEvidence("3", unavailable="cannot load it: gone"))
    assert g.status == KEPT and "could not be evaluated" in g.reason and "gone" in g.reason
    # a candidate that is not useful is rejected before any champion comparison
    g = evaluate_gate(Y, RNG.normal(size=30), baseline_value=0.0, settings=FAST, champion=weak)
    assert g.status == REJECTED and g.check("vs_champion") is None
