"""pe_udfs.udf: decoding runs ahead of scoring in one thread (in order, errors stay with their row); the device
and frame chunk a task uses."""
from __future__ import annotations

import threading
import time

import pytest

from pe_udfs.udf import _fixed_chunk, prefetched, task_device


def test_items_come_back_in_order_with_their_results_and_errors():
    def fn(x):
        if x == 2:
            raise ValueError("bad row 2")
        return x * 10

    out = list(prefetched(range(5), fn, depth=1))
    assert [item for item, _ in out] == [0, 1, 2, 3, 4]
    assert [f.result() for item, f in out if item != 2] == [0, 10, 30, 40]
    with pytest.raises(ValueError, match="bad row 2"):
        out[2][1].result()


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_the_next_items_decode_while_the_current_one_is_processed(depth):
    started: list[int] = []
    lock = threading.Lock()

    def fn(x):
        with lock:
            started.append(x)
        return x

    seen = []
    for item, fut in prefetched(range(6), fn, depth=depth):
        fut.result()
        time.sleep(0.05)  # "scoring" the current item: the worker thread has time to start the next ones
        with lock:
            seen.append(max(started))
    # while item i is processed, items up to i + depth have been submitted (and, given the time, started)
    assert seen == [min(i + depth, 5) for i in range(6)]


def test_outside_a_spark_task_the_device_is_kept():
    assert task_device("auto") == "auto" and task_device("cpu") == "cpu" and task_device("cuda:1") == "cuda:1"


def test_a_cpu_worker_keeps_the_automatic_chunk():
    from types import SimpleNamespace

    from pe_udfs.settings import ClipSettings, DecodeSettings, ProductSettings, SaliencySettings, ScoringPlan

    loaded = SimpleNamespace(device="cpu", module=None)

    def plan(saliency):
        return ScoringPlan(ClipSettings(), ProductSettings(), saliency, DecodeSettings())

    assert _fixed_chunk(plan(SaliencySettings()), loaded, 0.25).frame_chunk == 0
    assert _fixed_chunk(plan(SaliencySettings(frame_chunk=5)), loaded, 0.25).frame_chunk == 5
