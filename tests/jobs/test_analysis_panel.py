"""jobs.analysis.panel on small hand-made panels with known answers: daily-sales imputation, the panel's roles
and checks, panels from lake frames and from the paper's public format (pure pandas; no Spark)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from analysis_panels import lake_frames, rolling_from_daily, synthetic_sales

from jobs.analysis import (
    AnalysisError,
    build_panel,
    complete_days,
    estimate_lifts,
    impute_daily_sales,
    load_paper_panel,
    minmax,
    panel_from_lake_frames,
    sales_lift_rows,
    second_stage,
)
from jobs.analysis.second_stage import second_stage_frame
from jobs.storage.contracts import spark_schema

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
