"""The opt-in turning scenario of the sample world: side panels, front/side tracks, truth per face."""
from __future__ import annotations

import numpy as np
import pytest

from jobs.synth.campaign import SCENARIO_WEIGHTS, CampaignSpec, SampleError, generate_campaign
from jobs.synth.products import PRODUCT_KEYS, product_asset, product_side
from jobs.synth.storyboard import OPT_IN_SCENARIOS, plan_video


def test_turning_is_never_in_the_default_mix_and_unknown_scenarios_are_refused():
    assert "turning" in OPT_IN_SCENARIOS and "turning" not in SCENARIO_WEIGHTS
    with pytest.raises(SampleError) as e:
        CampaignSpec(n_videos=2, seed=1, scenario="spinning").check()
    assert e.value.reason == "bad_scenario"


@pytest.mark.parametrize("key", PRODUCT_KEYS)
def test_side_panel_is_its_own_listing_photo_that_the_front_cannot_find(key):
    from pe_udfs.product import listing_features, match_frame
    from pe_udfs.settings import ProductSettings

    side, alpha = product_side(key)
    assert side.shape[:2] == alpha.shape and side.dtype == np.uint8 and (side[0] == 255).all()  # on white
    assert product_side(key) is product_side(key) and not np.array_equal(product_side(key, 1)[0], side)
    ps = ProductSettings(match_workers=1)
    scene = np.full((640, 360, 3), 90, np.uint8)
    small = side[::2, ::2]
    scene[150:150 + small.shape[0], 60:60 + small.shape[1]] = small
    assert match_frame(scene, listing_features(side, ps), ps).found
    assert not match_frame(scene, listing_features(product_asset(key).listing, ps), ps).found


def test_turning_plan_alternates_contiguous_front_and_side_tracks():
    plan = plan_video(np.random.default_rng(3), video_id="v", scenario="turning", person="hopper", n_seconds=20,
                      width=360, height=640, fps=10, product_aspect=1.1, side_aspect=1.6)
    views = [t.view for t in plan.tracks]
    assert "side" in views and views[0] == "front"
    for a, b in zip(plan.tracks, plan.tracks[1:]):
        assert a.end <= b.start and (a.view != b.view or a.end < b.start)  # a face change is a turn, no gap
    with pytest.raises(ValueError):
        plan_video(np.random.default_rng(3), video_id="v", scenario="turning", person="hopper", n_seconds=5,
                   width=360, height=640, fps=10, product_aspect=1.1)


@pytest.mark.slow
def test_turning_campaign_truth_names_the_face_shown_and_lists_both_views(tmp_path):
    c = generate_campaign(CampaignSpec(n_videos=2, seed=3, min_seconds=8, max_seconds=8, width=180, height=320,
                                       audio=False, scenario="turning"), tmp_path, write_videos=False)
    assert set(c.truth["scenario"]) == {"turning"}
    drawn = c.truth["quad_224"].notna()
    assert c.truth.loc[drawn, "product_view"].isin(["front", "side"]).all() and c.truth.loc[~drawn, "product_view"].isna().all()
    assert (c.truth["product_view"] == "side").any()
    assert sorted(c.product_images["view"]) == ["front", "front", "side", "side"]
    assert all((tmp_path / "products" / f"{p}-side.jpg").is_file() for p in c.videos["product_id"])
    default = generate_campaign(CampaignSpec(n_videos=2, seed=3, min_seconds=4, max_seconds=4, width=180, height=320,
                                             audio=False), tmp_path / "d", write_videos=False)
    assert default.product_images.empty and set(default.truth["product_view"].dropna()) <= {"front"}
