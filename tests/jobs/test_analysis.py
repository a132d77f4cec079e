"""jobs.analysis on small hand-made panels with known answers (pure pandas; no Spark)."""
from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pandas as pd
import pytest

from jobs.analysis import (
    AnalysisError,
    build_panel,
    complete_days,
    estimate_lift,
    estimate_lifts,
    impute_daily_sales,
    lift_summary,
    load_paper_panel,
    minmax,
    panel_from_lake_frames,
    sales_lift_rows,
    second_stage,
)
from jobs.analysis.diagnostics import FIRST_STAGE_SE, influence, measurement_error, out_of_fold_r2, robustness
from jobs.analysis.second_stage import fit_spec, paper_specs, second_stage_frame
from jobs.contracts import spark_schema

START = dt.date(2024, 3, 1)


# ----------------------------------------------------------------------------------------- synthetic data

def rolling_from_daily(daily: np.ndarray) -> np.ndarray:
    """30-day rolling sums of ``daily`` whose unseen 29 days before day 0 equal day 0 — the one history for
    which the paper's imputation recovers the daily series exactly."""
    padded = np.concatenate([np.full(29, daily[0]), daily])
    return np.convolve(padded, np.ones(30), mode="valid")


def synthetic_sales(*, lifts: dict[str, float], n_controls: int = 12, days: int = 70, noise: float = 0.0,
                    search_effect: float = 2.0, seed: int = 0, gaps: bool = False) -> pd.DataFrame:
    """A product-day panel (build_panel's columns plus daily_sales) with daily sales
    α_i + γ_t + lift_i · post + search_effect · search + noise; treated products post from a product-specific
    day, controls never. With ``gaps`` a few days of each product are missing (the recursion still sees them
    forward-filled)."""
    rng = np.random.default_rng(seed)
    day_effect = 5 * np.sin(np.arange(days) / 4.0) + rng.normal(0, 1, days)
    rows = []
    ids = list(lifts) + [f"C{i:02d}" for i in range(n_controls)]
    for k, pid in enumerate(ids):
        alpha = rng.uniform(20, 60)
        search = np.round(np.maximum(0, rng.normal(1, 1, days)), 2)
        start = 20 + 3 * k if pid in lifts else days + 1
        post = (np.arange(days) >= start).astype(float)
        daily = alpha + day_effect + lifts.get(pid, 0.0) * post + search_effect * search + rng.normal(0, noise, days)
        frame = pd.DataFrame({"product_id": pid, "day": np.arange(days),
                              "date": pd.Timestamp(START) + pd.to_timedelta(np.arange(days), unit="D"),
                              "rolling_sales": rolling_from_daily(daily), "daily_sales": daily, "treated": post,
                              "search": search})
        if gaps:
            frame = frame.drop(index=[5, 6, 41]).reset_index(drop=True)  # rows of days 5, 6, 41 missing
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def lake_frames(*, n_treated: int = 8, n_controls: int = 10, days: int = 60, seed: int = 1):
    """taobao_sales / campaign_videos / pe_scores frames where the lift is 40 · true PE (+ small noise)."""
    rng = np.random.default_rng(seed)
    pe = rng.uniform(0.05, 0.6, n_treated)
    lifts = {f"T{i:02d}": float(40 * pe[i] + rng.normal(0, 0.5)) for i in range(n_treated)}
    s = synthetic_sales(lifts=lifts, n_controls=n_controls, days=days, noise=0.3, seed=seed)
    sales = pd.DataFrame({"product_id": s["product_id"], "date": s["date"].dt.date,
                          "rolling_sales_30d": s["rolling_sales"], "daily_sales": s["daily_sales"],
                          "price": 10.0, "discount": 1.0, "search_index": s["search"],
                          "advertised": s["treated"].astype(bool)})
    first_post = s[s["treated"] == 1].groupby("product_id")["date"].min()
    videos = pd.DataFrame({"video_id": [f"v-{p}" for p in lifts], "product_id": list(lifts),
                           "influencer_id": [f"inf{i % 3}" for i in range(n_treated)],
                           "campaign_id": "camp-1", "video_uri": None,
                           "published_at": [first_post[p].tz_localize("UTC") + pd.Timedelta(hours=9) for p in lifts]})
    e = rng.uniform(1e3, 5e3, n_treated)
    scores = pd.DataFrame({"video_id": videos["video_id"], "model_version": "3", "pe_raw": pe / 100,
                           "pe_share": pe, "e_score": e, "p_score": rng.uniform(1e4, 1e5, n_treated)})
    return sales, videos, scores, lifts


# ----------------------------------------------------------------------------------------- panel

def test_imputation_recovers_daily_sales_when_history_is_flat():
    daily = np.random.default_rng(3).uniform(0, 100, 95)
    np.testing.assert_allclose(impute_daily_sales(rolling_from_daily(daily)), daily, atol=1e-9)


