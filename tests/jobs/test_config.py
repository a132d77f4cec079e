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


# Values that pass a type check but make the JVM exit at start-up: refused at load, before any JVM, naming the key.
@pytest.mark.parametrize("overrides, key", [
    ({"spark": {"shuffle_partitions": 1_000_000_000}}, "spark.shuffle_partitions"),
    ({"spark": {"driver_memory": "lots"}}, "spark.driver_memory"),
    ({"spark": {"driver_memory": "0g"}}, "spark.driver_memory"),
    ({"spark": {"driver_memory": "1.5g"}}, "spark.driver_memory"),
    ({"spark": {"master": "yarn://nowhere"}}, "spark.master"),
    ({"spark": {"master": "local[0]"}}, "spark.master"),
    ({"spark": {"log_level": "LOUD"}}, "spark.log_level"),
    ({"spark": {"conf": {"spark.executor.memory": "lots"}}}, "spark.executor.memory"),
    ({"spark": {"conf": {"spark.sql.shuffle.partitions": "1000000000"}}}, "spark.sql.shuffle.partitions"),
    ({"spark": {"conf": {"spark.master": "yarn://nowhere"}}}, "spark.master"),
    ({"score": {"partitions": 0}}, "score.partitions"),
])
def test_spark_values_the_jvm_refuses_are_refused_at_load(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as e:
        load_config(overrides=overrides)
    assert e.value.exit_code == 2


@pytest.mark.parametrize("master", ["local", "local[2]", "local[*]", "local[*,4]", "local-cluster[2,1,1024]",
                                    "spark://10.0.0.1:7077", "spark://a:7077,b:7077", "yarn",
                                    "k8s://https://api.example.com:6443"])
def test_every_spark_master_form_is_accepted(master):
    assert load_config(overrides={"spark": {"master": master, "driver_memory": "512m"}}).spark.master == master


def test_cli_bad_spark_value_is_exit_2_naming_the_key_before_any_jvm(tmp_path):
    import time

    from typer.testing import CliRunner

    from jobs.cli import app

    for text, key in (("spark:\n  driver_memory: lots\n", "spark.driver_memory"),
                      ("spark:\n  master: yarn://nowhere\n", "spark.master"),
                      ("spark:\n  shuffle_partitions: 1000000000\n", "spark.shuffle_partitions")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        t0 = time.perf_counter()
        out = CliRunner().invoke(app, ["--config", str(bad), "--lake", str(tmp_path / "lake"), "tables"])
        assert out.exit_code == 2 and out.output.startswith("error: config: ") and key in out.output, out.output
        assert "JAVA_GATEWAY" not in out.output and time.perf_counter() - t0 < 5


def test_duplicate_keys_are_refused_naming_the_lines(tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text("spark:\n  master: local[2]\n  driver_memory: 2g\n  master: local[8]\n")
    with pytest.raises(ConfigError, match=r"key 'master' appears twice .*lines 2 and 4") as e:
        load_config(dup)
    assert e.value.reason == "duplicate_key"
    top = tmp_path / "top.yaml"
    top.write_text("lake: ./a\nclip:\n  fps: 2\nlake: ./b\n")
    with pytest.raises(ConfigError, match="key 'lake' appears twice"):
        load_config(top)
    same_name_elsewhere = tmp_path / "ok.yaml"  # one name in two different mappings is fine
    same_name_elsewhere.write_text("spark:\n  conf: {}\nclip:\n  fps: 2\nsample:\n  fps: 25\n")
    assert load_config(same_name_elsewhere).sample.fps == 25


SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("name, text", [
    ("credentials", f"[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {SECRET}\n"),
    ("config.json", '{"auths": {"registry.example.com": {"auth": "' + SECRET + '"}}}'),
    ("kubeconfig", f"apiVersion: v1\nusers:\n- name: admin\n  user:\n    token: {SECRET}\n"),
    ("passwd", f"root:x:0:0:{SECRET}:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/sh\n"),
    (".env", f"SECRET_KEY={SECRET}\nDB_PASSWORD: {SECRET}\n"),
    ("tabbed", f"token:\t{SECRET}\n\t{SECRET}: x\n"),
    ("tagged", f"!{SECRET} x: 1\n"),
    ("keyed.yaml", f"{SECRET}: default\nAKIAIOSFODNN7EXAMPLE: 1\n"),
])
def test_errors_never_echo_the_contents_of_a_file_that_is_not_a_config(tmp_path, name, text):
    from typer.testing import CliRunner

    from jobs.cli import app

    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert e.value.exit_code == 2
    for part in (SECRET, "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI"):
        assert part not in str(e.value), str(e.value)
    out = CliRunner().invoke(app, ["--config", str(path), "tables"])
    assert out.exit_code == 2 and SECRET[:12] not in out.output and out.output.count("\n") == 1, out.output


def test_the_config_accepts_exactly_the_registered_map_methods():
    from pydantic import ValidationError

    from jobs.config import PEConfig
    from pe_udfs.saliency import METHODS

    for name in METHODS:
        assert PEConfig(saliency={"method": name}).saliency.method == name
    with pytest.raises(ValidationError, match="unknown saliency method"):
        PEConfig(saliency={"method": "attention_please"})


def test_the_config_accepts_exactly_the_registered_product_matchers():
    from pydantic import ValidationError

    from jobs.config import PEConfig
    from pe_udfs.product import MATCHERS

    assert list(MATCHERS) == ["sift", "orb_hull"]
    for name in MATCHERS:
        assert PEConfig(product={"method": name}).product.method == name
    with pytest.raises(ValidationError, match="unknown product method 'surf'; known: sift, orb_hull"):
        PEConfig(product={"method": "surf"})


def test_advice_section_names_registered_edit_kinds_and_checks_its_ranges():
    from pydantic import ValidationError

    from jobs.config import PEConfig
    from pe_udfs.advice import EDITS

    assert PEConfig().advice.edits == list(EDITS)
    assert PEConfig(advice={"edits": ["show_earlier"], "max_suggestions": 1}).advice.max_suggestions == 1
    with pytest.raises(ValidationError, match="unknown edit kinds"):
        PEConfig(advice={"edits": ["teleport"]})
    with pytest.raises(ValidationError):
        PEConfig(advice={"off_ratio": 1.5})
