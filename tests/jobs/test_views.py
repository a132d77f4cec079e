"""Analyst views pe_latest and pe_sales over small hand-made Delta tables (Spark)."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from jobs.storage.contracts import contract
from jobs.storage.views import ANALYST_VIEWS, champion_version, current_seconds, register_views

pytestmark = pytest.mark.slow

T0 = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)


def table(name: str, rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).reindex(columns=contract(name).columns).astype(object).where(lambda f: f.notna(), None)


@pytest.fixture
def views_lake(lake):
    lake.write_arrow("pe_scores", table("pe_scores", [
        {"video_id": "a", "model_version": "2", "pe_share": 0.2, "scored_at": T0},
        {"video_id": "a", "model_version": "10", "pe_share": 0.3, "scored_at": T0},  # newest: 10 > 2 numerically
        {"video_id": "b", "model_version": "2", "pe_share": 0.5, "scored_at": T0},
        {"video_id": "c", "model_version": "10", "pe_share": 0.7, "scored_at": T0},
    ]))
    lake.write_arrow("campaign_videos", table("campaign_videos", [
        {"video_id": "a", "product_id": "p1", "campaign_id": "k1", "influencer_id": "i1"},
        {"video_id": "b", "product_id": "p2", "campaign_id": "k1", "influencer_id": "i2"},
        {"video_id": "c", "product_id": "p3", "campaign_id": "k2", "influencer_id": "i1"},
    ]))
    return lake


def test_pe_latest_picks_the_newest_version_or_the_champion(views_lake):
    names = register_views(views_lake)
    assert {"pe_latest", "pe_sales"} <= set(names)
    assert set(ANALYST_VIEWS) == {"pe_latest", "pe_sales", "pe_seconds_current", "scoring_errors_open"}
    latest = views_lake.spark.sql("select video_id, model_version, pe_share, is_champion from pe_latest "
                                  "order by video_id").toPandas()
    assert latest["model_version"].tolist() == ["10", "2", "10"]
    assert not latest["is_champion"].any()
    assert set(contract("pe_scores").columns) <= set(views_lake.spark.table("pe_latest").columns)

    register_views(views_lake, champion_version="2")
    latest = views_lake.spark.sql("select video_id, model_version, is_champion from pe_latest order by video_id").toPandas()
    assert latest["model_version"].tolist() == ["2", "2", "10"]  # c was never scored by the champion
    assert latest["is_champion"].tolist() == [True, True, False]


def test_pe_sales_joins_campaign_and_the_newest_lift_and_works_before_any_analysis(views_lake):
    register_views(views_lake)
    before = views_lake.spark.sql("select video_id, campaign_id, lift from pe_sales order by video_id").toPandas()
    assert before["campaign_id"].tolist() == ["k1", "k1", "k2"] and before["lift"].isna().all()

    views_lake.write_arrow("sales_lift", table("sales_lift", [
        {"product_id": "p1", "analysis_run": "r1", "lift": 1.0, "status": "ok", "analyzed_at": T0},
        {"product_id": "p1", "analysis_run": "r2", "lift": 2.0, "status": "ok", "analyzed_at": T0 + dt.timedelta(days=1)},
        {"product_id": "p3", "analysis_run": "r1", "lift": -1.0, "status": "ok", "analyzed_at": T0},
    ]))
    register_views(views_lake)
    rows = views_lake.spark.sql("select video_id, product_id, lift, analysis_run from pe_sales "
                                "order by video_id").toPandas()
    assert rows["lift"].tolist()[0] == 2.0 and rows["analysis_run"].tolist()[0] == "r2"
    assert pd.isna(rows["lift"].tolist()[1]) and rows["lift"].tolist()[2] == -1.0
    assert len(rows) == 3  # one row per scored video


def test_readers_see_only_per_second_rows_of_complete_runs(lake):
    """A run killed between its pe_seconds and pe_scores commits leaves seconds without a score (video x), and
    a re-scoring with another config leaves the old config's extra seconds (video a, cfg-old): neither counts."""
    lake.write_arrow("pe_scores", table("pe_scores", [
        {"video_id": "a", "model_version": "1", "scoring_config": "cfg-new", "scored_at": T0},
        {"video_id": "legacy", "model_version": "1", "scoring_config": None, "scored_at": T0},
    ]))
    lake.write_arrow("pe_seconds", table("pe_seconds", [
        {"video_id": "a", "model_version": "1", "second": 0, "scoring_config": "cfg-new"},
        {"video_id": "a", "model_version": "1", "second": 1, "scoring_config": "cfg-old"},
        {"video_id": "x", "model_version": "1", "second": 0, "scoring_config": "cfg-new"},  # no pe_scores row
        {"video_id": "a", "model_version": "2", "second": 0, "scoring_config": "cfg-new"},  # no v2 score
        {"video_id": "legacy", "model_version": "1", "second": 0, "scoring_config": None},  # before the column
    ]))
    want = [("a", "1", 0), ("legacy", "1", 0)]
    got = sorted(tuple(r) for r in current_seconds(lake).select("video_id", "model_version", "second").collect())
    assert got == want
    register_views(lake)
    view = lake.spark.sql("select video_id, model_version, second from pe_seconds_current").collect()
    assert sorted(tuple(r) for r in view) == want


def test_champion_version_is_none_without_a_registry(cfg):
    assert champion_version(cfg) is None


def test_pe_sql_cli_queries_the_analyst_views(views_lake, cfg):
    from typer.testing import CliRunner

    from jobs.cli import app

    res = CliRunner().invoke(app, ["--lake", cfg.lake_path, "sql", "select video_id, campaign_id from pe_sales "
                                   "order by video_id limit 5", "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == ["video_id,campaign_id", "a,k1", "b,k1", "c,k2"]


def test_scoring_errors_of_videos_scored_since_are_hidden_from_readers(lake):
    """A video that failed one night (its file was still uploading) and was scored the next keeps its error row
    as history; scoring_errors_open shows only errors nothing has resolved since."""
    later = T0 + dt.timedelta(days=1)
    lake.write_arrow("scoring_errors", table("scoring_errors", [
        {"video_id": "fixed", "run_id": "r1", "model_version": "1", "stage": "fetch", "reason": "not_found", "at": T0},
        {"video_id": "still-bad", "run_id": "r1", "model_version": "1", "stage": "decode", "reason": "unreadable",
         "at": T0},
        {"video_id": "other-model", "run_id": "r1", "model_version": "1", "stage": "decode", "at": T0},
        {"video_id": "failed-again", "run_id": "r2", "model_version": "1", "stage": "decode", "at": later},
    ]))
    register_views(lake)  # before any pe_scores: every error is open
    assert lake.spark.sql("select count(*) from scoring_errors_open").first()[0] == 4
    lake.write_arrow("pe_scores", table("pe_scores", [
        {"video_id": "fixed", "model_version": "1", "scored_at": later},
        {"video_id": "other-model", "model_version": "2", "scored_at": later},  # another model's score
        {"video_id": "failed-again", "model_version": "1", "scored_at": T0},  # scored before its newest error
    ]))
    register_views(lake)
    open_ids = sorted(r[0] for r in lake.spark.sql("select video_id from scoring_errors_open").collect())
    assert open_ids == ["failed-again", "other-model", "still-bad"]
    assert lake.read("scoring_errors").count() == 4  # history is kept