def test_imputation_matches_the_papers_recursion_literally():
    r = np.random.default_rng(4).uniform(50, 500, 77)
    expected = np.empty_like(r)
    for j in range(len(r)):
        if j == 0:
            expected[j] = r[0] / 30
        elif j < 30:
            expected[j] = r[j] - r[j - 1] + r[0] / 30
        else:
            expected[j] = r[j] - r[j - 1] + expected[j - 30]
    np.testing.assert_allclose(impute_daily_sales(r), expected, rtol=1e-12, atol=1e-9)
    assert impute_daily_sales(np.array([]).astype(float)).shape == (0,)


def test_complete_days_fills_gaps_forward_and_marks_them():
    frame = pd.DataFrame({"product_id": ["a", "a", "a", "b"], "day": [0, 1, 4, 0],
                          "date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-05", "2024-02-01"]),
                          "rolling_sales": [1.0, 2.0, 5.0, 9.0]})
    out = complete_days(frame, fill=["rolling_sales"])
    a = out[out["product_id"] == "a"]
    assert a["day"].tolist() == [0, 1, 2, 3, 4]
    assert a["rolling_sales"].tolist() == [1.0, 2.0, 2.0, 2.0, 5.0]
    assert a["observed"].tolist() == [True, True, False, False, True]
    assert a["date"].dt.strftime("%m-%d").tolist() == ["01-01", "01-02", "01-03", "01-04", "01-05"]
    assert out[out["product_id"] == "b"]["observed"].tolist() == [True]


def test_build_panel_assigns_roles_from_the_flag_changing_within_the_panel():
    s = synthetic_sales(lifts={"T1": 5.0, "T2": -3.0}, n_controls=3)
    s.loc[s["product_id"] == "C00", "treated"] = 1.0  # treated before the window: a control, like the paper's
    panel = build_panel(s, source="test")
    assert panel.treated_ids == ["T1", "T2"]
    assert panel.control_ids == ["C00", "C01", "C02"]
    assert panel.days["observed"].all()


@pytest.mark.parametrize("mutate, reason", [
    (lambda s: s.drop(columns=["search"]), "missing_columns"),
    (lambda s: s.iloc[0:0], "empty_panel"),
    (lambda s: pd.concat([s, s.iloc[[0]]]), "duplicate_rows"),
    (lambda s: s.assign(treated=s["treated"].replace(1.0, 2.0)), "bad_values"),
    (lambda s: s.assign(rolling_sales=s["rolling_sales"].replace(s["rolling_sales"].iloc[3], np.inf)), "bad_values"),
    (lambda s: s.assign(treated=0.0), "no_treated_products"),
    (lambda s: s[s["product_id"].str.startswith("T")], "no_control_products"),
])
def test_build_panel_rejects_bad_input_with_a_reason(mutate, reason):
    s = synthetic_sales(lifts={"T1": 5.0}, n_controls=2)
    with pytest.raises(AnalysisError) as err:
        build_panel(mutate(s), source="test")
    assert err.value.reason == reason
    assert reason in str(err.value)


def test_build_panel_drops_missing_sales_and_fills_missing_search_with_notes():
    s = synthetic_sales(lifts={"T1": 5.0}, n_controls=2)
    s.loc[3, "rolling_sales"] = np.nan
    s.loc[4, "search"] = np.nan
    panel = build_panel(s, source="test")
    assert len(panel.notes) == 2
    row3 = panel.days[(panel.days["product_id"] == s.loc[3, "product_id"]) & (panel.days["day"] == 3)].iloc[0]
    assert not row3["observed"] and row3["rolling_sales"] == s.loc[2, "rolling_sales"]  # forward-filled gap
    assert panel.days["search"].notna().all()


