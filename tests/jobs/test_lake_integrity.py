"""pe_scores and pe_seconds must tell one story: a rolled-back table (its newest _delta_log commit removed) is
noticed by `pe validate` and repaired by the next `pe score`. Real Spark, Delta and MLflow in a temp folder."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import cv2
import pandas as pd
import pytest
from test_score_job import _register_tiny_champion, _write_clip

pytestmark = pytest.mark.slow


def _drop_newest_commit(lake, spark, name: str) -> int:
    """Delete table ``name``'s newest commit file (and its checksum), as a bad copy or a careless hand would;
    then forget the session's cached snapshot, as a new `pe` process would not have it."""
    log = Path(lake.path(name)) / "_delta_log"
    newest = max(log.glob("*.json"), key=lambda p: int(p.stem))
    newest.unlink()
    crc = log / f"{newest.stem}.crc"
    if crc.exists():
        crc.unlink()
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    return int(newest.stem)


def _two_clips_of_coffee(media: Path) -> list[str]:
    """``media``/coffee.png (the listing image) and two 2-s clips showing it; their URIs."""
    from skimage import data

    media.mkdir(parents=True)
    coffee = data.coffee()
    cv2.imwrite(str(media / "coffee.png"), cv2.cvtColor(coffee, cv2.COLOR_RGB2BGR))
    return [_write_clip(media / f"v{i}.mp4", scene, coffee, seconds=2) for i, scene in
            enumerate([data.astronaut(), data.chelsea()])]


def test_a_rolled_back_pe_scores_is_noticed_by_validate_and_repaired_by_the_next_score(cfg, lake, spark, capsys):
    from typer.testing import CliRunner

    from jobs.cli import app
    from jobs.scoring.nightly import run_score
    from jobs.storage.integrity import TablesDisagree, check_score_tables, require_agreement

    media = Path(cfg.media_root)
    uris = _two_clips_of_coffee(media)
    now = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    lake.write_arrow("campaign_videos", pd.DataFrame({
        "video_id": ["v0", "v1"], "video_uri": uris, "product_id": "p-coffee",
        "product_image_uri": str(media / "coffee.png"), "influencer_id": "inf-1", "campaign_id": "c-1",
        "own_product": False, "published_at": now, "ingested_at": now}))
    _register_tiny_champion(cfg)

    assert run_score(cfg, spark=spark, run_id="night-1", validate_outputs=False).scored == 2
    assert not check_score_tables(lake)
    dropped = _drop_newest_commit(lake, spark, "pe_scores")  # night-1's pe_scores commit: the rows are gone
    assert lake.read("pe_scores").count() == 0 and lake.read("pe_seconds").count() == 4

    with pytest.raises(TablesDisagree) as e:
        require_agreement(lake)
    assert e.value.reason == "rolled_back" and e.value.exit_code == 1
    assert f"pe_scores is at version {dropped - 1} but run night-1 committed version {dropped}" in e.value.message
    assert "2 video(s) have pe_seconds of a run without its pe_scores row" in e.value.message
    out = CliRunner().invoke(app, ["--lake", cfg.lake_path, "validate", "--table", "pe_scores"])
    assert out.exit_code == 1 and "error: lake: pe_scores and pe_seconds disagree" in out.output, out.output

    capsys.readouterr()
    repaired = run_score(cfg, spark=spark, run_id="night-2", validate_outputs=False)
    err = capsys.readouterr().err
    assert err.count("warning: lake check: pe_scores and pe_seconds disagree") == 1 and \
        "scoring 2 of them again" in err, err
    assert repaired.scored == 2 and repaired.warnings
    assert lake.read_pandas("pe_scores")["run_id"].eq("night-2").all()
    assert lake.read("pe_seconds").count() == 4  # the same seconds: the merge found nothing to change
    assert not check_score_tables(lake)
    require_agreement(lake)  # the versions are back at (or past) what the runs recorded

    # a run that finds the tables in agreement and leaves them so: the next check compares no rows (no Spark
    # job) while the two tables stay at its commits, and compares them again after any other commit
    from pyspark.sql import functions as F

    from jobs.storage.integrity import finished_runs

    assert run_score(cfg, spark=spark, run_id="night-3", validate_outputs=False).candidates == 0
    agreed = {r["run_id"]: r.get("agreed_commits") for r in finished_runs(lake)}
    assert agreed["night-2"] is None and set(agreed["night-3"]) == {"pe_scores", "pe_seconds"}
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("lake-check", "the lake check of an untouched lake")
    try:
        assert not check_score_tables(lake)
        assert tracker.getJobIdsForGroup("lake-check") == []
        orphan = lake.read("pe_seconds").limit(1).withColumn("video_id", F.lit("v9"))
        lake.merge("pe_seconds", orphan)
        found = check_score_tables(lake)
    finally:
        spark.sparkContext.setJobGroup("", "")
    assert [v for v, _, _ in found.seconds_only] == ["v9"]


def test_a_lake_moved_to_another_folder_is_relocated_and_scores_on_without_rescoring(tmp_path, spark):
    """`mv lake elsewhere`: absolute URIs in the tables and the MLflow store point to the old folder;
    `pe maintain --relocated-from OLD` rewrites them, the champion loads from its new place and nothing is
    scored again."""
    import shutil

    from typer.testing import CliRunner

    from jobs.cli import app
    from jobs.config import load_config
    from jobs.scoring.nightly import run_score
    from jobs.storage.lake import Lake

    overrides = {"spark": {"master": "local[2]", "show_progress": False, "shuffle_partitions": 2}}
    old_cfg = load_config(lake=str(tmp_path / "old" / "lake"), overrides=overrides)
    old_lake = Lake.from_config(old_cfg, spark)
    media = Path(old_cfg.media_root)
    uris = _two_clips_of_coffee(media)
    now = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)

    def campaign(ids, clips):
        return pd.DataFrame({"video_id": ids, "video_uri": clips, "product_id": "p-coffee",
                             "product_image_uri": str(media / "coffee.png"), "influencer_id": "inf-1",
                             "campaign_id": "c-1", "own_product": False, "published_at": now, "ingested_at": now})

    old_lake.write_arrow("campaign_videos", campaign(["v0", "v1"], uris))
    _register_tiny_champion(old_cfg)
    assert run_score(old_cfg, spark=spark, validate_outputs=False).scored == 2

    new_root = tmp_path / "new" / "lake"
    new_root.parent.mkdir()
    shutil.move(old_cfg.lake_path, new_root)
    cfg = load_config(lake=str(new_root), overrides=overrides)
    out = CliRunner().invoke(app, ["--lake", cfg.lake_path, "maintain", "--relocated-from", old_cfg.lake_path])
    assert out.exit_code == 0, out.output
    assert "campaign_videos: 2 row(s) moved" in out.output and "mlflow:" in out.output, out.output
    lake = Lake.from_config(cfg, spark)
    videos = lake.read_pandas("campaign_videos")
    assert videos["video_uri"].str.startswith(f"{new_root}/media/").all()
    assert videos["product_image_uri"].eq(f"{new_root}/media/coffee.png").all()

    again = run_score(cfg, spark=spark, validate_outputs=False)  # the moved champion loads; nothing to redo
    assert (again.candidates, again.scored, again.errors, again.warnings) == (0, 0, 0, [])
    relocate_again = CliRunner().invoke(app, ["--lake", cfg.lake_path, "maintain", "--relocated-from",
                                              old_cfg.lake_path])
    assert relocate_again.exit_code == 0 and "campaign_videos: 0 row(s)" in relocate_again.output
