"""Spark DataFrame of cached features → PyTorch batches, through petastorm (the one place that knows it).

    with feature_batches(df, batch_size=16, shuffle_buffer=256) as batches:   # df: video_id, label,
        for epoch in range(n):                                                 #     feature_shape, features
            for batch in batches: ...                                          # FeatureBatch per step

petastorm's ``make_spark_converter`` materialises the DataFrame as Parquet under the Spark setting
``petastorm.spark.converter.parentCacheDirUrl`` (set here to a temp folder when missing);
``make_torch_dataloader`` reads it back with a thread pool and yields batches collated by
:func:`models.training.collate_feature_rows` (variable-length clips padded + masked). The loader can be
iterated once per epoch; the cache is deleted on exit. To replace petastorm, replace this module.
"""
from __future__ import annotations

import functools
import logging
import os
import tempfile
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from models.training import FeatureBatch, collate_feature_rows

# Lazy imports here are deliberate: petastorm (which loads Spark) only when a loader is made.
if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["feature_batches", "FEATURE_COLUMNS", "CACHE_DIR_CONF"]

FEATURE_COLUMNS = ("video_id", "label", "feature_shape", "features")
CACHE_DIR_CONF = "petastorm.spark.converter.parentCacheDirUrl"

# petastorm 0.12 on pyarrow 14 warns about its own use of deprecated pyarrow APIs and about small files;
# neither is actionable here.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"petastorm(\..*)?$")
logging.getLogger("petastorm").setLevel(logging.ERROR)


def _ensure_cache_dir(spark, cache_dir: str | None) -> None:
    if cache_dir is None and spark.conf.get(CACHE_DIR_CONF, None):
        return
    path = cache_dir or os.path.join(tempfile.gettempdir(), "pe-petastorm")
    if "://" not in path:
        os.makedirs(path, exist_ok=True)
        path = "file://" + os.path.abspath(path)
    spark.conf.set(CACHE_DIR_CONF, path)


class _ShufflingBuffer:
    """Rows in a random order with bounded memory: holds at most ``capacity`` rows, hands out a random one
    whenever it is over, and the rest at the end — drawn from ``rng``. (petastorm's RandomShufflingBuffer draws
    from numpy's global generator, which any library in the process may reseed or advance.)"""

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        self.capacity, self.rng = capacity, rng
        self.items: list = []

    def add(self, item) -> Iterator:
        """Add one row; yield the rows it pushes out (none until the buffer is full)."""
        self.items.append(item)
        while len(self.items) > self.capacity:
            yield self._pop()

    def drain(self) -> Iterator:
        while self.items:
            yield self._pop()

    def _pop(self):
        i = int(self.rng.integers(len(self.items)))
        self.items[i], self.items[-1] = self.items[-1], self.items[i]
        return self.items.pop()


class _FeatureRowLoader:
    """petastorm ``data_loader_fn``: unbatches the reader's row groups into rows, shuffles them through a
    :class:`_ShufflingBuffer` of ``shuffling_queue_capacity`` rows (0: the read order) and collates
    ``batch_size`` rows into a :class:`FeatureBatch`.

    (petastorm's own DataLoader refuses string and binary columns, which carry the video ids and features.)
    Iterable once per epoch: a new pass resets the reader; one generator seeded by ``seed`` serves every pass,
    so each epoch has its own order and a run's orders repeat exactly."""

    def __init__(self, reader, batch_size: int = 1, shuffling_queue_capacity: int = 0, seed: int | None = None
                 ) -> None:
        self.reader = reader
        self.batch_size = batch_size
        self.capacity = shuffling_queue_capacity
        self.rng = np.random.default_rng(seed)
        self._passes = 0

    def __iter__(self) -> Iterator[FeatureBatch]:
        if self._passes:
            self.reader.reset()
        self._passes += 1
        rows: list[dict] = []
        for row in self._rows():
            rows.append(row)
            if len(rows) == self.batch_size:
                yield collate_feature_rows(rows)
                rows = []
        if rows:
            yield collate_feature_rows(rows)

    def _rows(self) -> Iterator[dict]:
        buffer = _ShufflingBuffer(self.capacity, self.rng) if self.capacity > 0 else None
        for group in self.reader:
            columns = group._asdict()
            for values in zip(*columns.values()):
                row = dict(zip(columns, values))
                if buffer is None:
                    yield row
                else:
                    yield from buffer.add(row)
        if buffer is not None:
            yield from buffer.drain()


@contextmanager
def feature_batches(df: "DataFrame", *, batch_size: int, shuffle_buffer: int = 0, workers: int = 1,
                    cache_dir: str | None = None, seed: int | None = None) -> Iterator[Iterable[FeatureBatch]]:
    """Yield a re-iterable loader of :class:`FeatureBatch` over ``df`` (columns :data:`FEATURE_COLUMNS`).

    ``shuffle_buffer`` > 0 shuffles rows through a buffer of that many rows and the row groups' order, both
    drawn from ``seed``; 0 keeps the stored order (use for evaluation).

    Reproducible: the same rows and ``seed`` give the same batches in the same order in every run. The rows
    are stored sorted by video_id (a DataFrame's physical order after a shuffle varies from run to run) and
    the files read in name order (Spark lists a DataFrame's files in no set order). With ``workers`` > 1,
    row groups are read by several threads and arrive in the order they finish: faster on large sets,
    but the batches — and a model trained on them — then vary between runs."""
    from petastorm.spark import make_spark_converter

    missing = [c for c in FEATURE_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"the feature DataFrame lacks columns {missing} (has {df.columns})")
    _ensure_cache_dir(df.sparkSession, cache_dir)
    # Small row groups: a few videos each, so shuffling mixes videos and memory stays bounded.
    converter = make_spark_converter(df.select(*FEATURE_COLUMNS).orderBy("video_id"),
                                     parquet_row_group_size_bytes=8 * 1024 * 1024)
    converter.file_urls = sorted(converter.file_urls)
    if len(converter) == 0:
        converter.delete()
        raise ValueError("the feature DataFrame is empty")
    try:
        with converter.make_torch_dataloader(
            batch_size=batch_size, num_epochs=1, workers_count=workers, shuffling_queue_capacity=shuffle_buffer,
            data_loader_fn=functools.partial(_FeatureRowLoader, seed=seed), shuffle_row_groups=shuffle_buffer > 0,
            seed=seed,
        ) as loader:
            yield loader
    finally:
        converter.delete()
