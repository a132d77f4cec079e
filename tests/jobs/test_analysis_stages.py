"""jobs.analysis' two stages on small hand-made panels with known answers: the per-product first stage (lifts,
standard errors, skips) and the second stage's specifications and diagnostics (pure pandas; no Spark)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_panels import synthetic_sales

from jobs.analysis import build_panel, estimate_lift, estimate_lifts, lift_summary
from jobs.analysis.diagnostics import FIRST_STAGE_SE, influence, measurement_error, out_of_fold_r2, robustness
from jobs.analysis.second_stage import fit_spec, paper_specs

# ----------------------------------------------------------------------------------------- first stage

def test_first_stage_recovers_known_lifts_exactly_without_noise():
    lifts = {"T1": 12.5, "T2": -4.0, "T3": 0.0}
    panel = build_panel(synthetic_sales(lifts=lifts, n_controls=10), source="test")
    out = estimate_lifts(panel)
    assert out["status"].eq("ok").all()
    got = out.set_index("product_id")["lift"]
    for pid, lift in lifts.items():
        assert got[pid] == pytest.approx(lift, abs=1e-6)
    assert out["n"].tolist() == [70 * 11] * 3  # the product's days plus every control's
    assert (out["n_controls"] == 10).all()


def test_first_stage_regresses_on_observed_days_only_but_imputes_over_gaps():
    lifts = {"T1": 9.0, "T2": 3.0}
    panel = build_panel(synthetic_sales(lifts=lifts, n_controls=8, gaps=True), source="test")
    out = estimate_lifts(panel).set_index("product_id")
    assert (out["n"] == 67 * 9).all()  # 3 gap days per product are not observations
    # the gaps break the exact recursion locally (a filled day's difference is 0), so only close, not exact
    assert out.loc["T1", "lift"] == pytest.approx(9.0, abs=2.5)


def test_first_stage_with_noise_is_unbiased_and_reports_both_standard_errors():
    lifts = {f"T{i}": 10.0 for i in range(6)}
    panel = build_panel(synthetic_sales(lifts=lifts, n_controls=15, noise=2.0, seed=5), source="test")
    out = estimate_lifts(panel)
    assert abs(out["lift"].mean() - 10.0) < 3 * out["se"].mean() / np.sqrt(len(out))
    assert (out["se"] > 0).all() and (out["se_robust"] > 0).all()
    assert lift_summary(out)["n"] == 6


def test_first_stage_clusters_two_way_by_product_and_day():
    from linearmodels.iv.absorbing import AbsorbingLS

    panel = build_panel(synthetic_sales(lifts={"T1": 10.0}, n_controls=15, noise=2.0, seed=5), source="test")
    out = estimate_lifts(panel).iloc[0]
    d = panel.days[panel.days["observed"]].copy()
    d.loc[d["product_id"] != "T1", "treated"] = 0.0
    fe = pd.DataFrame({"product": pd.Categorical(d["product_id"]), "day": pd.Categorical(d["date"])})
    model = AbsorbingLS(d["daily_sales"], d[["treated", "search"]], absorb=fe, drop_absorbed=True)

    def se(**kw):
        return float(model.fit(debiased=True, **kw).std_errors["treated"])

    # int64 codes: linearmodels forms the product×day cluster ids in the codes' dtype, which int8 overflows
    codes = fe.apply(lambda c: c.cat.codes.astype(np.int64))
    assert out["se_cluster2"] == pytest.approx(se(cov_type="clustered", clusters=codes), rel=1e-9)
    one_way = [se(cov_type="clustered", clusters=codes[[c]]) for c in ("product", "day")]
    assert all(abs(out["se_cluster2"] - v) > 1e-3 * v for v in one_way)  # both dimensions, not one
    assert len({round(out[c], 9) for c in FIRST_STAGE_SE}) == 3


def test_a_product_whose_observed_days_are_all_post_video_is_a_control_like_the_papers():
    s = synthetic_sales(lifts={"T1": 5.0, "T2": 5.0}, n_controls=4)
    s = s[~((s["product_id"] == "T2") & (s["treated"] == 0))]
    s = s.assign(day=s["day"] - s.groupby("product_id")["day"].transform("min"))
    panel = build_panel(s, source="test")
    assert panel.treated_ids == ["T1"] and "T2" in panel.control_ids


def test_estimate_lift_skips_with_a_reason_instead_of_failing():
    s = synthetic_sales(lifts={"T1": 5.0}, n_controls=3)
    panel = build_panel(s, source="test")
    rows = panel.days[panel.days["product_id"] == "T1"]
    controls = panel.days[panel.days["product_id"] != "T1"].assign(treated=0.0)
    assert estimate_lift(rows[rows["treated"] == 1], controls)["reason"] == "no_pre_period"
    assert estimate_lift(rows[rows["treated"] == 0], controls)["reason"] == "no_post_period"
    ok = estimate_lift(rows, controls)
    assert ok["status"] == "ok" and ok["lift"] == pytest.approx(5.0, abs=1e-6)


def test_estimate_lifts_refuses_unknown_products():
    panel = build_panel(synthetic_sales(lifts={"T1": 1.0}, n_controls=2), source="test")
    with pytest.raises(KeyError):
        estimate_lifts(panel, ["C00"])



# ----------------------------------------------------------------------------------------- second stage

def _frame(n: int = 60, slope: float = 50.0, seed: int = 2, outlier: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    f = pd.DataFrame({"pe": rng.uniform(0, 1, n), "e": rng.uniform(0, 1, n), "p": rng.uniform(0, 1, n)},
                     index=pd.Index([f"P{i:03d}" for i in range(n)], name="product_id"))
    f["lift"] = 3.0 + slope * f["pe"] + rng.normal(0, 1.0, n)
    if outlier:
        f.iloc[0, f.columns.get_loc("pe")] = 1.0
        f.iloc[0, f.columns.get_loc("lift")] = 400.0
    f["e_p"] = f["e"] * f["p"]
    f["influencer_id"] = [f"i{i % 7}" for i in range(n)]
    return f


def test_fit_spec_reports_every_covariance_and_the_known_slope():
    f = _frame()
    fit = fit_spec(f, paper_specs()[0], cluster="influencer_id")
    assert fit.focus("coef") == pytest.approx(50.0, abs=1.5)
    for col in ("se", "se_hc1", "se_hc3", "se_cluster"):
        assert fit.focus(col) > 0
    assert fit.focus("se_hc3") >= fit.focus("se_hc1") * 0.99  # HC3 inflates high-leverage residuals
    assert fit.n == 60 and fit.skipped is None and len(fit.product_ids) == 60


def test_fit_spec_skips_with_a_reason_when_products_are_too_few_or_scores_constant():
    few = fit_spec(_frame(n=3), paper_specs()[4])
    assert few.skipped.startswith("too_few_products")
    flat = fit_spec(_frame().assign(pe=0.5), paper_specs()[0])
    assert flat.skipped.startswith("no_variation")
    assert np.isnan(flat.focus("coef"))


def test_influence_flags_a_planted_outlier_and_robustness_removes_its_pull():
    f = _frame(outlier=True)
    fit = fit_spec(f, paper_specs()[0])
    infl = influence(fit)
    assert infl["cooks_d"].idxmax() == "P000" and infl.loc["P000", "flagged"]
    assert infl.loc["P000", "cooks_d"] > 4 / 60
    assert set(infl.columns) == {"cooks_d", "leverage", "dfbetas", "flagged"}
    rob = robustness(f, fit, infl["flagged"]).set_index("check")
    dropped = rob.loc[[c for c in rob.index if c.startswith("drop")][0]]
    assert abs(dropped["coef"] - 50) < abs(fit.focus("coef") - 50)
    assert abs(rob.loc["median regression", "coef"] - 50) < 5


def test_measurement_error_weights_noisy_lifts_down():
    """Lifts with known, very unequal first-stage noise: the noise share is mean(se²)/var(lift), and weighting
    by 1/(σ² + se²) estimates the slope with a smaller (HC1) error than unweighted OLS."""
    rng = np.random.default_rng(4)
    f = _frame(n=200, slope=50.0, seed=4)
    se = np.where(np.arange(200) % 4 == 0, 60.0, 1.0)  # a quarter of the lifts are 60x noisier
    f["lift"] = 3.0 + 50.0 * f["pe"] + rng.normal(0, 1.0, 200) + rng.normal(0, se)
    for col in FIRST_STAGE_SE:
        f[col] = se
    fit = fit_spec(f, paper_specs()[0])
    me = measurement_error(f, fit).set_index("se_kind").loc[FIRST_STAGE_SE["se_cluster2"]]
    assert me["noise_share"] == pytest.approx(np.mean(se ** 2) / f["lift"].var(ddof=1))
    assert me["se"] < 0.5 * fit.focus("se_hc1")
    assert abs(me["coef"] - 50.0) < 3 * me["se"]
    assert (me["n"], me["undefined"]) == (200, 0)
    f.iloc[:10, f.columns.get_loc("se_cluster2")] = np.nan  # a negative two-way variance: no SE
    part = measurement_error(f, fit).set_index("se_kind").loc[FIRST_STAGE_SE["se_cluster2"]]
    assert (part["n"], part["undefined"]) == (190, 10)
    assert part["noise_share"] == pytest.approx(np.mean(se[10:] ** 2) / f["lift"].iloc[10:].var(ddof=1))


def test_out_of_fold_r2_is_high_for_a_real_relation_and_not_positive_for_noise():
    f = _frame(slope=50.0)
    assert out_of_fold_r2(f, fit_spec(f, paper_specs()[0]), n_repeats=3)["mean"] > 0.9
    noise = _frame(slope=0.0)
    assert out_of_fold_r2(noise, fit_spec(noise, paper_specs()[0]), n_repeats=3)["mean"] < 0.05


def test_specification_six_uses_controls_and_fixed_effects():
    specs = paper_specs(["price", "discount"], ["category"])
    assert [s.name for s in specs] == ["(1)", "(2)", "(3)", "(4)", "(5)", "(6)"]
    assert specs[5].formula == "lift ~ pe + e * p + price + discount + C(category)"
    assert len(paper_specs()) == 5
