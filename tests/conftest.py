"""Shared fixtures: one local Spark session for the whole run, and a config + lake on a temp folder."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

#: The paper's public panel (internal validation data, never in the repository); tests skip without it.
REFERENCE_PANEL = Path(os.environ.get("PE_REFERENCE_PANEL", REPO_ROOT.parent / "shared" / "reference" / "paper-panel-2023-07"))


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from jobs.config import load_config
    from jobs.spark import get_spark

    cfg = load_config(lake=str(tmp_path_factory.mktemp("spark-lake")),
                      overrides={"spark": {"master": "local[2]", "show_progress": False, "shuffle_partitions": 2}})
    session = get_spark(cfg)
    yield session
    session.stop()


@pytest.fixture
def cfg(tmp_path):
    from jobs.config import load_config

    return load_config(lake=str(tmp_path / "lake"),
                       overrides={"spark": {"master": "local[2]", "show_progress": False, "shuffle_partitions": 2}})


@pytest.fixture
def lake(cfg, spark):
    from jobs.storage.lake import Lake

    return Lake.from_config(cfg, spark)
