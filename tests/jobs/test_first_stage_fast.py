"""The fast first stage ('schur': the two-way effects' normal equations, the controls' part built once) gives
the reference's numbers (linearmodels AbsorbingLS): lift, the three standard errors, n, statuses and reasons,
on small panels of every shape the paper's panel can take."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_panels import synthetic_sales

from jobs.analysis import build_panel, estimate_lifts
from jobs.analysis.first_stage import (
    DEFAULT_FIRST_STAGE,
    FIRST_STAGE_METHODS,
    AbsorbingLift,
    SchurLift,
    estimate_lift,
    first_stage_method,
)

NUMBERS = ["lift", "se", "se_robust", "se_cluster2"]
RTOL = 1e-8
START = pd.Timestamp("2024-03-01")


def product_days(pid: str, days, *, seed: int, post_from: int | None = None, search: float | None = None,
                 lift: float = 3.0) -> pd.DataFrame:
    """Observed product-days (the first-stage frame): sales = α + day effect + lift · post + 2 · search + noise."""
    rng = np.random.default_rng(seed)
    days = np.asarray(sorted(days))
    day_effect = 4 * np.sin(days / 5.0)
    post = (days >= post_from).astype(float) if post_from is not None else np.zeros(len(days))
    s = np.full(len(days), search) if search is not None else np.round(np.maximum(0, rng.normal(1, 1, len(days))), 2)
    sales = rng.uniform(20, 60) + day_effect + lift * post + 2 * s + rng.normal(0, 1.5, len(days))
    return pd.DataFrame({"product_id": pid, "date": START + pd.to_timedelta(days, unit="D"), "daily_sales": sales,
                         "treated": post, "search": s})


def controls_frame(n: int, days: int, *, seed: int, missing: float = 0.0, search: float | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        kept = np.flatnonzero(rng.uniform(size=days) >= missing)
        frames.append(product_days(f"C{i:03d}", kept, seed=seed * 100 + i, search=search))
    return pd.concat(frames, ignore_index=True)


def assert_same(product: pd.DataFrame, controls: pd.DataFrame) -> dict:
    ref = estimate_lift(product, controls, method="absorbing")
    fast = estimate_lift(product, controls, method="schur")
    assert fast.keys() == ref.keys()
    for key in ref:
        if key in NUMBERS and ref["status"] == "ok":
            assert fast[key] == pytest.approx(ref[key], rel=RTOL), key
        elif key not in NUMBERS:
            assert fast[key] == ref[key], key
        else:
            assert np.isnan(fast[key]) and np.isnan(ref[key]), key
    return fast


def test_the_registry_names_both_methods_and_the_fast_one_is_the_default():
    assert FIRST_STAGE_METHODS == {"schur": SchurLift, "absorbing": AbsorbingLift}
    assert DEFAULT_FIRST_STAGE == "schur"
    with pytest.raises(ValueError, match="no first-stage method 'felm'; have schur, absorbing"):
        first_stage_method("felm")


@pytest.mark.parametrize("missing", [0.0, 0.15], ids=["balanced", "unbalanced"])
def test_equal_to_absorbing_ls_on_balanced_and_unbalanced_panels(missing):
    controls = controls_frame(25, 60, seed=1, missing=missing)
    rng = np.random.default_rng(2)
    for k in range(4):
        days = np.flatnonzero(rng.uniform(size=60) >= missing)
        out = assert_same(product_days(f"T{k}", days, seed=50 + k, post_from=20 + 7 * k), controls)
        assert out["status"] == "ok" and out["n"] == len(days) + len(controls)


def test_equal_with_few_post_days_and_with_days_no_control_observes():
    controls = controls_frame(15, 40, seed=3, missing=0.1)
    assert_same(product_days("T1", range(40), seed=7, post_from=38), controls)  # two post days
    assert_same(product_days("T2", range(30, 50), seed=8, post_from=45), controls)  # ten days past the controls'


@pytest.mark.parametrize("search", ["varies", "constant", "constant_in_product_only"])
def test_equal_whether_search_varies_or_not(search):
    constant = search == "constant"
    controls = controls_frame(12, 50, seed=4, search=0.0 if constant else None)
    product = product_days("T1", range(50), seed=9, post_from=25,
                           search=0.0 if search != "varies" else None)
    assert_same(product, controls)


def test_equal_skip_when_the_post_flag_is_collinear_with_the_day_effects():
    # the product is observed only on days no control observes: each of its rows has a day of its own, so
    # the day effects absorb its post flag entirely
    controls = controls_frame(10, 30, seed=5)
    product = product_days("T1", range(30, 40), seed=10, post_from=35)
    out = assert_same(product, controls)
    assert out["reason"] == "estimation_failed: the post-video flag is absorbed by the fixed effects"
    # ... and with search constant everywhere, nothing is left to estimate: linearmodels' own error
    controls = controls_frame(10, 30, seed=5, search=1.0)
    out = assert_same(product_days("T1", range(30, 40), seed=10, post_from=35, search=1.0), controls)
    assert out["reason"].startswith("estimation_failed: ValueError: All columns in exog have been fully absorbed")


def test_equal_skip_reasons_without_pre_or_post_days():
    controls = controls_frame(6, 20, seed=6)
    assert assert_same(product_days("T1", range(20), seed=11, post_from=0), controls)["reason"] == "no_pre_period"
    assert assert_same(product_days("T1", range(20), seed=11), controls)["reason"] == "no_post_period"


def test_equal_skip_when_no_degrees_of_freedom_are_left():
    controls = controls_frame(1, 3, seed=7)
    out = assert_same(product_days("T1", range(3), seed=12, post_from=2), controls)
    assert out["reason"].startswith("estimation_failed: ValueError: The small-sample adjustment")


def test_estimate_lifts_equal_on_a_panel_with_gaps_and_the_two_way_clusters_use_every_product_day():
    lifts = {f"T{i}": 2.0 + i for i in range(5)}
    panel = build_panel(synthetic_sales(lifts=lifts, n_controls=20, noise=1.0, seed=8, gaps=True), source="test")
    ref = estimate_lifts(panel, method="absorbing")
    fast = estimate_lifts(panel)
    pd.testing.assert_frame_equal(fast.drop(columns=NUMBERS), ref.drop(columns=NUMBERS))
    for col in NUMBERS:
        np.testing.assert_allclose(fast[col], ref[col], rtol=RTOL)
    # 25 products × 70 days is beyond int8 product×day ids: the clusters must not merge product-days
    assert (fast["se_cluster2"] != fast["se_robust"]).all()


def test_the_command_line_offers_exactly_the_registered_first_stage_methods():
    from typing import get_args

    from jobs.analysis.analyze import FirstStage
    from jobs.analysis.first_stage import DEFAULT_FIRST_STAGE, FIRST_STAGE_METHODS

    assert set(get_args(FirstStage)) == set(FIRST_STAGE_METHODS) and DEFAULT_FIRST_STAGE == "schur"
