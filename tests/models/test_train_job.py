"""The training job end to end on a tiny synthetic campaign (real Spark, Delta, petastorm, MLflow)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.models.synthetic import write_campaign

pytestmark = pytest.mark.slow


def _cfg(tmp_path, **train):
    from jobs.config import load_config

    return load_config(lake=str(tmp_path / "lake"), overrides={
        "spark": {"master": "local[2]", "show_progress": False, "shuffle_partitions": 2},
        "device": "cpu",
        "model": {"backbone": "tiny"},
        "train": {"epochs": 40, "patience": 8, "batch_size": 8, "learning_rate": 3e-3, "test_fraction": 0.3,
                  "val_fraction": 0.2, "min_videos": 10, **train},
    })


def test_build_labels_residualises_on_influencers_with_two_or_more_videos(spark):
    from jobs.train import build_labels

    rows = [("a", "i1", 9, 0), ("b", "i1", 99, 0), ("c", "i2", 0, 0), ("d", None, 19, 0), ("e", "i3", None, 0)]
    df = spark.createDataFrame(rows, "video_id STRING, influencer_id STRING, shares BIGINT, likes BIGINT")
    out, info = build_labels(df, "log1p_shares_resid_influencer")
    got = {r["video_id"]: r["label"] for r in out.collect()}
    y = {"a": np.log(10), "b": np.log(100), "c": 0.0, "d": np.log(20)}  # e has no shares: dropped
    resid = {"a": y["a"] - (y["a"] + y["b"]) / 2, "b": y["b"] - (y["a"] + y["b"]) / 2}
    mean_all = np.mean(list(y.values()))
    resid.update(c=y["c"] - mean_all, d=y["d"] - mean_all)  # single-video or unknown influencer
    r = np.array([resid[k] for k in "abcd"])
    expected = (r - r.mean()) / r.std(ddof=1)
    assert sorted(got) == list("abcd")
    np.testing.assert_allclose([got[k] for k in "abcd"], expected, rtol=1e-9)
    assert info["residualised_videos"] == 2 and info["n"] == 4 and info["sd"] == pytest.approx(r.std(ddof=1))

    plain, info = build_labels(df, "log1p_shares")
    vals = np.array([y[k] for k in "abcd"])
    got = {r["video_id"]: r["label"] for r in plain.collect()}
    np.testing.assert_allclose([got[k] for k in "abcd"], (vals - vals.mean()) / vals.std(ddof=1), rtol=1e-9)


def test_train_job_end_to_end_with_gated_promotion(spark, tmp_path):
    from mlflow import MlflowClient

    from jobs.lake import Lake
    from jobs.train import run_training, training_clip
    from models.registry import clear_model_cache, list_models, load_engagement_model
    from models.training import decode_features

    cfg = _cfg(tmp_path)
    lake = Lake(cfg.lake_path, spark)
    levels = write_campaign(lake, cfg.media_root + "/videos", n=30, broken=1)
    lines: list[str] = []
    first = run_training(cfg, lake, echo=lines.append)

    # features: computed once per video into training_clips, the broken file recorded with its reason
    clips = lake.read_pandas("training_clips")
    assert len(clips) == 31 and set(clips["backbone"]) == {"tiny"}
    bad = clips[clips["features"].isna()]
    assert list(bad["video_id"]) == ["t030"] and list(bad["error_reason"]) == ["unreadable"]
    assert first.skipped[0]["video_id"] == "t030" and first.skipped[0]["error_stage"] == "decode"
    good = clips.dropna(subset=["features"]).set_index("video_id")
    for vid, row in good.iterrows():
        f = decode_features(row["features"], row["feature_shape"])
        assert f.shape == (row["n_seconds"], 16, 7, 7)
    assert sum(first.split_counts.values()) == 30 and min(first.split_counts.values()) >= 2
    assert json.loads(good["clip_config"].iloc[0])["backbone"] == "tiny"

    # the model learned the planted signal: better than the constant on the test split and vs ground truth
    assert first.promoted and first.model_version == "1" and first.promotion_status == "promoted"
    t = first.test
    assert t["test_spearman"] > 0.5 and t["test_r2"] > t["test_baseline_r2"] and t["test_mae"] < t["test_baseline_mae"]
    assert first.truth_spearman is not None and first.truth_spearman > 0.5
    assert any("constant" in line for line in lines) and any("total time" in line for line in lines)

    client = MlflowClient(cfg.tracking_uri, registry_uri=cfg.tracking_uri)
    run = client.get_run(first.run_id)
    assert run.data.params["model.backbone"] == "tiny" and run.data.params["train.label"] == cfg.train.label
    assert run.data.tags["pe.training_clips_version"] == str(first.training_clips_version)
    assert {"test_spearman", "test_baseline_spearman", "test_r2", "test_baseline_r2", "test_mae",
            "test_baseline_mae", "test_truth_spearman", "val_loss", "train_loss"} <= set(run.data.metrics)

    loaded = load_engagement_model(tracking_uri=cfg.tracking_uri, device="cpu")
    # saved with the clip settings it trained on (train.max_seconds caps the seconds), which scoring uses
    assert loaded.version == "1" and loaded.run_id == first.run_id and loaded.clip == training_clip(cfg)
    assert loaded.clip.max_seconds == min(cfg.train.max_seconds or cfg.clip.max_seconds, cfg.clip.max_seconds)
    assert loaded.config["label"]["definition"] == cfg.train.label

    # retrain with worse settings: an (almost) untrained head. Features are reused, the new version is
    # registered, compared with the champion on the same test videos, and @champion stays at v1.
    worse_cfg = _cfg(tmp_path, epochs=1, learning_rate=1e-7)
    lines.clear()
    second = run_training(worse_cfg, lake, echo=lines.append)
    assert any("1 videos to compute, 30 reused" in line for line in lines)  # the broken file is retried
    assert second.model_version == "2" and not second.promoted
    assert second.test["champion_test_n"] == second.test["test_n"]
    assert second.test["champion_test_spearman"] == pytest.approx(first.test["test_spearman"], abs=1e-6)
    assert "v1" in second.promotion_reason or "constant baseline" in second.promotion_reason
    clear_model_cache()
    assert load_engagement_model(tracking_uri=cfg.tracking_uri, device="cpu").version == "1"
    versions = {v.version: v for v in list_models(tracking_uri=cfg.tracking_uri)}
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
    from models.registry import decide_promotion, evaluation_of, promote_evaluated

    lines.clear()
    third = run_training(worse_cfg, lake, echo=lines.append, promote=False)
    assert third.model_version == "3" and not third.promoted and third.promotion_status == "pending"
    assert any("promotion deferred to `pe models promote" in line for line in lines)
    assert client.get_model_version(cfg.mlflow.model_name, "3").tags["pe.promotion"] == "pending"
    assert client.get_run(third.run_id).data.tags["pe.champion_version"] == "1"
    clear_model_cache()
    assert load_engagement_model(tracking_uri=cfg.tracking_uri, device="cpu").version == "1"
    ev = evaluation_of(cfg.tracking_uri, cfg.mlflow.model_name)
    assert ev.version == "3" and ev.champion_version == "1" and not ev.stale
    assert ev.candidate.model.spearman == pytest.approx(third.test["test_spearman"])
    assert ev.champion.model.spearman == pytest.approx(first.test["test_spearman"], abs=1e-6)
    expected = decide_promotion(ev.candidate, ev.champion, metric=cfg.train.selection_metric,
                                min_improvement=cfg.train.min_improvement, champion_version="1")
    _, decision = promote_evaluated(tracking_uri=cfg.tracking_uri, model_name=cfg.mlflow.model_name,
                                    metric=cfg.train.selection_metric, min_improvement=cfg.train.min_improvement)
    assert decision == expected and not decision.promoted  # the (almost) untrained head stays out
    assert client.get_model_version(cfg.mlflow.model_name, "3").tags["pe.promotion"] == decision.status


def test_train_job_refuses_a_lake_without_labels(spark, tmp_path):
    from jobs.lake import Lake
    from jobs.train import TrainingDataError, run_training

    cfg = _cfg(tmp_path)
    with pytest.raises(TrainingDataError, match="pe sample"):
        run_training(cfg, Lake(cfg.lake_path, spark), echo=lambda _: None)
