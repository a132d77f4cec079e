"""petastorm loader: a real Spark DataFrame of cached features → padded PyTorch batches, every epoch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.training import encode_features

pytestmark = pytest.mark.slow


def _rows(n: int):
    rng = np.random.default_rng(0)
    rows, arrays = [], {}
    for i in range(n):
        s = int(rng.integers(1, 5))
        f = rng.normal(size=(s, 3, 2, 2)).astype(np.float32)
        data, shape = encode_features(f)
        vid = f"v{i:02d}"
        arrays[vid] = f
        rows.append((vid, float(i), shape, bytearray(data)))
    return rows, arrays


def test_petastorm_yields_the_expected_batches_from_a_spark_dataframe(spark, tmp_path):
    from models.loader import feature_batches

    rows, arrays = _rows(11)
    df = spark.createDataFrame(rows, "video_id STRING, label DOUBLE, feature_shape ARRAY<INT>, features BINARY")
    with feature_batches(df, batch_size=4, cache_dir=str(tmp_path / "cache")) as loader:
        for _ in range(2):  # iterated once per epoch
            batches = list(loader)
            assert [len(b) for b in batches] == [4, 4, 3]
            seen = [v for b in batches for v in b.video_ids]
            assert sorted(seen) == sorted(arrays)
            for b in batches:
                s_max = max(arrays[v].shape[0] for v in b.video_ids)
                assert b.features.shape == (len(b), s_max, 3, 2, 2) and b.features.dtype == torch.float32
                for i, vid in enumerate(b.video_ids):
                    s = arrays[vid].shape[0]
                    np.testing.assert_allclose(b.features[i, :s].numpy(), arrays[vid], atol=2e-3, rtol=1e-3)
                    assert b.mask[i].tolist() == [True] * s + [False] * (s_max - s)
                    assert b.features[i, s:].abs().sum() == 0
                    assert b.labels[i].item() == float(int(vid[1:]))
    assert not any(p.name != ".gitkeep" and p.is_dir() and any(p.iterdir()) for p in (tmp_path / "cache").iterdir())

    with feature_batches(df, batch_size=3, shuffle_buffer=8, seed=1, cache_dir=str(tmp_path / "cache")) as loader:
        assert sorted(v for b in loader for v in b.video_ids) == sorted(arrays)  # shuffled, nothing lost

    with pytest.raises(ValueError, match="lacks columns"):
        with feature_batches(df.drop("label"), batch_size=2):
            pass


def _epoch_orders(loader, epochs: int = 3) -> list[list[str]]:
    return [[v for b in loader for v in b.video_ids] for _ in range(epochs)]


def test_the_same_rows_and_seed_give_the_same_batches_whatever_the_dataframe_layout(spark, tmp_path):
    """Reproducible training needs reproducible batches: the DataFrame's partitioning and row order (which vary
    between runs after a Spark shuffle), the order Spark lists its files in and numpy's global generator must
    not change them; the seed must."""
    from pyspark.sql import functions as F

    from models.loader import feature_batches

    rows, arrays = _rows(40)
    df = spark.createDataFrame(rows, "video_id STRING, label DOUBLE, feature_shape ARRAY<INT>, features BINARY")
    layouts = [df.repartition(3), df.orderBy(F.col("video_id").desc()).coalesce(2), df.repartition(5, "label")]
    orders = []
    for i, layout in enumerate(layouts):
        np.random.seed(i)  # another library advancing or reseeding numpy's global generator
        with feature_batches(layout, batch_size=4, shuffle_buffer=16, seed=7,
                             cache_dir=str(tmp_path / f"cache{i}")) as loader:
            orders.append(_epoch_orders(loader))
    assert orders[0] == orders[1] == orders[2]
    first = orders[0]
    assert all(sorted(epoch) == sorted(arrays) for epoch in first)  # shuffled, nothing lost or repeated
    assert first[0] != first[1] != first[2]  # each epoch its own order
    assert first[0] != sorted(arrays)

    with feature_batches(layouts[0], batch_size=4, shuffle_buffer=16, seed=8,
                         cache_dir=str(tmp_path / "cache-other-seed")) as loader:
        assert _epoch_orders(loader) != first

    with feature_batches(layouts[1], batch_size=4, cache_dir=str(tmp_path / "cache-unshuffled")) as loader:
        assert _epoch_orders(loader, 2) == [sorted(arrays)] * 2  # evaluation order: by video_id, every pass
