"""The training job end to end on a tiny synthetic campaign (real Spark, Delta, petastorm, MLflow)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.models.synthetic import write_campaign

pytestmark = pytest.mark.slow


def _cfg(tmp_path, **train):
    from jobs.config import load_config

    return load_config(lake=str(tmp_path / "lake"), overrides={
        "spark": {"master": "local[2]", "show_progress": False, "shuffle_partitions": 2},
        "device": "cpu",
        # the paper's head size (conf/local.yaml's 32/32 is sized for mobilenet_v2 on a few hundred videos): the
        # "worse settings" retrain below is an untrained head whose gate outcome depends on its initial weights
        "model": {"backbone": "tiny", "conv_filters": 128, "dense_units": 256},
        "train": {"epochs": 40, "patience": 8, "batch_size": 8, "learning_rate": 3e-3, "test_fraction": 0.3,
                  "val_fraction": 0.2, "min_videos": 10, "min_val_videos": 8,
                  "gate": {"min_test_videos": 12, "bootstrap": 1000}, **train},
    })


def _split_of_run(cfg, run_id) -> dict[str, list[str]]:
    from models.tracking import run_json

    split = run_json(cfg.tracking_uri, run_id, "split.json")
    assert split is not None
    return split


def test_train_job_end_to_end_with_gated_promotion(spark, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    from jobs.storage.lake import Lake
    from jobs.training.train import run_training, training_clip
    from models.stored_model import clear_model_cache
    from models.training import decode_features

    # shares here follow the picture alone (no influencer effect is planted), so the label without fixed effects
    cfg = _cfg(tmp_path, label="log1p_shares")
    lake = Lake(cfg.lake_path, spark)
    levels = write_campaign(lake, cfg.media_root + "/videos", n=45, influencers=15, broken=1)
    lines: list[str] = []
    uris_before = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    first = run_training(cfg, lake, echo=lines.append)
    # every MLflow call named its store: the process-wide tracking URI (and its variable) did not move
    assert (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")) == uris_before
    assert cfg.tracking_uri not in uris_before

    # features: computed once per video into training_clips, the broken file recorded with its reason
    clips = lake.read_pandas("training_clips")
    assert len(clips) == 46 and set(clips["backbone"]) == {"tiny"}
    bad = clips[clips["features"].isna()]
    assert list(bad["video_id"]) == ["t045"] and list(bad["error_reason"]) == ["unreadable"]
    assert first.skipped[0]["video_id"] == "t045" and first.skipped[0]["error_stage"] == "decode"
    good = clips.dropna(subset=["features"]).set_index("video_id")
    for vid, row in good.iterrows():
        f = decode_features(row["features"], row["feature_shape"])
        assert f.shape == (row["n_seconds"], 16, 7, 7)
    assert sum(first.split_counts.values()) == 45 and first.split_counts["test"] >= 12
    assert json.loads(good["clip_config"].iloc[0])["backbone"] == "tiny"

    # split by influencer: no influencer in two splits (the run's split.json against the campaign)
    split = _split_of_run(cfg, first.run_id)
    influencer = lake.read_pandas("campaign_videos").set_index("video_id")["influencer_id"]
    owners = {name: set(influencer[ids]) for name, ids in split.items()}
    assert sum(map(len, split.values())) == 45 and len(split["test"]) == first.split_counts["test"]
    assert not (owners["train"] & owners["test"]) and not (owners["train"] & owners["val"])
    assert not (owners["val"] & owners["test"])

    # the model learned the planted signal: through the gate, with the interval printed
    assert first.promoted and first.model_version == "1" and first.promotion_status == "promoted"
    t = first.test
    assert t["test_spearman"] > 0.5 and t["test_r2"] > 0 and t["test_mae"] < t["test_baseline_mae"]
    assert first.gate.check("vs_constant").low > 0 and "no current champion" in first.promotion_reason
    assert first.truth_spearman is not None and first.truth_spearman > 0.5
    assert any("constant" in line for line in lines) and any("total time" in line for line in lines)
    assert any(line.strip().startswith("pass  spearman − constant") and "95% CI [" in line for line in lines)
    assert any(line.strip().startswith("→ promoted") for line in lines)

    client = MlflowClient(cfg.tracking_uri, registry_uri=cfg.tracking_uri)
    run = client.get_run(first.run_id)
    assert run.data.params["model.backbone"] == "tiny" and run.data.params["train.label"] == cfg.train.label
    assert run.data.tags["pe.training_clips_version"] == str(first.training_clips_version)
    assert {"test_spearman", "test_baseline_spearman", "test_r2", "test_baseline_r2", "test_mae",
            "test_baseline_mae", "test_truth_spearman", "val_loss", "train_loss", "gate_passed",
            "gate_vs_constant_low", "gate_vs_constant_high", "gate_r2_value"} <= set(run.data.metrics)
    assert run.data.params["train.gate.min_test_videos"] == "12"

    registry = cfg.model_registry()
    loaded = registry.load(device="cpu")
    # saved with the clip settings it trained on (train.max_seconds caps the seconds), which scoring uses
    assert loaded.version == "1" and loaded.run_id == first.run_id and loaded.clip == training_clip(cfg)
    assert loaded.clip.max_seconds == min(cfg.train.max_seconds or cfg.clip.max_seconds, cfg.clip.max_seconds)
    assert loaded.config["label"]["definition"] == cfg.train.label

    # retrain with worse settings: an (almost) untrained head. Features are reused, the new version is
    # registered, compared with the champion on the same test videos, and @champion stays at v1.
    worse_cfg = _cfg(tmp_path, label="log1p_shares", epochs=1, learning_rate=1e-7)
    lines.clear()
    second = run_training(worse_cfg, lake, echo=lines.append)
    assert any("1 videos to compute, 45 reused" in line for line in lines)  # the broken file is retried
    assert second.model_version == "2" and not second.promoted
    # the same split: v1 trained on none of these test videos, so it is compared on all of them
    assert second.test["champion_test_n"] == second.test["test_n"]
    assert second.test["champion_test_spearman"] == pytest.approx(first.test["test_spearman"], abs=1e-6)
    assert second.promotion_status in ("kept", "rejected") and "CI" in second.promotion_reason
    clear_model_cache()
    assert registry.load(device="cpu").version == "1"
    versions = {v.version: v for v in registry.versions()}
    assert versions["1"].aliases == ["champion"] and versions["2"].aliases == []
    assert client.get_run(second.run_id).data.tags["pe.promotion"] in ("kept", "rejected")
    assert levels  # the campaign really had videos

    # `pe models` lists both versions; the alias sits on version 1
    from typer.testing import CliRunner

    from jobs.cli import app

    out = CliRunner().invoke(app, ["--lake", cfg.lake_path, "models"])
    assert out.exit_code == 0, out.output
    rows = {line.split()[0]: line for line in out.output.splitlines() if line.strip()[:1].isdigit()}
    assert sorted(rows) == ["1", "2"] and "champion" in rows["1"] and "champion" not in rows["2"]
    assert f"{first.test['test_spearman']:.3f}" in rows["1"]

    # --no-promote (the retrain DAG's train stage): evaluated and registered, @champion untouched, pending;
    # `pe models promote` then decides from the logged metrics exactly as `pe train` would have
    lines.clear()
    third = run_training(worse_cfg, lake, echo=lines.append, promote=False)
    assert third.model_version == "3" and not third.promoted and third.promotion_status == "pending"
    assert any("promotion deferred to `pe models promote" in line for line in lines)
    assert client.get_model_version(cfg.mlflow.model_name, "3").tags["pe.promotion"] == "pending"
    assert client.get_run(third.run_id).data.tags["pe.champion_version"] == "1"
    clear_model_cache()
    assert registry.load(device="cpu").version == "1"
    ev = registry.evaluation()
    assert ev.version == "3" and ev.champion_version == "1" and not ev.stale
    assert ev.candidate.model.spearman == pytest.approx(third.test["test_spearman"])
    assert ev.champion.model.spearman == pytest.approx(first.test["test_spearman"], abs=1e-6)
    assert ev.gate == third.gate and ev.gate.champion_version == "1"
    _, decision = registry.promote_evaluated()
    assert decision.status == third.gate.status and not decision.promoted  # the (almost) untrained head stays out
    assert client.get_model_version(cfg.mlflow.model_name, "3").tags["pe.promotion"] == decision.status


def test_a_model_trained_on_permuted_labels_is_never_promoted(spark, tmp_path):
    """Negative control: the same campaign with its share counts shuffled across videos (the videos stay, the
    label no longer belongs to them). The training runs as usual and the gate refuses the result."""
    from jobs.storage.contracts import contract
    from jobs.storage.lake import Lake
    from jobs.training.train import run_training

    cfg = _cfg(tmp_path)
    lake = Lake(cfg.lake_path, spark)
    write_campaign(lake, cfg.media_root + "/videos", n=45, influencers=15)
    labels = lake.read_pandas("engagement_labels")
    labels["shares"] = np.random.default_rng(7).permutation(labels["shares"].to_numpy())
    lake.write_arrow("engagement_labels", labels[contract("engagement_labels").columns], mode="overwrite")
    lines: list[str] = []
    result = run_training(cfg, lake, echo=lines.append)
    assert not result.promoted and result.promotion_status == "rejected"
    assert any(line.strip().startswith("→ rejected") for line in lines)
    assert cfg.model_registry().champion() is None


def test_train_job_refuses_a_lake_without_labels(spark, tmp_path):
    from jobs.storage.lake import Lake
    from jobs.training.train import TrainingDataError, run_training

    cfg = _cfg(tmp_path)
    with pytest.raises(TrainingDataError, match="pe sample"):
        run_training(cfg, Lake(cfg.lake_path, spark), echo=lambda _: None)
