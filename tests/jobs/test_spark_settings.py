"""The session factory's derived settings (pure functions, no JVM)."""
from __future__ import annotations

import os

import pytest

from jobs.spark import delta_snapshot_partitions, with_task_retries


@pytest.mark.parametrize("master, expected", [
    ("local", 1), ("local[2]", 2), ("local[4,3]", 4), ("local[*]", os.cpu_count() or 1), (" local[8] ", 8),
    ("spark://host:7077", None), ("yarn", None), ("k8s://https://api:6443", None), ("", None),
])
def test_delta_log_replay_is_sized_to_the_local_cores_and_left_to_delta_on_a_cluster(master, expected):
    assert delta_snapshot_partitions(master) == expected


def test_local_masters_get_their_task_attempts_in_the_master_url():
    assert with_task_retries("local[*]", 3) == "local[*,4]"
    assert with_task_retries("local", 0) == "local[1,1]"
    assert with_task_retries("local[2,5]", 3) == "local[2,5]"  # a master that says F is kept
    assert with_task_retries("spark://h:7077", 3) == "spark://h:7077"
