"""Labels and split: whole influencers per split; fixed effects and standardisation never see held-out rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.labels import LabelError, build_labels, split_by_group, within_groups


def _frame(n_inf: int = 40, per: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [{"video_id": f"v{i:03d}-{k}", "influencer_id": f"inf{i:03d}",
             "shares": int(rng.integers(0, 5000)), "likes": int(rng.integers(0, 900))}
            for i in range(n_inf) for k in range(per)]
    return pd.DataFrame(rows)


def test_every_influencer_is_in_one_split_and_the_split_is_deterministic():
    df = _frame()
    split = split_by_group(df, seed=17, val_fraction=0.2, test_fraction=0.25)
    assert split.equals(split_by_group(df.sample(frac=1, random_state=3).sort_index(), seed=17, val_fraction=0.2,
                                       test_fraction=0.25))
    assert (df.assign(split=split).groupby("influencer_id")["split"].nunique() == 1).all()
    share = split.value_counts() / len(df)
    # whole groups of 3 fill each held-out set up to its fraction (never below it, at most one group above)
    assert 0.25 <= share["test"] < 0.25 + 3 / len(df) and 0.2 <= share["val"] < 0.2 + 2 * 3 / len(df)
    assert not split.equals(split_by_group(df, seed=18, val_fraction=0.2, test_fraction=0.25))
    # a video without an influencer is its own group
    lone = pd.DataFrame({"video_id": ["a", "b"], "influencer_id": [None, None]})
    assert len(split_by_group(lone, seed=1, val_fraction=0.3, test_fraction=0.3)) == 2


def _labels(df, split, definition="log1p_shares_resid_influencer"):
    out, info = build_labels(df, definition, split)
    return out.set_index("video_id")["label"], info


def test_fixed_effects_and_standardisation_use_training_rows_only():
    df = _frame()
    split = split_by_group(df, seed=17, val_fraction=0.2, test_fraction=0.25)
    label, info = _labels(df, split)
    # the labels by hand: within-influencer demeaning, then the TRAINING residuals' mean and SD
    y = np.log1p(df["shares"].astype(float))
    r = y - y.groupby(df["influencer_id"]).transform("mean")
    train = r[split == "train"]
    expected = ((r - train.mean()) / train.std(ddof=1)).set_axis(df["video_id"])
    pd.testing.assert_series_equal(label.sort_index(), expected.sort_index(), check_names=False)
    assert info["sd"] == pytest.approx(train.std(ddof=1)) and info["standardised_on"] == "train"

    # leakage would show here: the held-out videos' counts change (by a lot), the training labels must not
    held_out = split != "train"
    changed = df.assign(shares=np.where(held_out, df["shares"] * 1000 + 7, df["shares"]))
    label2, info2 = _labels(changed, split)
    train_ids = df.loc[~held_out, "video_id"]
    pd.testing.assert_series_equal(label2[train_ids], label[train_ids])
    assert (info2["mean"], info2["sd"]) == (info["mean"], info["sd"])
    # ... and a test video's label depends only on its own influencer's (test) videos, through train's mean/SD
    test_inf = df.loc[split == "test", "influencer_id"].iloc[0]
    mine = df["influencer_id"] == test_inf
    others_test = (split == "test") & ~mine
    label3, _ = _labels(df.assign(shares=np.where(others_test, 1, df["shares"])), split)
    ids = df.loc[mine, "video_id"]
    pd.testing.assert_series_equal(label3[ids], label[ids])


def test_single_video_influencers_carry_no_label_after_fixed_effects():
    df = pd.concat([_frame(20), pd.DataFrame({"video_id": ["solo", "anon"], "influencer_id": ["inf-solo", None],
                                              "shares": [10, 20], "likes": [1, 2]})], ignore_index=True)
    split = split_by_group(df, seed=5, val_fraction=0.2, test_fraction=0.2)
    label, info = _labels(df, split)
    assert "solo" not in label.index and "anon" not in label.index and info["single_video_excluded"] == 2
    # without fixed effects they are ordinary videos
    plain, info = _labels(df, split, "log1p_shares")
    assert {"solo", "anon"} <= set(plain.index) and info["single_video_excluded"] == 0
    y = np.log1p(df["shares"].astype(float)).set_axis(df["video_id"])
    t = y[split.values == "train"]
    assert plain["solo"] == pytest.approx((y["solo"] - t.mean()) / t.std(ddof=1))


def test_missing_or_negative_counts_are_dropped_and_a_constant_label_is_refused():
    df = _frame(10).astype({"shares": "float"})
    df.loc[0, "shares"], df.loc[1, "shares"] = np.nan, -3
    split = split_by_group(df, seed=5, val_fraction=0.2, test_fraction=0.2)
    out, info = build_labels(df, "log1p_shares", split)
    assert len(out) == len(df) - 2 and info["invalid_count_excluded"] == 2
    with pytest.raises(LabelError, match="at least 2 training videos"):
        build_labels(df.assign(shares=5.0), "log1p_shares", split)
    with pytest.raises(LabelError, match="unknown label"):
        build_labels(df, "views", split)


def test_within_groups_removes_each_groups_mean():
    got = within_groups(np.array([1.0, 3.0, 10.0, 20.0, 30.0]), ["a", "a", "b", "b", "b"])
    np.testing.assert_allclose(got, [-1.0, 1.0, -10.0, 0.0, 10.0])
