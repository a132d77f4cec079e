"""The session factory's derived settings (pure functions, no JVM)."""
from __future__ import annotations

import os

import pytest

from jobs.spark import local_cores, with_task_retries


@pytest.mark.parametrize("master, expected", [
    ("local", 1), ("local[2]", 2), ("local[4,3]", 4), ("local[*]", os.cpu_count() or 1), (" local[8] ", 8),
    ("spark://host:7077", None), ("yarn", None), ("k8s://https://api:6443", None), ("", None),
])
def test_local_masters_give_their_cores_and_other_masters_none(master, expected):
    # Delta's log replay is sized by this (one partition per local core; a cluster keeps Delta's default)
    assert local_cores(master) == expected


def test_local_masters_get_their_task_attempts_in_the_master_url():
    assert with_task_retries("local[*]", 3) == "local[*,4]"
    assert with_task_retries("local", 0) == "local[1,1]"
    assert with_task_retries("local[2,5]", 3) == "local[2,5]"  # a master that says F is kept
    assert with_task_retries("spark://h:7077", 3) == "spark://h:7077"
