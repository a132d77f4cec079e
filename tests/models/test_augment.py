"""The training-batch regularisers on tiny tensors whose answer is known."""
from __future__ import annotations

import pytest
import torch

from models.augment import Augmentation, feature_dropout, random_hflip, random_windows
from models.settings import TrainSettings
from models.training import FeatureBatch


def _clips(lengths: list[int], s_max: int, c: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """features[b, t] = 100·b + t + 1 on real seconds (0 on padding), mask True on real seconds."""
    feats = torch.zeros(len(lengths), s_max, c, 1, 2)
    mask = torch.zeros(len(lengths), s_max, dtype=torch.bool)
    for b, n in enumerate(lengths):
        feats[b, :n] = (100 * b + torch.arange(1, n + 1, dtype=torch.float32))[:, None, None, None]
        mask[b, :n] = True
    return feats, mask


def test_random_windows_cut_consecutive_real_seconds_and_keep_short_clips_whole():
    feats, mask = _clips([8, 3, 5], s_max=8)
    gen = torch.Generator().manual_seed(0)
    starts = {0: set(), 2: set()}
    for _ in range(200):
        out, m = random_windows(feats, mask, 4, gen)
        assert out.shape == (3, 4, 2, 1, 2) and m.shape == (3, 4)
        seconds = out[:, :, 0, 0, 0]
        # clip 0 (8 s): 4 consecutive seconds t0+1..t0+4 with t0 in 0..4, all real
        t0 = int(seconds[0, 0]) - 1
        assert seconds[0].tolist() == [t0 + 1, t0 + 2, t0 + 3, t0 + 4] and m[0].all()
        starts[0].add(t0)
        # clip 1 (3 s, shorter than the window): whole, the 4th second masked as padding
        assert seconds[1, :3].tolist() == [101, 102, 103] and m[1].tolist() == [True, True, True, False]
        # clip 2 (5 s): start 0 or 1
        t2 = int(seconds[2, 0]) - 201
        assert seconds[2].tolist() == [201 + t2 + i for i in range(4)] and m[2].all()
        starts[2].add(t2)
    assert starts[0] == {0, 1, 2, 3, 4} and starts[2] == {0, 1}  # every admissible start is drawn
    out, m = random_windows(feats, mask, 20, gen)  # a window longer than every clip: nothing changes
    assert torch.equal(out, feats) and torch.equal(m, mask)
    with pytest.raises(ValueError):
        random_windows(feats, mask, 0, gen)


def test_random_hflip_mirrors_the_width_axis_of_whole_clips():
    feats = torch.arange(2 * 3 * 1 * 1 * 4, dtype=torch.float32).reshape(2, 3, 1, 1, 4)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(random_hflip(feats, 1.0, gen), feats.flip(-1))
    assert torch.equal(random_hflip(feats, 0.0, gen), feats)
    flipped = 0
    for _ in range(400):
        out = random_hflip(feats, 0.5, gen)
        for b in range(2):
            assert torch.equal(out[b], feats[b]) or torch.equal(out[b], feats[b].flip(-1))
            flipped += int(not torch.equal(out[b], feats[b]))
    assert 320 < flipped < 480  # about half of 800 clips


def test_feature_dropout_zeroes_whole_channels_and_keeps_the_expectation():
    feats = torch.ones(64, 3, 50, 2, 2)
    gen = torch.Generator().manual_seed(0)
    out = feature_dropout(feats, 0.25, gen)
    per_channel = out[:, :, :, :, :].amax(dim=(1, 3, 4))  # (B, C): a channel is dropped for all seconds/cells
    assert torch.isclose(out, torch.tensor(0.0)).logical_or(torch.isclose(out, torch.tensor(1 / 0.75))).all()
    assert torch.equal(out, per_channel[:, None, :, None, None].expand_as(out))
    assert abs(float((per_channel == 0).float().mean()) - 0.25) < 0.03
    assert abs(float(out.mean()) - 1.0) < 0.05
    assert feature_dropout(feats, 0.0, gen) is feats
    with pytest.raises(ValueError):
        feature_dropout(feats, 1.0, gen)


def test_augmentation_from_settings_is_seeded_and_leaves_labels_alone():
    feats, mask = _clips([6, 6], s_max=6, c=4)
    batch = FeatureBatch(feats, mask, torch.tensor([0.5, -0.5]), ["a", "b"])
    tc = TrainSettings(window_seconds=3, flip=0.5, feature_dropout=0.5, seed=3)
    first, again = Augmentation.from_settings(tc)(batch), Augmentation.from_settings(tc)(batch)
    assert torch.equal(first.features, again.features) and first.features.shape == (2, 3, 4, 1, 2)
    assert torch.equal(first.labels, batch.labels) and first.video_ids == ["a", "b"]
    off = Augmentation.from_settings(TrainSettings())
    assert not off.active and torch.equal(off(batch).features, feats)
