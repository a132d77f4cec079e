"""`pe sample` end to end: the four tables through the lake layer, media under the lake, reproducibility."""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import pandas as pd
import pytest

from jobs.synth.sample import TABLES, SampleError, campaign_spec, interrupted_sample, run_sample

pytestmark = pytest.mark.slow

ARGS = dict(n_videos=3, seed=5, min_seconds=3, max_seconds=4, width=180, height=320, workers=1)


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_sample_writes_four_tables_and_media_and_is_reproducible(cfg, lake):
    first = run_sample(cfg, lake, **ARGS)
    assert set(TABLES) <= set(lake.table_names())
    videos = lake.read_pandas("campaign_videos")
    truth = lake.read_pandas("sample_truth")
    labels = lake.read_pandas("engagement_labels")
    sales = lake.read_pandas("taobao_sales")
    assert len(videos) == len(labels) == 3 and videos["video_id"].is_unique
    assert len(truth) == first.seconds == truth.groupby("video_id")["n_frames"].first().sum() // 30
    assert len(sales) == (3 + 3) * cfg.sample.panel_days  # 3 advertised products + 3 never-advertised controls
    assert (labels["shares"] <= labels["views"]).all()
    assert sales.groupby("product_id")["advertised"].any().sum() == 3
    assert str(videos["published_at"].dt.tz) == "UTC"

    media = Path(cfg.media_root)
    declared = truth.groupby("video_id")["n_frames"].first()
    digests = {}
    for row in videos.itertuples():
        path = row.video_uri.removeprefix("file://")
        assert Path(path).parent == media / "videos"
        assert Path(row.product_image_uri.removeprefix("file://")).parent == media / "products"
        cap = cv2.VideoCapture(path)
        n = 0
        while cap.read()[0]:
            n += 1
        assert abs(n - declared[row.video_id]) <= 1
        assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (180, 320)
        digests[row.video_id] = _sha(path)

    # an earlier run killed mid-render and between its table commits: the next one cleans up and says so
    leftover = media / "videos" / ".sv-killed.mp4.partial"
    leftover.write_bytes(b"half a video")
    (Path(cfg.lake_path) / "_pe_sample_incomplete.json").write_text('{"seed": 4, "videos": 3}')
    assert interrupted_sample(cfg.lake_path) == {"seed": 4, "videos": 3}
    lines = []
    again = run_sample(cfg, lake, **ARGS, progress=lines.append)
    assert not leftover.exists() and interrupted_sample(cfg.lake_path) is None
    assert again.recovered == {"seed": 4, "videos": 3} and "interrupted" in again.lines()[-1]
    assert first.recovered is None
    assert lines and lines[-1].startswith(f"rendered 3/3 videos ({first.frames:,}/{first.frames:,} frames, 100%)")
    assert again.table_versions["sample_truth"] == first.table_versions["sample_truth"] + 1  # one commit per table
    truth2 = lake.read_pandas("sample_truth")
    key = ["video_id", "second"]
    pd.testing.assert_frame_equal(truth.sort_values(key).reset_index(drop=True),
                                  truth2.sort_values(key).reset_index(drop=True))
    assert {v: _sha(p.removeprefix("file://")) for v, p in
            zip(videos["video_id"], videos["video_uri"])} == digests


def test_cli_sample_then_sql_count(cfg, spark, tmp_path):
    from typer.testing import CliRunner

    from jobs.cli import app

    lake_dir = str(tmp_path / "clilake")
    runner = CliRunner()
    out = runner.invoke(app, ["--lake", lake_dir, "sample", "--videos", "2", "--seed", "3", "--min-seconds", "2",
                              "--max-seconds", "2", "--width", "180", "--height", "320", "--workers", "1", "--no-audio"])
    assert out.exit_code == 0, out.output
    assert "sample campaign: 2 videos, 4 s (120 frames)" in out.output
    out = runner.invoke(app, ["--lake", lake_dir, "sql", "select count(*) as n from campaign_videos"])
    assert out.exit_code == 0, out.output
    assert out.output.strip().splitlines()[-1].strip() == "2"
    bad = runner.invoke(app, ["--lake", lake_dir, "sample", "--videos", "2", "--width", "181"])
    assert bad.exit_code == 2 and "bad_size" in bad.output


def test_spec_comes_from_config_and_overrides(cfg):
    spec = campaign_spec(cfg, n_videos=4, seed=None)
    assert (spec.n_videos, spec.seed, spec.width, spec.height) == (4, cfg.sample.seed, 360, 640)
    with pytest.raises(SampleError) as e:
        campaign_spec(cfg, min_seconds=7.5, max_seconds=7.9)
    assert e.value.reason == "bad_duration"
