"""The scoring job's input split (rows without a usable video_id are rejected and never scored) and its tasks."""
from __future__ import annotations

import pandas as pd

from jobs.config import load_config
from jobs.score import VIDEOS_PER_TASK, _reject_invalid_inputs, scoring_partitions


def test_null_empty_and_whitespace_ids_are_rejected_and_never_scored(tmp_path):
    cfg = load_config(lake=str(tmp_path / "lake"))
    video, image = str(tmp_path / "lake" / "a.mp4"), str(tmp_path / "lake" / "a.png")
    candidates = pd.DataFrame({
        "video_id": ["ok1", None, "   ", ""], "video_uri": [video, video + "?n", video + "?w", video + "?e"],
        "product_id": "p", "product_image_uri": image})
    rejected, accepted = _reject_invalid_inputs(candidates, cfg)
    assert list(accepted["video_id"]) == ["ok1"]
    labels = sorted(rejected["video_id"])
    assert labels == sorted([f"<null video_id: {video}?n>", f"<blank video_id: {video}?w>",
                             f"<blank video_id: {video}?e>"])
    assert rejected["expectation"].eq("video_id_present").all()


def test_tasks_hold_few_videos_so_no_core_waits_on_a_long_last_task():
    assert scoring_partitions(200, parallelism=2) == 200 // VIDEOS_PER_TASK  # 50 tasks of 4 videos
    assert scoring_partitions(10, parallelism=2) == 8  # at least 4 tasks per core
    assert scoring_partitions(3, parallelism=2) == 3  # never more tasks than videos
    assert scoring_partitions(201, parallelism=2) == 51  # the remainder gets a task of its own
    assert scoring_partitions(200, parallelism=2, configured=7) == 7  # score.partitions wins
    assert scoring_partitions(0, parallelism=2) == 1
