"""Evaluation always reports the model beside a constant (train-mean) prediction."""
from __future__ import annotations

import numpy as np
import pytest

from models.evaluate import evaluate_predictions, regression_metrics


def test_perfect_and_reversed_predictions():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    m = regression_metrics(y, y * 10)
    assert m.spearman == pytest.approx(1.0) and m.r2 < 0  # ranks perfectly, squared error terrible
    m = regression_metrics(y, y)
    assert (m.spearman, m.r2, m.mae) == (pytest.approx(1.0), pytest.approx(1.0), pytest.approx(0.0))
    assert regression_metrics(y, -y).spearman == pytest.approx(-1.0)


def test_constant_baseline_by_hand():
    y = np.array([0.0, 1.0, 2.0, 5.0])
    report = evaluate_predictions(y, np.array([0.1, 0.9, 2.5, 4.0]), baseline_value=1.0)
    # the constant 1.0: MAE = (1 + 0 + 1 + 4) / 4; R² = 1 − Σ(y−1)² / Σ(y−ȳ)² = 1 − 18 / 14
    assert report.baseline.mae == pytest.approx(1.5)
    assert report.baseline.r2 == pytest.approx(1 - 18 / 14)
    assert report.baseline.spearman == 0.0  # a constant ranks nothing
    assert report.model.spearman == pytest.approx(1.0)
    assert report.beats_baseline("spearman") and report.beats_baseline("r2") and report.beats_baseline("mae")
    flat = report.as_flat_dict("test_")
    assert flat["test_baseline_mae"] == pytest.approx(1.5) and flat["test_n"] == 4
    assert "constant" in report.table()


def test_a_model_no_better_than_the_constant_does_not_beat_it():
    y = np.array([3.0, 1.0, 2.0, 0.0, 4.0])
    report = evaluate_predictions(y, np.full(5, 2.0), baseline_value=2.0)
    assert not report.beats_baseline("spearman") and not report.beats_baseline("r2")


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="equal-length"):
        regression_metrics(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least 2"):
        regression_metrics(np.zeros(1), np.zeros(1))
    with pytest.raises(ValueError, match="finite"):
        regression_metrics(np.array([1.0, np.nan]), np.zeros(2))


def test_reports_round_trip_through_flat_dicts():
    from models.evaluate import EvalReport

    y = np.array([0.0, 1.0, 2.0, 5.0, 3.0])
    report = evaluate_predictions(y, np.array([0.1, 0.9, 2.5, 4.0, 2.0]), baseline_value=1.7)
    for prefix in ("test_", "champion_test_", ""):
        assert EvalReport.from_flat_dict(report.as_flat_dict(prefix), prefix) == report
    # as MLflow returns them: floats only, mixed with other metrics of the run
    logged = {k: float(v) for k, v in report.as_flat_dict("test_").items()}
    logged.update(val_loss=0.3, test_truth_spearman=0.9)
    back = EvalReport.from_flat_dict(logged)
    assert back == report and isinstance(back.n, int)


def test_a_report_logged_without_baseline_keys_takes_the_given_baseline():
    from models.evaluate import EvalReport

    y = np.array([0.0, 1.0, 2.0, 5.0])
    candidate = evaluate_predictions(y, np.array([0.1, 0.9, 2.5, 4.0]), baseline_value=1.0)
    champion = evaluate_predictions(y, np.array([1.0, 0.0, 2.0, 3.0]), baseline_value=1.0)
    flat = {k: v for k, v in champion.as_flat_dict("c_").items() if not k.startswith("c_baseline_")}
    assert EvalReport.from_flat_dict(flat, "c_", baseline=candidate) == champion
    with pytest.raises(KeyError, match="c_baseline_value"):
        EvalReport.from_flat_dict(flat, "c_")
    with pytest.raises(KeyError, match="test_spearman"):
        EvalReport.from_flat_dict({k: v for k, v in candidate.as_flat_dict().items() if k != "test_spearman"})
