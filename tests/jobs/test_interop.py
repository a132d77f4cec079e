"""The lake is plain Delta: delta-rs (``deltalake``) and polars read pe_scores and sales_lift with the same rows
as Spark after merges (updates and inserts), OPTIMIZE (Z-order) and VACUUM. Real Spark and Delta in a temp
folder; the other readers open the folders directly, as an analyst's notebook would."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.jobs.sql_lake import table

pytestmark = pytest.mark.slow

T0 = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)


def _scores(videos: range, version: str, share: float) -> pd.DataFrame:
    return table("pe_scores", [{"video_id": f"v{i:03d}", "model_version": version, "scoring_config": "c1",
                                "pe_share": share + i / 1000, "e_score": 100.0 + i, "scored_at": T0,
                                "run_id": f"run-{version}-{share}"} for i in videos])


def _lifts(products: range, run: str, lift: float) -> pd.DataFrame:
    return table("sales_lift", [{"product_id": f"p{i:03d}", "analysis_run": run, "lift": lift + i,
                                 "n": 100 + i, "status": "ok", "analyzed_at": T0} for i in products])


def _same(spark_rows: pd.DataFrame, other: pd.DataFrame, keys: list[str]) -> None:
    cols = ["pe_share", "e_score", "run_id"] if "video_id" in keys else ["lift", "n", "status"]
    a = spark_rows[keys + cols].sort_values(keys).reset_index(drop=True)
    b = other[keys + cols].sort_values(keys).reset_index(drop=True)
    assert len(a) == len(b)
    for c in keys + cols:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if np.issubdtype(np.asarray(x).dtype, np.floating):
            np.testing.assert_allclose(np.asarray(x, float), np.asarray(y, float), rtol=0, atol=0)
        else:
            assert [str(v) for v in x] == [str(v) for v in y], c


def test_delta_rs_and_polars_read_what_spark_wrote_after_merges_optimize_and_vacuum(spark, tmp_path):
    import polars as pl
    from deltalake import DeltaTable

    from jobs.storage.lake import Lake

    lake = Lake(str(tmp_path / "lake"), spark)
    for part in (range(0, 40), range(40, 80), range(80, 120)):  # several small files, several commits
        lake.merge("pe_scores", spark.createDataFrame(_scores(part, "1", 0.1)))
        lake.merge("sales_lift", spark.createDataFrame(_lifts(part, "a1", 5.0)))
    lake.merge("pe_scores", spark.createDataFrame(_scores(range(20, 60), "1", 0.5)))  # updates
    lake.merge("pe_scores", spark.createDataFrame(_scores(range(0, 10), "2", 0.9)))  # a new model version
    lake.merge("sales_lift", spark.createDataFrame(_lifts(range(100, 130), "a1", 9.0)))  # updates and inserts
    for name in ("pe_scores", "sales_lift"):
        on_disk = sorted(Path(lake.path(name)).rglob("*.parquet"))
        lake.optimize(name)
        lake.vacuum(name, retention_hours=0)  # the files the merges and OPTIMIZE replaced are deleted
        assert len(sorted(Path(lake.path(name)).rglob("*.parquet"))) < len(on_disk)
        assert len(DeltaTable(lake.path(name)).file_uris()) == len(list(Path(lake.path(name)).rglob("*.parquet")))

    checks = {"pe_scores": ["video_id", "model_version"], "sales_lift": ["product_id", "analysis_run"]}
    for name, keys in checks.items():
        by_spark = lake.read(name).toPandas()
        assert len(by_spark) == 130  # pe_scores: 120 of version 1 + 10 of version 2; sales_lift: 120 + 10 new
        _same(by_spark, DeltaTable(lake.path(name)).to_pandas(), keys)
        _same(by_spark, pl.read_delta(lake.path(name)).to_pandas(), keys)
        assert DeltaTable(lake.path(name)).version() == lake.version(name)
    updated = lake.read("pe_scores").where("video_id = 'v025' AND model_version = '1'").first()
    assert updated["pe_share"] == pytest.approx(0.525) and updated["run_id"] == "run-1-0.5"
