"""bench/learning_curve.py: nested influencer subsets, one curve point on features that carry the label, and the
format of the last line."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from bench import learning_curve as lc
from models.training import encode_features


def _campaign(n_influencers: int = 40, per: int = 4, seed: int = 0) -> pd.DataFrame:
    """Videos whose features carry the truth among noise: channel 0 of every second = true engagement z, 31 more
    channels of twice its SD that carry nothing (so an untrained head's output is not already a ranking of z: a
    random head's projection of a time-coherent signal among few quiet channels ranks it by chance); shares follow z plus noise and the influencer's level (removed again by the fixed-effects label)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_influencers):
        level = rng.normal(0, 1)
        for j in range(per):
            z = rng.normal()
            feats = rng.normal(0, 2, size=(4, 32, 1, 1)).astype(np.float32)
            feats[:, 0] = z
            data, shape = encode_features(feats)
            rows.append({"video_id": f"v{i:03d}-{j}", "influencer_id": f"inf{i:03d}", "true_engagement": z,
                         "shares": int(np.expm1(3 + level + z + rng.normal(0, 0.3))), "likes": 0,
                         "feature_shape": shape, "features": data, "backbone": "tiny"})
    return pd.DataFrame(rows)


def test_nested_subsets_take_whole_influencers_and_grow_by_inclusion():
    df = _campaign()
    small, large = lc.nested_subset(df, 30), lc.nested_subset(df, 90)
    assert 30 <= len(small) < 34 and 90 <= len(large) < 94
    assert set(small["video_id"]) < set(large["video_id"])
    for sub in (small, large):  # an influencer is either wholly in or out
        assert (sub["influencer_id"].value_counts() == 4).all()
    assert len(lc.nested_subset(df, 10_000)) == len(df)


@pytest.fixture
def cfg(tmp_path):
    from jobs.config import load_config

    return load_config(lake=str(tmp_path / "lake"), overrides={"device": "cpu", "train": {
        "epochs": 60, "patience": 10, "batch_size": 8, "learning_rate": 1e-2,
        "gate": {"min_test_videos": 12, "bootstrap": 300}}, "model": {"conv_filters": 8, "dense_units": 8}})


@pytest.mark.slow
def test_a_curve_point_learns_signal_that_is_there_and_the_permuted_control_does_not(cfg):
    df = _campaign()
    point = lc.curve_point(df, 160, cfg)
    assert point.n == 160 and point.n_test >= 12
    assert point.spearman > 0.6 and point.ci_low > 0 and point.gate == "promoted"
    assert point.ceiling > 0.5 and point.truth > 0.6 and point.truth_ratio == pytest.approx(point.truth / point.ceiling)
    control = lc.curve_point(df, 160, cfg, permute=True)
    assert control.gate != "promoted" and control.ci_low < 0.3


def test_the_last_line_has_the_documented_format():
    p = lc.Point(n=200, n_train=110, n_val=40, n_test=50, spearman=0.3123, ci_low=0.0456, ci_high=0.55, truth=0.44,
                 truth_low=0.2, truth_high=0.6, ceiling=0.5, gate="promoted", best_epoch=4, r2=0.05)
    line = lc.summary_line(p)
    assert re.fullmatch(r"learning n200_spearman=-?\d+\.\d{3} n200_ci_low=-?\d+\.\d{3} n200_truth_ratio=-?\d+\.\d{2}",
                        line), line
    assert line == "learning n200_spearman=0.312 n200_ci_low=0.046 n200_truth_ratio=0.88"


def test_over_repeated_splits_the_last_line_gives_means_and_the_worst_ratio():
    def point(spearman, ci_low, truth):  # ceiling 0.5: truth ratio = truth / 0.5
        return lc.Point(n=200, n_train=110, n_val=40, n_test=50, spearman=spearman, ci_low=ci_low, ci_high=0.9,
                        truth=truth, truth_low=0.1, truth_high=0.9, ceiling=0.5, gate="promoted", best_epoch=3, r2=0.1)

    line = lc.summary_line([point(0.5, 0.2, 0.45), point(0.7, 0.4, 0.35)])
    assert line == ("learning n200_spearman=0.600 n200_ci_low=0.300 n200_truth_ratio=0.80 n200_splits=2 "
                    "n200_truth_ratio_min=0.70")
    assert "gate promoted in 2/2" in lc.splits_line(200, [point(0.5, 0.2, 0.45), point(0.7, 0.4, 0.35)])
