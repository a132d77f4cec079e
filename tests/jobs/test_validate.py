"""jobs.quality.validate: Great Expectations suites on real frames and real Delta tables, and `pe validate`."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jobs.config import load_config
from jobs.quality.validate import (
    MISSING_ID,
    QualityError,
    ValidationFailed,
    add_mismatch_columns,
    check_outputs,
    gate,
    rejected_inputs,
    rejected_rows,
    suite_checks,
    validate_frame,
    validate_table,
    validate_tables,
)

PE = str(Path(sys.executable).parent / "pe")
SIZE = 16  # clip size of these tests: maps are (S, 16, 16)


@pytest.fixture
def qcfg(tmp_path):
    return load_config(lake=str(tmp_path / "lake"), overrides={
        "clip": {"size": SIZE}, "spark": {"master": "local[2]", "show_progress": False, "shuffle_partitions": 2}})


# ---------------------------------------------------------------------- row level: inputs
def _videos(lake: str) -> pd.DataFrame:
    img = f"{lake}/media/products/p1.png"
    return pd.DataFrame([
        ("v-good", f"{lake}/media/v-good.mp4", img),
        ("v-good-uri", f"file://{lake}/media/v-good-uri.mp4", img),
        ("v-dup", f"{lake}/media/v-dup-1.mp4", img),
        ("v-dup", f"{lake}/media/v-dup-2.mp4", img),
        (None, f"{lake}/media/anonymous.mp4", img),
        ("v-http", "http://evil.example/v.mp4", img),
        ("v-escape", f"{lake}/media/../../etc/passwd", img),
        ("v-no-uri", None, img),
        ("v-no-image", f"{lake}/media/v-no-image.mp4", None),
    ], columns=["video_id", "video_uri", "product_image_uri"])


def test_rejected_inputs_names_each_bad_video_once_with_its_expectations(qcfg):
    rejected = rejected_inputs(_videos(qcfg.lake_path), qcfg).set_index("video_id")
    assert list(rejected.columns) == ["expectation", "message"]
    assert sorted(rejected.index) == sorted([MISSING_ID, "v-dup", "v-http", "v-escape", "v-no-uri", "v-no-image"])
    assert rejected.loc["v-dup", "expectation"] == "id_unique"
    assert "appears more than once" in rejected.loc["v-dup", "message"]
    assert rejected.loc["v-http", "expectation"] == "video_uri_scheme,video_uri_root"
    assert "not of an allowed scheme (file)" in rejected.loc["v-http", "message"]
    assert "not under an allowed root" in rejected.loc["v-http", "message"]
    assert "not of an allowed scheme" not in rejected.loc["v-escape", "message"]
    assert "'" + f"{qcfg.lake_path}/media/../../etc/passwd" + "'" in rejected.loc["v-escape", "message"]
    assert rejected.loc["v-no-uri", "expectation"] == "video_uri_present"
    assert "product image URI (product_image_uri) is missing" == rejected.loc["v-no-image", "message"]
    assert "video_id is missing" in rejected.loc[MISSING_ID, "message"]


def test_rejected_inputs_of_a_clean_batch_is_empty(qcfg):
    good = _videos(qcfg.lake_path).iloc[:2]
    out = rejected_inputs(good, qcfg)
    assert out.empty and list(out.columns) == ["video_id", "expectation", "message"]
    assert rejected_inputs(good.iloc[:0], qcfg).empty


def test_rejected_inputs_refuses_a_frame_without_the_needed_columns(qcfg):
    with pytest.raises(QualityError) as e:
        rejected_inputs(pd.DataFrame({"video_id": ["a"], "video_uri": ["/x"]}), qcfg)
    assert e.value.reason == "missing_columns" and "product_image_uri" in str(e.value)


def test_engagement_labels_rows_negative_counts_and_shares_above_views(qcfg):
    labels = pd.DataFrame({
        "video_id": ["ok", "neg-likes", "too-many-shares", "no-views", "equal"],
        "views": [100, 10, 5, None, 7],
        "likes": [3, -1, 0, 2, 0],
        "comments": [0, 0, 0, 0, 0],
        "shares": [1, 0, 6, 50, 7],
    })
    out = rejected_rows(labels, "engagement_labels", qcfg).set_index("video_id")
    assert sorted(out.index) == ["neg-likes", "too-many-shares"]
    assert out.loc["neg-likes", "expectation"] == "likes_non_negative"
    assert out.loc["too-many-shares", "expectation"] == "shares_le_views"
    assert out.loc["too-many-shares", "message"] == "shares (6) exceed views (5)"


def test_output_tables_have_no_row_level_rejection(qcfg):
    with pytest.raises(QualityError) as e:
        rejected_rows(pd.DataFrame(), "pe_scores", qcfg)
    assert e.value.reason == "not_input"
    with pytest.raises(QualityError) as e:
        suite_checks("no_such_table", qcfg)
    assert e.value.reason == "unknown_table"


def test_a_great_expectations_import_that_exits_becomes_a_quality_error(tmp_path, monkeypatch, qcfg):
    """Importing GE can call sys.exit (pyspark's Spark Connect check); it must not end the job."""
    from jobs.quality import ge

    fake = tmp_path / "fakepkgs" / "great_expectations"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import sys\nsys.exit(-1)\n")
    monkeypatch.syspath_prepend(str(fake.parent))
    for mod in [m for m in sys.modules if m == "great_expectations" or m.startswith("great_expectations.")]:
        monkeypatch.delitem(sys.modules, mod)
    with pytest.raises(QualityError) as e:
        ge.import_gx()
    assert e.value.reason == "ge_unavailable" and "exited" in str(e.value)


# ---------------------------------------------------------------------- frames (no Spark)
def _scores_frame(n_videos: int = 3, model_version: str = "1") -> pd.DataFrame:
    rows = []
    for i in range(n_videos):
        rows.append({"video_id": f"v{i}", "model_version": model_version, "run_id": "run-a",
                     "pe_share": 0.25 * i, "pe_raw": 0.01 * i, "e_score": 10.0 + i, "p_score": 5.0 * i})
    return pd.DataFrame(rows)


def test_pe_scores_suite_on_frames(qcfg):
    good = _scores_frame()
    report = validate_frame(good, "pe_scores", qcfg)
    assert report.success and report.rows == 3 and not report.failed and report.expectations == 8

    bad = pd.concat([good, good.iloc[[1]]], ignore_index=True)
    bad.loc[0, "pe_share"] = 1.5
    bad.loc[2, "e_score"] = -0.5
    bad.loc[2, "run_id"] = None
    report = validate_frame(bad, "pe_scores", qcfg)
    assert not report.success
    by_check = {f.check: f for f in report.failed}
    assert set(by_check) == {"key_unique", "pe_share_in_unit_interval", "e_score_non_negative", "run_id_present"}
    assert by_check["key_unique"].expectation == "expect_compound_columns_to_be_unique"
    assert by_check["key_unique"].unexpected_count == 2
    assert by_check["pe_share_in_unit_interval"].examples == (1.5,)
    assert "expect_compound_columns_to_be_unique" in report.describe()


def _check_frame(**changes) -> pd.DataFrame:
    base = {"video_id": ["a"], "model_version": ["1"], "in_pe_seconds": [True],
            "seconds_rows": [3], "distinct_seconds": [3], "first_second": [0], "seconds_span": [3],
            "n_seconds": [3], "e_mass_sum": [30.0], "pe_mass_sum": [6.0], "p_mass_sum": [12.0],
            "e_score": [30.0], "p_score": [12.0], "pe_raw": [6.0 / (3 * SIZE * SIZE)]}
    base.update({k: [v] for k, v in changes.items()})
    return pd.DataFrame(base)


def test_mismatch_columns_are_in_tolerance_units(qcfg):
    f = add_mismatch_columns(_check_frame(), qcfg)
    assert f.loc[0, "e_score_mismatch"] == pytest.approx(0.0)
    assert f.loc[0, "pe_raw_mismatch"] < 1e-6
    # 1 % off with rtol 1e-4: about 100 tolerance units
    f = add_mismatch_columns(_check_frame(e_score=30.0 * 1.01), qcfg)
    assert f.loc[0, "e_score_mismatch"] == pytest.approx(0.3 / (1e-6 + 1e-4 * 30.3), rel=1e-9)
    assert np.isnan(add_mismatch_columns(_check_frame(e_score=None), qcfg).loc[0, "e_score_mismatch"])


@pytest.mark.parametrize("changes, check", [
    ({"first_second": 1, "seconds_span": 3}, "seconds_start_at_0"),
    ({"seconds_rows": 4}, "seconds_unique"),  # seconds 0, 1, 1, 2
    ({"seconds_span": 4, "seconds_rows": 3}, "seconds_contiguous"),
    ({"n_seconds": 4, "pe_raw": 6.0 / (4 * SIZE * SIZE)}, "seconds_match_n_seconds"),
    ({"p_mass_sum": 12.5}, "p_mass_sums_to_p_score"),
    ({"in_pe_seconds": False, "seconds_rows": None, "distinct_seconds": None, "first_second": None,
      "seconds_span": None, "e_mass_sum": None, "pe_mass_sum": None, "p_mass_sum": None}, "has_pe_seconds_rows"),
])
def test_pe_seconds_suite_names_the_broken_rule(qcfg, changes, check):
    assert validate_frame(add_mismatch_columns(_check_frame(), qcfg), "pe_seconds", qcfg).success
    report = validate_frame(add_mismatch_columns(_check_frame(**changes), qcfg), "pe_seconds", qcfg)
    assert [f.check for f in report.failed] == [check]


# ---------------------------------------------------------------------- tables in a real lake (Spark)
def _scores_and_seconds(cfg, n_videos=3, seconds=(4, 2, 5), seed=0):
    """pe_scores and pe_seconds rows computed the way the scoring job does (pe_udfs.pe_math)."""
    from pe_udfs.pe_math import per_second_sums, scores_from_sums

    rng = np.random.default_rng(seed)
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    score_rows, second_rows = [], []
    for i in range(n_videos):
        s = seconds[i]
        e = rng.random((s, SIZE, SIZE)).astype(np.float32)
        p = np.zeros((s, SIZE, SIZE), np.float32)
        p[:, 4:10, 3:9] = 1.0
        sums = per_second_sums(e, p)
        sc = scores_from_sums(sums, cfg.saliency.first_seconds)
        score_rows.append({"video_id": f"v{i}", "model_version": "1", **sc, "predicted_engagement": 0.1,
                           "n_seconds": s, "product_found_seconds": s, "model_name": "pe-engagement",
                           "saliency_method": "vanilla", "product_method": "sift", "run_id": "run-a",
                           "scored_at": now})
        for k in range(s):
            second_rows.append({"video_id": f"v{i}", "model_version": "1", "second": k,
                                "e_mass": float(sums.e_mass[k]), "pe_mass": float(sums.pe_mass[k]),
                                "p_mass": float(sums.p_mass[k]), "product_found": True, "inliers": 20,
                                "quad_224": None, "e_grid": None, "run_id": "run-a"})
    return pd.DataFrame(score_rows), pd.DataFrame(second_rows)


@pytest.fixture
def qlake(qcfg, spark):
    from jobs.storage.lake import Lake

    lake = Lake.from_config(qcfg, spark)
    scores, seconds = _scores_and_seconds(qcfg)
    _write(lake, "pe_scores", scores)
    _write(lake, "pe_seconds", seconds)
    _write(lake, "campaign_videos", _campaign_rows(_videos(qcfg.lake_path).iloc[:2]))
    return lake


def _campaign_rows(videos: pd.DataFrame) -> pd.DataFrame:
    return videos.assign(product_id="p1", influencer_id="i1", campaign_id="c1", own_product=False,
                         published_at=None, ingested_at=None)


def _write(lake, name: str, frame: pd.DataFrame) -> None:
    from jobs.storage.contracts import contract

    # write_arrow takes the contract's column order; columns added to a contract later stay null here
    lake.write_arrow(name, frame.reindex(columns=contract(name).columns).astype(object).where(lambda f: f.notna(), None))


@pytest.mark.slow
def test_lake_validation_passes_then_names_a_duplicate_pe_scores_key(qlake, qcfg, spark):
    reports = validate_tables(qlake, qcfg)
    assert [r.table for r in reports] == ["campaign_videos", "pe_scores", "pe_seconds"]
    assert all(r.success for r in reports), [r.describe() for r in reports]
    assert [r.rows for r in reports] == [2, 3, 3]
    docs = reports[0].docs_path
    assert docs == os.path.join(qcfg.lake_path, "quality", "data_docs", "index.html") and os.path.isfile(docs)
    assert check_outputs(qlake, qcfg)  # no exception

    dup = qlake.read("pe_scores").where("video_id = 'v1'")
    qlake.write("pe_scores", dup)  # appended by hand: (v1, 1) twice
    report = validate_table(qlake, "pe_scores", qcfg)
    assert not report.success and report.failed_expectations == ["expect_compound_columns_to_be_unique"]
    assert report.failed[0].unexpected_count == 2
    with pytest.raises(ValidationFailed) as e:
        check_outputs(qlake, qcfg)
    assert e.value.reason == "validation_failed"
    assert "pe_scores.expect_compound_columns_to_be_unique" in str(e.value)
    # the docs index lists every stored validation run (the passing ones and this failing one)
    html = Path(docs).read_text()
    assert html.count("validations/pe_scores/") >= 3


@pytest.mark.slow
def test_pe_seconds_cross_table_check_on_the_lake(qlake, qcfg):
    from pyspark.sql import functions as F

    assert validate_table(qlake, "pe_seconds", qcfg).success
    # a gap (second 2 of v0 missing) and a pe_scores row whose e_score disagrees with its seconds
    seconds = qlake.read("pe_seconds").where("NOT (video_id = 'v0' AND second = 2)")
    qlake.write("pe_seconds", seconds, mode="overwrite")
    scores = qlake.read("pe_scores").withColumn(
        "e_score", F.when(F.col("video_id") == "v2", F.col("e_score") * 1.01).otherwise(F.col("e_score")))
    qlake.write("pe_scores", scores, mode="overwrite")
    report = validate_table(qlake, "pe_seconds", qcfg)
    assert {f.check for f in report.failed} == {
        "seconds_contiguous", "seconds_match_n_seconds", "e_mass_sums_to_e_score", "pe_mass_sums_to_pe_raw",
        "p_mass_sums_to_p_score"}
    by = {f.check: f for f in report.failed}
    assert by["seconds_contiguous"].unexpected_count == 1 and by["e_mass_sums_to_e_score"].unexpected_count == 2
    assert report.rows == 3


@pytest.mark.slow
def test_pe_seconds_of_an_unfinished_run_do_not_count(qlake, qcfg):
    """Seconds count only with their run's pe_scores row (same video, model version and scoring_config)."""
    from pyspark.sql import functions as F

    _, seconds = _scores_and_seconds(qcfg)
    unfinished = seconds[seconds["video_id"] == "v0"].assign(video_id="v9", second=lambda f: f["second"] + 5)
    other_config = seconds[seconds["video_id"] == "v0"].assign(second=lambda f: f["second"] + 10,
                                                                 scoring_config="longer-window")
    _write(qlake, "pe_seconds", pd.concat([unfinished, other_config]))
    report = validate_table(qlake, "pe_seconds", qcfg)
    assert report.success and report.rows == 3, report.describe()

    # the same rows with their pe_scores row in place are checked: v1's scores now belong to another config,
    # so its seconds (scoring_config null) are not its run's and the scores row has none
    scores = qlake.read("pe_scores").withColumn(
        "scoring_config", F.when(F.col("video_id") == "v1", F.lit("new")).otherwise(F.col("scoring_config")))
    qlake.write("pe_scores", scores, mode="overwrite")
    report = validate_table(qlake, "pe_seconds", qcfg)
    by = {f.check: f for f in report.failed}
    assert set(by) == {"has_pe_seconds_rows"} and by["has_pe_seconds_rows"].unexpected_count == 1


@pytest.mark.slow
def test_gate_lets_input_rejections_through_only_when_allowed(qlake, qcfg):
    _write(qlake, "campaign_videos", _campaign_rows(_videos(qcfg.lake_path).iloc[5:6]))
    report = validate_table(qlake, "campaign_videos", qcfg)
    assert not report.success and report.row_level
    assert gate([report]) == [report] and gate([report], allow_rejects=True) == []
    with pytest.raises(QualityError) as e:
        validate_tables(qlake, qcfg, ["engagement_labels"])
    assert e.value.reason == "table_missing"


@pytest.mark.slow
def test_rejected_inputs_accepts_a_spark_frame(qcfg, spark):
    videos = _videos(qcfg.lake_path)
    sdf = spark.createDataFrame(videos, "video_id string, video_uri string, product_image_uri string")
    from_spark = rejected_inputs(sdf, qcfg)
    assert from_spark.equals(rejected_inputs(videos, qcfg)) and len(from_spark) == 6


@pytest.mark.slow
def test_pe_validate_command_fails_naming_the_expectation(qlake, qcfg, tmp_path):
    conf = tmp_path / "pe.yaml"
    conf.write_text(f"clip:\n  size: {SIZE}\nspark:\n  master: local[2]\n  show_progress: false\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [PE, "--config", str(conf), "--lake", qcfg.lake_path, "validate"]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert ok.returncode == 0, ok.stderr[-2000:]
    for table in ("campaign_videos", "pe_scores", "pe_seconds"):
        assert f"{table}: passed" in ok.stdout
    assert "data docs: " + os.path.join(qcfg.lake_path, "quality", "data_docs", "index.html") in ok.stdout
    qlake.write("pe_scores", qlake.read("pe_scores").where("video_id = 'v0'"))
    bad = subprocess.run(cmd + ["--table", "pe_scores"], capture_output=True, text=True, timeout=300, env=env)
    assert bad.returncode == 1
    assert bad.stderr.splitlines()[-1] == ("error: validate: data quality gate failed: "
                                           "pe_scores.expect_compound_columns_to_be_unique [validation_failed]")
    assert "FAILED 1 of 8 expectations" in bad.stdout
