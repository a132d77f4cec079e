"""pe analyze end to end on a small hand-made lake and panel folder (Spark, Delta, CLI)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from analysis_panels import lake_frames, synthetic_sales
from typer.testing import CliRunner

from jobs.analysis import AnalysisError
from jobs.analysis.analyze import choose_model_version, run_analyze
from jobs.storage.contracts import contract


def contract_frame(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.reindex(columns=contract(name).columns).astype(object).where(lambda f: f.notna(), None)


def write_paper_panel(folder, lifts=None) -> None:
    s = synthetic_sales(lifts=lifts or {"T1": 6.0, "T2": 2.0, "T3": -1.0, "T4": 4.0, "T5": 0.5, "T6": 3.0},
                        n_controls=6, noise=0.2)
    rng = np.random.default_rng(0)
    scores = {p: rng.uniform(0, 1, 3) for p in s["product_id"].unique()}
    pd.DataFrame({
        "taobao_id": s["product_id"], "updated_time": s["date"].dt.date, "updated_time_rel": s["day"].astype(float),
        "rev": s["rolling_sales"], "treated": s["treated"].astype("int32"), "search": s["search"],
        "pe_score": s["product_id"].map(lambda p: scores[p][0]), "e_score": s["product_id"].map(lambda p: scores[p][1]),
        "p_score": s["product_id"].map(lambda p: scores[p][2]), "true_id": 7.0,
    }).to_parquet(os.path.join(folder, "sales_panel.parquet"))


def test_choose_engine_uses_spark_only_where_it_pays():
    from jobs.analysis.analyze import choose_engine

    assert choose_engine("auto", 2, 500) == "local"
    assert choose_engine("auto", 16, 500) == "spark"
    assert choose_engine("auto", 16, 10) == "local"
    assert choose_engine("spark", 1, 1) == "spark"


def test_choose_model_version():
    scores = pd.DataFrame({"model_version": ["2", "10", "10"]})
    assert choose_model_version(scores, None, None) == ("10", "the newest scored version")
    assert choose_model_version(scores, None, "2")[0] == "2"
    assert choose_model_version(scores, None, "7")[0] == "10"  # a champion that scored nothing
    assert choose_model_version(scores, "2", "10") == ("2", "requested")
    with pytest.raises(AnalysisError) as err:
        choose_model_version(scores, "3", None)
    assert err.value.reason == "no_scores"


@pytest.mark.slow
def test_cli_analyze_panel_prints_both_tables_with_robust_errors(tmp_path):
    from jobs.cli import app

    write_paper_panel(tmp_path)
    res = CliRunner().invoke(app, ["--lake", str(tmp_path / "lake"), "analyze", "--panel", str(tmp_path),
                                   "--engine", "local", "--out", str(tmp_path / "R"), "--run-id", "t1"])
    assert res.exit_code == 0, res.output
    for text in ("Table 4", "Table 5", "SE HC1", "p HC1", "max Cook's D", "Robustness", "not written",
                 "two-way cluster (product, day)", "Measurement error:"):
        assert text in res.output, text
    assert (tmp_path / "R" / "report.html").is_file() and (tmp_path / "R" / "report.md").is_file()
    assert not (tmp_path / "lake" / "sales_lift").exists()  # panel input is not stored by default

    bad = CliRunner().invoke(app, ["--lake", str(tmp_path / "lake"), "analyze", "--panel", str(tmp_path / "nope"),
                                   "--engine", "local"])
    assert bad.exit_code == 1 and "panel_not_found" in bad.output
    bad = CliRunner().invoke(app, ["analyze", "--engine", "dask"])
    assert bad.exit_code == 2 and "--engine" in bad.output


@pytest.mark.slow
def test_analyze_on_the_lake_writes_sales_lift_once_and_a_report(lake, cfg):
    with pytest.raises(AnalysisError) as err:
        run_analyze(cfg, lake, engine="local")
    assert err.value.reason == "missing_tables"

    sales, videos, scores, lifts = lake_frames(n_treated=6, n_controls=8)
    lake.write_arrow("taobao_sales", contract_frame("taobao_sales", sales))
    lake.write_arrow("campaign_videos", contract_frame("campaign_videos", videos))
    lake.write_arrow("pe_scores", contract_frame("pe_scores", scores))

    summary = run_analyze(cfg, lake, engine="spark", run_id="r1", oof_repeats=2)
    assert summary.rows_written == 6
    table = lake.read_pandas("sales_lift").set_index("product_id")
    assert sorted(table.index) == sorted(lifts) and (table["analysis_run"] == "r1").all()
    for pid, lift in lifts.items():
        assert table.loc[pid, "lift"] == pytest.approx(lift, abs=1.0)
    assert (table["status"] == "ok").all() and table["model_version"].eq("3").all()
    assert (table["se_cluster2"] > 0).all() and (table["se_cluster2"] != table["se"]).all()
    assert table["video_id"].tolist() == [f"v-{p}" for p in table.index]
    history = lake.history("sales_lift")
    assert sum(1 for h in history if h.get("operation") not in ("CREATE TABLE",)) == 1  # one data commit
    folder = os.path.join(cfg.lake_path, "reports", "analysis", "r1")
    for name in ("report.md", "report.html", "lifts.csv", "lift_histogram.png", "lift_vs_pe.png"):
        assert os.path.isfile(os.path.join(folder, name)), name
    assert "Table 5" in summary.text() and "sales_lift: 6 rows" in summary.text()

    local = run_analyze(cfg, lake, engine="local", run_id="r1", oof_repeats=2)  # same run id: an upsert
    pd.testing.assert_frame_equal(local.result.lifts.reset_index(drop=True),
                                  summary.result.lifts.reset_index(drop=True), check_exact=False, rtol=1e-9)
    again = lake.read_pandas("sales_lift")
    assert len(again) == 6 and not again.duplicated(["product_id", "analysis_run"]).any()
