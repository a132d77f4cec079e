"""The training loader's shuffling buffer: a seeded order, nothing lost, memory bounded by its capacity."""
from __future__ import annotations

import numpy as np

from models.loader import _ShufflingBuffer


def _shuffled(items, capacity: int, seed: int, peak: list[int] | None = None) -> list:
    buffer = _ShufflingBuffer(capacity, np.random.default_rng(seed))
    out = []
    for item in items:
        out.extend(buffer.add(item))
        if peak is not None:
            peak.append(len(buffer.items))
    return out + list(buffer.drain())


def test_the_order_is_drawn_from_the_seed_alone():
    items = list(range(50))
    np.random.seed(1)
    a = _shuffled(items, 8, seed=3)
    np.random.seed(2)  # numpy's global generator plays no part
    assert _shuffled(items, 8, seed=3) == a
    assert _shuffled(items, 8, seed=4) != a
    assert sorted(a) == items and a != items


def test_the_buffer_never_holds_more_than_its_capacity():
    peak: list[int] = []
    out = _shuffled(range(100), 5, seed=0, peak=peak)
    assert max(peak) == 5 and sorted(out) == list(range(100))
    # only rows within `capacity` places of each other are mixed: row i cannot come out before place i - capacity
    assert all(out.index(i) >= i - 5 for i in range(100))
