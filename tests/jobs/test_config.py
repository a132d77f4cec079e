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


def test_yaml_alias_bomb_is_refused_quickly_without_echoing_it(tmp_path):
    import time

    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    lines.append("lake: *i")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"YAML aliases \(\*a\) are not allowed") as e:
        load_config(bomb)
    assert time.perf_counter() - t0 < 2 and len(str(e.value)) < 300


def test_oversized_config_file_is_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 300_000 + "\nlake: ./lake\n")
    with pytest.raises(ConfigError, match="at most 262,144 are allowed"):
        load_config(big)


@pytest.mark.parametrize("overrides, key", [
    ({"clip": {"fps": float("inf")}}, "clip.fps"),
    ({"clip": {"fps": float("nan")}}, "clip.fps"),
    ({"clip": {"max_seconds": 10**9}}, "clip.max_seconds"),
    ({"product": {"ratio": float("nan")}}, "product.ratio"),
])
def test_numeric_values_must_be_finite_and_in_range(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=overrides)


def test_lake_at_the_filesystem_root_is_refused():
    with pytest.raises(ConfigError, match="not the file system's root"):
        load_config(lake="/")


def test_long_wrong_values_are_cut_in_the_message():
    with pytest.raises(ConfigError) as e:
        load_config(overrides={"clip": {"fps": "x" * 5000}})
    assert len(str(e.value)) < 400
