"""Config loading: defaults, overrides, and errors that name the key and the file."""
from __future__ import annotations

import os

import pytest

from jobs.config import ConfigError, load_config


def test_default_config_is_the_embedded_local_setup():
    cfg = load_config()
    assert cfg.spark.master == "local[*]"
    assert cfg.device == "auto"
    assert cfg.lake_path == os.path.abspath("lake")
    assert cfg.tracking_uri == f"sqlite:///{os.path.abspath('lake')}/mlflow.db"
    assert cfg.clip.fps == 1.0 and cfg.clip.max_seconds == 60 and cfg.clip.size == 224


def test_lake_override_and_nested_overrides(tmp_path):
    cfg = load_config(lake=str(tmp_path), overrides={"clip": {"max_seconds": 10}})
    assert cfg.lake_path == str(tmp_path)
    assert cfg.clip.max_seconds == 10 and cfg.clip.fps == 1.0  # untouched siblings keep defaults
    assert cfg.allowed_roots == [str(tmp_path)]


def test_cluster_example_is_valid():
    cfg = load_config("conf/cluster.example.yaml")
    assert cfg.lake_path == "s3a://my-bucket/pe-lake"
    assert cfg.spark.conf["spark.task.resource.gpu.amount"] == "0.25"


def test_misspelled_key_is_rejected_naming_key_and_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lake: ./lake\nspark:\n  mastr: local[2]\n")
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert "unknown key 'spark.mastr'" in str(e.value)
    assert str(bad) in str(e.value)


def test_wrong_type_is_rejected_naming_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("clip:\n  fps: fast\n")
    with pytest.raises(ConfigError, match=r"clip\.fps"):
        load_config(bad)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("spark: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
