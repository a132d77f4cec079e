"""The scoring job's input split: rows without a usable video_id are rejected and never scored."""
from __future__ import annotations

import pandas as pd

from jobs.config import load_config
from jobs.scoring.nightly import _reject_invalid_inputs


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
