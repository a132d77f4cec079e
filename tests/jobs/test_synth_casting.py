"""Casting (jobs/synth/casting.py): the influencers pe train holds out for testing are shown with people,
backgrounds and products that no other influencer's video shows."""
from __future__ import annotations

import pandas as pd
import pytest

from jobs.synth.campaign import CampaignSpec, plan_campaign
from jobs.synth.casting import ANY, HELD_OUT, SEEN, HoldOut, cast_influencers
from jobs.synth.footage import BACKGROUND_KEYS, PERSON_KEYS, background_asset
from jobs.synth.products import PRODUCT_KEYS
from models.labels import split_by_group


def _material(jobs, meta) -> pd.DataFrame:
    """Per video: its cast, person, the backgrounds of its shots and its product."""
    rows = []
    for job, m in zip(jobs, meta.itertuples()):
        shots = job.plan.shots
        rows.append({"video_id": m.video_id, "influencer_id": m.influencer_id, "material": m.material,
                     "people": {s.person for s in shots if s.person}, "product": m.product_key,
                     "backgrounds": {s.background for s in shots if s.background}})
    return pd.DataFrame(rows)


def test_casts_split_all_the_material_in_two():
    for kind, everything in (("people", PERSON_KEYS), ("backgrounds", BACKGROUND_KEYS), ("products", PRODUCT_KEYS)):
        seen, held = set(getattr(SEEN, kind)), set(getattr(HELD_OUT, kind))
        assert not seen & held and seen | held == set(everything) == set(getattr(ANY, kind)), kind


def test_new_backgrounds_load_as_defocused_photos():
    for key in ("china", "motorcycle"):
        bg = background_asset(key)
        assert bg.frames.shape[0] == 1 and bg.frames.shape[1] > 400 and bg.frames.shape[3] == 3 and bg.fps == 0


def test_a_campaign_spec_holds_out_the_split_of_pe_trains_default_config():
    from jobs.config import PEConfig
    from jobs.synth.sample import campaign_spec

    t = PEConfig().train
    assert CampaignSpec(2, 1).hold_out == HoldOut(t.split_seed, t.val_fraction, t.test_fraction)
    assert campaign_spec(PEConfig()).hold_out == CampaignSpec(2, 1).hold_out


@pytest.mark.parametrize("seed", [3, 8])
def test_test_influencers_see_no_material_of_training(tmp_path, seed):
    hold = HoldOut(17, 0.2, 0.25)
    spec = CampaignSpec(n_videos=60, seed=seed, width=180, height=320, min_seconds=8, max_seconds=12, hold_out=hold)
    jobs, meta, _, _ = plan_campaign(spec, tmp_path)
    m = _material(jobs, meta)
    # exactly pe train's test split is held out
    split = split_by_group(meta[["video_id", "influencer_id"]], seed=17, val_fraction=0.2, test_fraction=0.25)
    assert ((split == "test") == (m["material"] == "held_out")).all()
    assert 0.25 <= (split == "test").mean() < 0.4
    held, rest = m[m["material"] == "held_out"], m[m["material"] == "seen"]
    assert len(rest) == len(m) - len(held)
    for kind in ("people", "backgrounds"):
        used_held, used_rest = set().union(*held[kind]), set().union(*rest[kind])
        assert used_held <= set(getattr(HELD_OUT, kind)) and used_rest <= set(getattr(SEEN, kind)), kind
        assert not used_held & used_rest and len(used_held) >= 2 and len(used_rest) >= 2, kind
    assert set(held["product"]) == set(HELD_OUT.products) and set(rest["product"]) == set(SEEN.products)
    # an influencer is one person, and every video still gets its own SKU
    assert (m.groupby("influencer_id")["people"].agg(lambda p: len(set().union(*p))) == 1).all()
    assert meta["title"].nunique() == len(meta)


def test_without_a_split_every_influencer_draws_from_all_material(tmp_path):
    jobs, meta, _, _ = plan_campaign(CampaignSpec(n_videos=30, seed=4, width=180, height=320, min_seconds=8,
                                                  max_seconds=10, hold_out=None), tmp_path)
    assert set(meta["material"]) == {"any"}
    assert set(meta["product_key"]) == set(PRODUCT_KEYS)
    assert cast_influencers(["v"], ["i"], None) == {"i": ANY}