def test_minmax_maps_to_unit_interval_and_constant_to_zero():
    assert minmax(pd.Series([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert minmax(pd.Series([7.0, 7.0])).tolist() == [0.0, 0.0]


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

    codes = fe.apply(lambda c: c.cat.codes)
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


# ----------------------------------------------------------------------------------------- lake frames

def test_lake_frames_give_a_panel_whose_second_stage_finds_the_pe_slope():
    sales, videos, scores, lifts = lake_frames()
    panel = panel_from_lake_frames(sales, videos, scores, pe_column="pe_share")
    assert panel.treated_ids == sorted(lifts)
    assert panel.products.loc["T00", "video_id"] == "v-T00"
    assert panel.products["pe"].max() == pytest.approx(1.0) and panel.products["pe"].min() == pytest.approx(0.0)
    result = second_stage(panel, estimate_lifts(panel), oof_repeats=2)
    est = result.lifts.set_index("product_id")["lift"]
    for pid, lift in lifts.items():
        assert est[pid] == pytest.approx(lift, abs=1.0)
    pe_range = scores["pe_share"].max() - scores["pe_share"].min()
    assert result.fit("(1)").focus("coef") == pytest.approx(40 * pe_range, rel=0.2)  # slope per normalised unit
    rows = sales_lift_rows(result, analysis_run="r1", analyzed_at=pd.Timestamp.now(tz="UTC"), method="test")
    assert list(rows.columns) == spark_schema("sales_lift").fieldNames()
    assert rows["analysis_run"].eq("r1").all() and len(rows) == len(lifts)
    assert rows["influential"].map(type).eq(bool).all()


def test_lake_frames_take_a_missing_advertised_flag_from_the_video_date():
    sales, videos, scores, _ = lake_frames(n_treated=3, n_controls=3)
    truth = sales["advertised"].copy()
    sales["advertised"] = sales["advertised"].astype(object)
    sales.loc[sales.index % 2 == 0, "advertised"] = None
    panel = panel_from_lake_frames(sales, videos, scores)
    assert any("advertised" in n for n in panel.notes)
    days = panel.days.set_index(["product_id", "date"])["treated"]
    expected = truth.to_numpy().astype(float)
    got = days.loc[list(zip(sales["product_id"], pd.to_datetime(sales["date"])))].to_numpy()
    np.testing.assert_array_equal(got, expected)


def test_second_stage_without_scores_is_a_clear_error():
    sales, videos, scores, _ = lake_frames(n_treated=3, n_controls=3)
    panel = panel_from_lake_frames(sales, videos, scores.iloc[0:0])
    with pytest.raises(AnalysisError) as err:
        second_stage_frame(estimate_lifts(panel), panel)
    assert err.value.reason == "no_scores"


def test_scores_of_mixed_methods_are_not_min_max_normalised_together():
    sales, videos, scores, _ = lake_frames(n_treated=4, n_controls=3)
    one = scores.assign(scoring_config="vanilla/sift/60s/aaaa1111")
    assert panel_from_lake_frames(sales, videos, one).products["pe"].max() == pytest.approx(1.0)
    mixed = one.copy()
    mixed.loc[mixed.index[:1], "scoring_config"] = "smoothgrad/sift/60s/bbbb2222"
    mixed.loc[mixed.index[1:2], "scoring_config"] = None  # scored before scoring_config was recorded
    with pytest.raises(AnalysisError) as err:
        panel_from_lake_frames(sales, videos, mixed)
    assert err.value.reason == "mixed_scoring_configs"
    assert "vanilla/sift/60s/aaaa1111 (2 videos)" in str(err.value)
    assert "smoothgrad/sift/60s/bbbb2222 (1 videos)" in str(err.value) and "unrecorded (1 videos)" in str(err.value)


# ----------------------------------------------------------------------------------------- paper format

def test_load_paper_panel_reads_the_format_and_joins_the_search_index(tmp_path):
    s = synthetic_sales(lifts={"T1": 6.0, "T2": 2.0}, n_controls=5)
    panel_rows = pd.DataFrame({
        "taobao_id": s["product_id"], "updated_time": s["date"].dt.date, "updated_time_rel": s["day"].astype(float),
        "rev": s["rolling_sales"], "treated": s["treated"].astype("int32"), "pe_score": 0.5, "e_score": 0.4,
        "p_score": 0.3, "true_id": 1234.0, "category": "Food", "price": 9.0, "fans": 2_000_000,
    })
    index = pd.DataFrame({"taobao_id": s["product_id"], "updated_time": s["date"].dt.strftime("%Y-%m-%d"),
                          "search": s["search"] * 1000})
    index = index[index["search"] > 0]  # the real index lists only days with searches
    panel_rows.to_parquet(tmp_path / "sales_panel.parquet")
    index.to_parquet(tmp_path / "search_index.parquet")
    panel = load_paper_panel(tmp_path)
    assert panel.treated_ids == ["T1", "T2"]
    got_search = panel.days.set_index(["product_id", "day"])["search"]
    np.testing.assert_allclose(got_search.loc[list(zip(s["product_id"], s["day"]))].to_numpy(), s["search"].to_numpy())
    assert panel.products.loc["T1", "fans"] == pytest.approx(2.0)  # the paper's covariates in millions
    assert panel.products.loc["T1", "influencer_id"] == "1234"
    assert panel.controls == ("price", "fans") and panel.fixed_effects == ("category",)
    got = estimate_lifts(panel).set_index("product_id")["lift"]
    assert got["T1"] == pytest.approx(6.0, abs=1e-6)


def test_load_paper_panel_errors(tmp_path):
    with pytest.raises(AnalysisError) as err:
        load_paper_panel(tmp_path / "absent")
    assert err.value.reason == "panel_not_found"
    with pytest.raises(AnalysisError) as err:
        load_paper_panel(tmp_path)
    assert err.value.reason == "panel_not_found"
    (tmp_path / "sales_panel.parquet").write_text("not parquet")
    with pytest.raises(AnalysisError) as err:
        load_paper_panel(tmp_path)
    assert err.value.reason == "panel_unreadable"
    pd.DataFrame({"taobao_id": ["a"], "rev": [1.0]}).to_parquet(tmp_path / "sales_panel.parquet")
    with pytest.raises(AnalysisError) as err:
        load_paper_panel(tmp_path)
    assert err.value.reason == "missing_columns" and "updated_time" in str(err.value)
    assert os.path.exists(tmp_path / "sales_panel.parquet")
