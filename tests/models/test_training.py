"""Feature encoding, padded batches and the head training loop on tiny known problems."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.network import create_engagement_head
from models.training import (
    FeatureBatch,
    collate_feature_rows,
    decode_features,
    encode_features,
    evaluate_loss,
    fit_head,
    predict_head,
)


def test_features_round_trip_as_float16_bytes():
    feats = np.random.default_rng(0).normal(size=(3, 4, 2, 2)).astype(np.float32)
    data, shape = encode_features(torch.from_numpy(feats))
    assert shape == [3, 4, 2, 2] and len(data) == feats.size * 2
    back = decode_features(data, shape)
    assert back.dtype == np.float16
    np.testing.assert_allclose(back.astype(np.float32), feats, rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="needs"):
        decode_features(data[:-2], shape)
    with pytest.raises(ValueError, match="non-finite"):
        encode_features(np.full((1, 1, 1, 1), 1e6, dtype=np.float32))  # float16 overflow is refused


def test_collate_pads_to_the_longest_clip_and_masks():
    rows = []
    for vid, s in (("a", 2), ("b", 4), ("c", 1)):
        data, shape = encode_features(np.full((s, 3, 2, 2), float(s), dtype=np.float32))
        rows.append({"video_id": vid, "label": s / 10, "feature_shape": np.array(shape, dtype=np.int32),
                     "features": data})
    batch = collate_feature_rows(rows)
    assert batch.features.shape == (3, 4, 3, 2, 2) and batch.features.dtype == torch.float32
    assert batch.mask.tolist() == [[True, True, False, False], [True] * 4, [True, False, False, False]]
    assert batch.features[0, :2].eq(2).all() and batch.features[0, 2:].eq(0).all()
    torch.testing.assert_close(batch.labels, torch.tensor([0.2, 0.4, 0.1]))
    assert batch.video_ids == ["a", "b", "c"]
    bad = dict(rows[0], feature_shape=[2, 3, 1, 4], features=encode_features(np.zeros((2, 3, 1, 4)))[0])
    with pytest.raises(ValueError, match="do not have shape"):
        collate_feature_rows([rows[1], bad])


def _batches(n: int, *, seed: int, batch: int = 32) -> list[FeatureBatch]:
    """Clips of 1-5 frames of 2-channel 3x3 features with a planted answer: channel 0 holds the label v
    (plus small noise) everywhere, channel 1 is noise. Conv → ReLU → max pool → MLP can represent v exactly."""
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, n, batch):
        rows = []
        for i in range(start, min(n, start + batch)):
            s, v = int(rng.integers(1, 6)), float(rng.uniform(0, 2))
            f = rng.normal(size=(s, 2, 3, 3)).astype(np.float32)
            f[:, 0] = v + 0.05 * f[:, 0]
            data, shape = encode_features(f)
            rows.append({"video_id": str(i), "label": v, "feature_shape": shape, "features": data})
        out.append(collate_feature_rows(rows))
    return out


def test_fit_head_learns_a_known_function_and_keeps_the_best_epoch():
    torch.manual_seed(0)
    head = create_engagement_head(in_channels=2, conv_filters=8, dense_units=16, dropout=0.0)
    train, val = _batches(128, seed=1), _batches(32, seed=2)
    labels = torch.cat([b.labels for b in val])
    const_mse = float(((labels - torch.cat([b.labels for b in train]).mean()) ** 2).mean())
    seen = []
    result = fit_head(head, train, val, epochs=25, patience=8, learning_rate=3e-2, on_epoch=seen.append)
    assert len(seen) == result.epochs_run and result.history == seen
    assert result.best_val_loss == min(r["val_loss"] for r in seen)
    assert seen[result.best_epoch - 1]["val_loss"] == result.best_val_loss
    ids, preds, y = predict_head(head, val)
    assert ids == [str(i) for i in range(32)] and preds.shape == (32,)
    mse = float(((preds - y) ** 2).mean())
    assert mse == pytest.approx(result.best_val_loss, rel=1e-5)  # the best weights were restored
    assert mse < 0.1 * const_mse


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    torch.manual_seed(0)
    head = create_engagement_head(in_channels=2, conv_filters=4, dense_units=4, dropout=0.0)
    train, val = _batches(16, seed=3), _batches(16, seed=4)
    # a huge learning rate makes validation loss blow up after the first epoch or two
    result = fit_head(head, train, val, epochs=50, patience=3, learning_rate=5.0)
    assert result.stopped_early and result.epochs_run == result.best_epoch + 3 and result.epochs_run < 50


def test_empty_training_split_is_an_error():
    head = create_engagement_head(in_channels=2, conv_filters=4, dense_units=4)
    with pytest.raises(ValueError, match="training split is empty"):
        fit_head(head, [], _batches(4, seed=0), epochs=1, patience=1, learning_rate=1e-3)


class _FirstValue(torch.nn.Module):
    """A 'head' that predicts the first feature value of each clip (features, mask → (B,))."""

    def forward(self, features, mask=None):
        return features[:, 0, 0, 0, 0]


def test_validation_loss_within_groups_ignores_a_level_per_group():
    values = torch.tensor([1.0, 3.0, 2.0, 6.0])
    level = torch.tensor([10.0, 10.0, -4.0, -4.0])  # a per-group offset no model could know for a new group
    labels = values - torch.tensor([2.0, 2.0, 4.0, 4.0])  # the label: the value within its group
    batch = FeatureBatch((values + level)[:, None, None, None, None], torch.ones(4, 1, dtype=torch.bool), labels,
                         ["a1", "a2", "b1", "b2"])
    raw = evaluate_loss(_FirstValue(), [batch])
    assert raw == pytest.approx(float(((values + level - labels) ** 2).mean()))
    assert evaluate_loss(_FirstValue(), [batch], groups={"a1": "a", "a2": "a", "b1": "b", "b2": "b"}) == 0.0
