"""Sweep files (models.sweep) and the sweep runner of ``pe train --sweep`` on a tiny campaign (jobs.training.sweep_trials)."""
from __future__ import annotations

import pytest

from models.sweep import SweepError, SweepSpec, load_sweep
from tests.models.synthetic import write_campaign


def test_grid_expands_every_combination_into_config_overrides():
    spec = SweepSpec(params={"train.weight_decay": [0.0, 0.1], "model.conv_filters": [8, 16, 32]})
    trials = spec.trials_overrides()
    assert len(trials) == 6
    assert trials[0] == {"train": {"weight_decay": 0.0}, "model": {"conv_filters": 8}}
    assert trials[-1] == {"train": {"weight_decay": 0.1}, "model": {"conv_filters": 32}}
    assert len({repr(t) for t in trials}) == 6


def test_random_search_draws_distinct_trials_reproducibly():
    params = {"train.flip": [0.0, 0.5], "train.feature_dropout": [0.0, 0.2, 0.4], "model.dense_units": [16, 64]}
    a = SweepSpec(method="random", trials=4, seed=3, params=params).trials_overrides()
    b = SweepSpec(method="random", trials=4, seed=3, params=params).trials_overrides()
    c = SweepSpec(method="random", trials=4, seed=4, params=params).trials_overrides()
    assert a == b and len(a) == 4 and len({repr(t) for t in a}) == 4 and a != c


def test_sweep_files_with_mistakes_are_refused_with_the_reason(tmp_path):
    f = tmp_path / "sweep.yaml"
    f.write_text("method: grid\nparams:\n  train.weight_decay: [0.001, 0.01]\n")
    assert load_sweep(f).params == {"train.weight_decay": [0.001, 0.01]}
    for text, why in (("params:\n  weight_decay: [1]\n", "model.<name> or train.<name>"),
                      ("params:\n  train.label: [log1p_likes]\n", "cannot vary"),
                      ("params:\n  train.test_fraction: [0.3]\n", "cannot vary"),
                      ("params:\n  train.weight_decay: []\n", "lists no values"),
                      ("method: bayes\nparams:\n  train.flip: [0.5]\n", "method"),
                      ("params: [\n", "not valid YAML")):
        f.write_text(text)
        with pytest.raises(SweepError, match=why.replace(".", r"\.").replace("<", ".").replace(">", ".")):
            load_sweep(f)
    with pytest.raises(SweepError, match="does not exist"):
        load_sweep(tmp_path / "missing.yaml")


@pytest.mark.slow
def test_sweep_runs_one_nested_run_per_trial_and_gates_the_best_by_validation(spark, tmp_path):
    from mlflow import MlflowClient

    from jobs.config import load_config
    from jobs.storage.lake import Lake
    from jobs.training.train import run_training

    cfg = load_config(lake=str(tmp_path / "lake"), overrides={
        "spark": {"master": "local[2]", "show_progress": False, "shuffle_partitions": 2}, "device": "cpu",
        "model": {"backbone": "tiny"},
        "train": {"epochs": 25, "patience": 6, "batch_size": 8, "learning_rate": 3e-3, "test_fraction": 0.3,
                  "val_fraction": 0.2, "min_videos": 10, "min_val_videos": 8, "label": "log1p_shares",
                  "gate": {"min_test_videos": 12, "bootstrap": 500}}})
    lake = Lake(cfg.lake_path, spark)
    write_campaign(lake, cfg.media_root + "/videos", n=45, influencers=15)
    # trial 1 cannot learn (learning rate ~0): validation must pick trial 0
    spec = SweepSpec(params={"train.learning_rate": [3e-3, 1e-9], "model.conv_filters": [8]})
    lines: list[str] = []
    result = run_training(cfg, lake, echo=lines.append, sweep=spec)

    assert any(line.startswith("sweep: best trial 0") for line in lines)
    client = MlflowClient(cfg.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(cfg.mlflow.experiment).experiment_id])
    parent = [r for r in runs if r.data.tags.get("pe.job") == "train-sweep"]
    assert len(parent) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id]
    trials = sorted((r for r in children if r.data.tags.get("pe.job") == "train-sweep-trial"),
                    key=lambda r: int(r.data.params["trial"]))
    assert [r.data.params["train.learning_rate"] for r in trials] == ["0.003", "1e-09"]
    assert trials[0].data.metrics["best_val_loss"] < trials[1].data.metrics["best_val_loss"]
    assert "test_spearman" not in trials[0].data.metrics  # trials never see the test split
    # the candidate: the best trial's settings, trained, evaluated and gated like `pe train`, as a nested run
    final = client.get_run(result.run_id)
    assert final.data.tags["mlflow.parentRunId"] == parent[0].info.run_id
    assert final.data.params["train.learning_rate"] == "0.003" and final.data.params["model.conv_filters"] == "8"
    assert "gate_passed" in final.data.metrics and result.model_version == "1"
    assert result.promoted == result.gate.promoted
