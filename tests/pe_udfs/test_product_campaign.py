"""Product heatmap on the generated sample campaign (jobs.synth) against its ground truth, per second."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_product_heatmap_matches_the_sample_truth(tmp_path):
    synth = pytest.importorskip("jobs.synth.campaign")
    from bench.product_accuracy import score_one_video, summarize, video_task
    from pe_udfs.settings import ClipSettings, ProductSettings

    spec = synth.CampaignSpec(n_videos=4, seed=11, min_seconds=10, max_seconds=12, audio=False)
    campaign = synth.generate_campaign(spec, tmp_path / "media", workers=2)
    rows = []
    for v in campaign.videos.itertuples():
        truth = campaign.truth[campaign.truth.video_id == v.video_id]
        rows += score_one_video(video_task(v.video_id, v.video_uri, v.product_image_uri, truth,
                                           ProductSettings(match_workers=1), ClipSettings(), ["file"]))
    s = summarize(rows)
    assert not s["errors"] and s["missing_seconds"] == 0
    assert s["visible_seconds"] >= 10 and s["absent_seconds"] >= 1
    assert s["median_iou"] >= 0.7          # the product map's goal (bench/product_accuracy.py), on this smaller campaign
    assert s["absent_found"] <= 0.02       # no product-absent second marked as found
