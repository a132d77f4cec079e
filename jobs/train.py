"""Train the engagement model: ``pe train`` or ``spark-submit jobs/train.py --config conf/local.yaml``.

    extract    engagement_labels ⋈ campaign_videos (Spark)                       → labelled videos
    transform  split by influencer and labels fitted on training rows only (models.labels: the influencer fixed
               effects within each split, standardisation with the training rows' mean and SD; influencers with
               one video carry no label after fixed effects and are left out)
    features   decode each video (pe_udfs.video) and run the frozen backbone ONCE per video (mapInPandas,
               backbone loaded once per worker) → Delta table training_clips; features of unchanged videos
               (same backbone, weights and sampling) are reused from the previous run
    train      training_clips → petastorm → PyTorch: the 3-D head on cached features, early stopping on the
               validation loss (at least train.min_val_videos validation videos, or the job stops; compared
               within influencer for a residualised label, as the test split is)
    evaluate   test split: Spearman, R², MAE of the model AND of a constant (train-mean) prediction (for a label
               residualised on influencers, predictions compared within influencer, as the label); Spearman
               against the ground-truth true_engagement of sample_truth when that table exists; the current
               champion's predictions on the same test videos (re-evaluated, never its logged numbers)
    register   one MLflow run (params, metrics, Delta version of training_clips, the split's video ids, the
               promotion gate, model), registered as pe-engagement; @champion moves only if the gate passes
               (models.gate: enough test videos, R² > 0, paired bootstrap intervals above 0 against the constant
               and against the champion on the test videos it did not train on). ``--no-promote``: the version
               is tagged pe.promotion=pending and ``pe models promote`` applies the logged gate later
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

if __package__ in (None, ""):  # run as a file by spark-submit: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from jobs.config import PEConfig, load_config  # noqa: E402
from pe_udfs.settings import ClipSettings  # noqa: E402

__all__ = ["TrainResult", "TrainingDataError", "run_training", "labelled_videos", "labelled_split",
           "training_clip", "clip_config_json", "feature_rows", "main"]


class TrainingDataError(RuntimeError):
    """The lake does not hold enough usable labelled videos to train (the message says what is missing)."""


@dataclass
class TrainResult:
    run_id: str
    model_version: str | None
    promoted: bool
    promotion_status: str
    promotion_reason: str
    gate: "GateResult"  # noqa: F821 - models.gate
    test: dict[str, float]
    truth_spearman: float | None
    label_stats: dict[str, Any]
    split_counts: dict[str, int]
    skipped: list[dict[str, str]]
    training_clips_version: int
    epochs_run: int
    best_epoch: int
    timings: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- extract
def labelled_videos(lake) -> "DataFrame":  # noqa: F821
    """engagement_labels joined to campaign_videos on video_id: one row per labelled video with a URI."""
    from pyspark.sql import functions as F

    for name in ("engagement_labels", "campaign_videos"):
        if not lake.exists(name):
            raise TrainingDataError(f"table '{name}' does not exist in {lake.root}; run `pe sample` (or ingest "
                                    "labels) first")
    labels = lake.read("engagement_labels").alias("l")
    videos = lake.read("campaign_videos").alias("v")
    return (labels.join(videos, F.col("l.video_id") == F.col("v.video_id"), "inner")
            .select(F.col("l.video_id").alias("video_id"),
                    F.coalesce(F.col("v.video_uri"), F.col("l.video_uri")).alias("video_uri"),
                    F.coalesce(F.col("v.influencer_id"), F.col("l.influencer_id")).alias("influencer_id"),
                    F.col("l.shares").alias("shares"), F.col("l.likes").alias("likes")))


# --------------------------------------------------------------------------------------------- transform
def labelled_split(cfg: PEConfig, videos: "DataFrame"  # noqa: F821
                   ) -> tuple["DataFrame", dict[str, Any], dict[str, str]]:  # noqa: F821
    """The labelled videos (Spark, one row per video) → (video_id, video_uri, label, split), the label statistics
    and each video's influencer (its split group), through :func:`models.labels.split_by_group` and
    :func:`models.labels.build_labels` on the driver (one small row per video). ``train.limit`` takes a
    deterministic subset first."""
    from pyspark.sql import functions as F

    from models.labels import LabelError, build_labels, group_key, split_by_group

    tc = cfg.train
    if tc.limit is not None:
        videos = videos.orderBy(F.xxhash64(F.lit(f"limit:{tc.split_seed}"), "video_id"), "video_id").limit(tc.limit)
    pdf = videos.toPandas()
    if pdf.empty:
        raise TrainingDataError("no labelled video has a row in campaign_videos; run `pe sample` or add labels")
    split = split_by_group(pdf, seed=tc.split_seed, val_fraction=tc.val_fraction, test_fraction=tc.test_fraction)
    try:
        labelled, info = build_labels(pdf, tc.label, split)
    except LabelError as e:
        raise TrainingDataError(str(e)) from None
    out = videos.sparkSession.createDataFrame(labelled[["video_id", "video_uri", "label", "split"]],
                                              "video_id STRING, video_uri STRING, label DOUBLE, split STRING")
    return out, info, dict(zip(labelled["video_id"], group_key(labelled)))


def training_clip(cfg: PEConfig) -> ClipSettings:
    """The clip settings the model trains on and is saved with: ``cfg.clip`` with ``max_seconds`` lowered to
    ``train.max_seconds`` when set. Scoring keeps the model's sampling (fps, size) but takes its window from
    ``clip.max_seconds`` (pe_udfs.settings.scoring_clip): the head is length-agnostic."""
    seconds = min(cfg.train.max_seconds or cfg.clip.max_seconds, cfg.clip.max_seconds)
    return cfg.clip.model_copy(update={"max_seconds": seconds})


def clip_config_json(cfg: PEConfig) -> str:
    """What makes cached features reusable: sampling, backbone and its weights (sorted JSON)."""
    clip = training_clip(cfg)
    return json.dumps({"fps": clip.fps, "size": clip.size, "max_seconds": clip.max_seconds,
                       "backbone": cfg.model.backbone, "backbone_weights": cfg.model.backbone_weights,
                       "precision": cfg.train.feature_precision}, sort_keys=True)


# --------------------------------------------------------------------------------------------- features
def feature_rows(rows, *, clip: dict, io: dict, backbone: str, backbone_weights: str | None, frame_batch: int,
                 torch_threads: int, clip_config: str, label_definition: str, device: str = "auto",
                 precision: str = "auto") -> Iterator[dict[str, Any]]:
    """For each row (video_id, video_uri, label, split): decode, run the frozen backbone, yield a
    training_clips record (features, or the error that stopped the video). Pure Python + torch, no Spark."""
    import torch

    from models.backbones import cached_backbone
    from models.network import extract_features
    from models.training import encode_features, resolve_device
    from pe_udfs.errors import PEInputError
    from pe_udfs.video import clip_tensor, sample_video

    torch.set_num_threads(torch_threads)
    clip_settings = ClipSettings(**clip)
    net = cached_backbone(backbone, backbone_weights, str(resolve_device(device)))
    for row in rows:
        rec = {"video_id": row["video_id"], "split": row["split"], "label": float(row["label"]), "n_seconds": None,
               "backbone": backbone, "feature_shape": None, "features": None, "label_definition": label_definition,
               "clip_config": clip_config, "error_stage": None, "error_reason": None, "error_message": None,
               "computed_at": datetime.now(timezone.utc)}
        try:
            sampled = sample_video(row["video_uri"], clip_settings, allowed_schemes=io["allowed_schemes"],
                                   allowed_roots=io["allowed_roots"], with_match_frames=False)
            feats = extract_features(net, clip_tensor(sampled.model_frames), chunk=frame_batch, precision=precision)
            data, shape = encode_features(feats)
            rec.update(n_seconds=int(shape[0]), feature_shape=shape, features=data)
        except PEInputError as e:
            rec.update(error_stage=e.stage, error_reason=e.reason, error_message=str(e))
        except Exception as e:  # noqa: BLE001 - one bad video must not stop the job; it is recorded
            rec.update(error_stage="model", error_reason="model_failed", error_message=f"{type(e).__name__}: {e}")
        yield rec


def _feature_partition(batches, **kwargs):
    """mapInPandas adapter around :func:`feature_rows`: one output frame per video (keeps Arrow batches small)."""
    import pandas as pd

    for pdf in batches:
        for rec in feature_rows(pdf.to_dict("records"), **kwargs):
            yield pd.DataFrame([rec])


def _compute_features(cfg: PEConfig, todo: "DataFrame", clip_config: str, torch_threads: int,  # noqa: F821
                      partitions: int) -> "DataFrame":  # noqa: F821
    import functools

    from jobs.contracts import spark_schema

    clip = training_clip(cfg).model_dump()
    fn = functools.partial(
        _feature_partition, clip=clip, io={"allowed_schemes": list(cfg.io.allowed_schemes),
                                           "allowed_roots": list(cfg.allowed_roots)},
        backbone=cfg.model.backbone, backbone_weights=cfg.model.backbone_weights, frame_batch=cfg.train.frame_batch,
        torch_threads=torch_threads, clip_config=clip_config, label_definition=cfg.train.label, device=cfg.device,
        precision=cfg.train.feature_precision)
    return (todo.select("video_id", "video_uri", "label", "split").repartition(partitions)
                .mapInPandas(fn, schema=spark_schema("training_clips")))


# --------------------------------------------------------------------------------------------- the job
def run_training(cfg: PEConfig, lake, *, echo: Callable[[str], None] = print, started: float | None = None,
                 features_only: bool = False, promote: bool = True, sweep=None) -> TrainResult | None:
    """The whole job on an open :class:`jobs.lake.Lake` (with Spark). See the module docstring.

    ``features_only``: stop once ``training_clips`` holds the features of every labelled video (the retrain
    DAG's "build training set" stage; the next full run reuses them) and return None.

    ``promote=False``: evaluate, log and register as usual but leave @champion alone; the version is tagged
    ``pe.promotion=pending`` for ``pe models promote`` (the retrain DAG's "promote" stage).

    ``sweep`` (:class:`models.sweep.SweepSpec`): first fit each of its trials on the cached features (jobs.sweep,
    nested MLflow runs under one sweep run), then train and gate the best by validation loss as below.

    ``started``: ``time.perf_counter()`` when the command began (before the Spark session), so the printed
    total time covers the whole command."""
    import torch
    from pyspark.sql import functions as F

    from jobs.contracts import contract
    from models.network import build_engagement_net

    t_start = started if started is not None else time.perf_counter()
    timings: dict[str, float] = {"startup_s": time.perf_counter() - t_start}
    spark = lake.spark
    tc = cfg.train
    torch.manual_seed(tc.seed)
    np.random.seed(tc.seed)
    # Build the network first: an unknown backbone or missing weights fails here, before any Spark work.
    net = build_engagement_net(cfg.model)

    # ---- extract + transform
    labelled, label_info, groups = labelled_split(cfg, labelled_videos(lake))
    labelled = labelled.cache()
    n_labelled = label_info["n"]
    if n_labelled < tc.min_videos:
        raise TrainingDataError(f"only {n_labelled} labelled videos with a video file (need at least "
                                f"{tc.min_videos}, train.min_videos); run `pe sample` or add labels")
    timings["labels_s"] = time.perf_counter() - t_start - timings["startup_s"]
    echo(f"labelled videos: {n_labelled}  label: {tc.label}, split by influencer (train {label_info['n_train']}, "
         f"val {label_info['n_val']}, test {label_info['n_test']}); standardised with the training rows' mean "
         f"{label_info['mean']:.3f} and sd {label_info['sd']:.3f}"
         + (f"; {label_info['single_video_excluded']} videos of single-video influencers left out (no label after "
            "fixed effects)" if label_info["single_video_excluded"] else ""))

    # ---- features: reuse unchanged ones, compute the rest once per video
    t0 = time.perf_counter()
    clip_config = clip_config_json(cfg)
    backbone = cfg.model.backbone
    columns = contract("training_clips").columns
    reused = None
    other_rows = None
    if lake.exists("training_clips"):
        existing = lake.read("training_clips")
        if existing.columns != columns:
            raise TrainingDataError(
                f"table training_clips in {lake.root} has columns {existing.columns}, the contract has {columns}; "
                f"it only caches features, so remove it ({lake.path('training_clips')}) and train again")
        other_rows = existing.filter(F.col("backbone") != F.lit(backbone))
        cached = existing.filter((F.col("backbone") == F.lit(backbone)) & (F.col("clip_config") == F.lit(clip_config))
                                 & F.col("features").isNotNull())
        fresh = labelled.select("video_id", "label", "split")
        reused = (cached.drop("label", "split", "label_definition").join(fresh, "video_id", "inner")
                  .withColumn("label_definition", F.lit(tc.label)).select(*columns))
        todo = labelled.join(cached.select("video_id"), "video_id", "left_anti")
    else:
        todo = labelled
    n_todo = todo.count()
    parallelism = spark.sparkContext.defaultParallelism
    partitions = max(1, min(n_todo, tc.partitions or parallelism))
    torch_threads = tc.torch_threads or max(1, (os.cpu_count() or 1) // max(1, min(parallelism, partitions)))
    echo(f"backbone features: {n_todo} videos to compute, {n_labelled - n_todo} reused "
         f"({backbone}, {partitions} tasks x {torch_threads} threads)")
    computed = _compute_features(cfg, todo, clip_config, torch_threads, partitions)
    table = computed if reused is None else computed.unionByName(reused)
    if other_rows is not None:
        table = table.unionByName(other_rows.select(*columns))
    commit = lake.write("training_clips", table, mode="overwrite",
                        metadata={"pe.job": "train", "pe.backbone": backbone, "pe.clip_config": clip_config})
    test_uris = {r["video_id"]: r["video_uri"] for r in labelled.filter(F.col("split") == "test").collect()}
    labelled.unpersist()
    timings["features_s"] = time.perf_counter() - t0
    if features_only:
        echo(f"training_clips v{commit.version} written in {timings['features_s']:.1f} s; features only, no training")
        return None
    clips = lake.read("training_clips", version=commit.version).filter(F.col("backbone") == F.lit(backbone))
    errors = clips.filter(F.col("features").isNull()).select(
        "video_id", "error_stage", "error_reason", "error_message").toPandas()
    skipped = errors.to_dict("records")
    usable = clips.filter(F.col("features").isNotNull())
    split_counts = {r["split"]: int(r["count"]) for r in usable.groupBy("split").count().collect()}
    echo(f"training_clips v{commit.version}: {sum(split_counts.values())} usable videos "
         f"(train {split_counts.get('train', 0)}, val {split_counts.get('val', 0)}, test {split_counts.get('test', 0)}); "
         f"{len(skipped)} skipped; features {timings['features_s']:.1f} s")
    for s in skipped[:10]:
        echo(f"  skipped {s['video_id']}: {s['error_stage']}/{s['error_reason']}: {s['error_message']}")
    for name, least in (("train", 2), ("val", tc.min_val_videos), ("test", 2)):
        if split_counts.get(name, 0) < least:
            why = (" (early stopping on fewer validation videos picks its epoch by noise: train.min_val_videos)"
                   if name == "val" else "")
            raise TrainingDataError(f"the {name} split has {split_counts.get(name, 0)} usable videos, fewer than "
                                    f"{least}{why}; add labelled videos or change train.val_fraction/test_fraction")

    # ---- train on cached features through petastorm (after a sweep: with its best settings by validation)
    if sweep is None:
        return _train_and_register(cfg, lake, net, usable, commit.version, label_info, groups, split_counts, skipped,
                                   test_uris, timings, echo, t_start, promote=promote)
    import mlflow

    from jobs.sweep import run_sweep_trials
    from models.network import head_from_settings
    from models.registry import ensure_experiment, mlflow_store

    exp_id = ensure_experiment(cfg.tracking_uri, cfg.mlflow.experiment, cfg.artifact_root)
    with mlflow_store(cfg.tracking_uri, cfg.mlflow.registry_uri), \
            mlflow.start_run(experiment_id=exp_id, run_name=f"sweep-{cfg.model.backbone}"):
        mlflow.set_tags({"pe.job": "train-sweep", "pe.training_clips_version": str(commit.version)})
        t0 = time.perf_counter()
        best, _ = run_sweep_trials(cfg, sweep, usable, groups, experiment_id=exp_id, echo=echo)
        timings["sweep_s"] = time.perf_counter() - t0
        net.head, net.settings = head_from_settings(best.model, net.backbone.out_channels), best.model
        return _train_and_register(best, lake, net, usable, commit.version, label_info, groups, split_counts,
                                   skipped, test_uris, timings, echo, t_start, promote=promote, nested=True)


def _train_and_register(cfg, lake, net, usable, table_version, label_info, groups, split_counts, skipped,
                        test_uris, timings, echo, t_start, *, promote: bool = True, nested: bool = False
                        ) -> TrainResult:
    import mlflow
    import torch
    from pyspark.sql import functions as F

    from models.augment import Augmentation
    from models.evaluate import evaluate_predictions, regression_metrics
    from models.gate import evaluate_gate
    from models.labels import is_within_influencer, within_groups
    from models.loader import feature_batches
    from models.promotion import (apply_gate, defer_promotion, evaluation_metrics, evaluation_tags, gate_lines,
                                  log_gate, log_split)
    from models.registry import champion_version, ensure_experiment, log_engagement_model, mlflow_store
    from models.training import fit_head, predict_head, resolve_device

    tc = cfg.train
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(tc.seed)  # the order of batches and dropout
    by_split = {s: usable.filter(F.col("split") == s) for s in ("train", "val", "test")}
    split_ids = {s: [r["video_id"] for r in df.select("video_id").collect()] for s, df in by_split.items()}

    tracking = cfg.tracking_uri
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    exp_id = ensure_experiment(tracking, cfg.mlflow.experiment, cfg.artifact_root)
    with mlflow_store(tracking, cfg.mlflow.registry_uri), \
            mlflow.start_run(experiment_id=exp_id, run_name=f"train-{cfg.model.backbone}", nested=nested) as run:
        run_id = run.info.run_id
        mlflow.log_params(_flat_params(cfg, label_info, split_counts, table_version, device))
        mlflow.set_tags({"pe.job": "train", "pe.backbone": cfg.model.backbone,
                         "pe.training_clips_version": str(table_version), "pe.label": tc.label})
        log_split(split_ids)
        t0 = time.perf_counter()
        with feature_batches(by_split["train"], batch_size=tc.batch_size, shuffle_buffer=tc.shuffle_buffer,
                             workers=tc.loader_workers, seed=tc.seed) as train_loader, \
                feature_batches(by_split["val"], batch_size=tc.batch_size, workers=tc.loader_workers) as val_loader, \
                feature_batches(by_split["test"], batch_size=tc.batch_size, workers=tc.loader_workers) as test_loader:
            def on_epoch(row: dict[str, float]) -> None:
                mlflow.log_metrics({"train_loss": row["train_loss"], "val_loss": row["val_loss"],
                                    "epoch_seconds": row["seconds"]}, step=int(row["epoch"]))
                echo(f"  epoch {int(row['epoch']):>3}  train {row['train_loss']:.4f}  val {row['val_loss']:.4f}  "
                     f"({row['seconds']:.1f} s)")

            fit = fit_head(net.head, train_loader, val_loader, epochs=tc.epochs, patience=tc.patience,
                           learning_rate=tc.learning_rate, weight_decay=tc.weight_decay, device=device,
                           on_epoch=on_epoch, val_groups=groups if is_within_influencer(tc.label) else None,
                           augment=Augmentation.from_settings(tc))
            ids, preds, labels = predict_head(net.head, test_loader, device=device)
            champ = champion_version(tracking, cfg.mlflow.model_name, cfg.mlflow.alias)
            evidence = _champion_evidence(cfg, champ, net, test_loader, ids, test_uris, device, echo)
        # which champion this run is compared with: `pe models promote` refuses if the alias moves after
        mlflow.set_tags(evaluation_tags(None if champ is None else str(champ.version),
                                        None if evidence is None else evidence.unavailable))
        raw_preds = preds
        if is_within_influencer(tc.label):  # compared within influencer, like the label (models.labels)
            test_groups = [groups[v] for v in ids]
            preds = within_groups(preds, test_groups)
            if evidence is not None and evidence.predictions is not None:
                evidence = replace(evidence, predictions=within_groups(evidence.predictions, test_groups))
        timings["train_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        net.to("cpu")
        baseline_value = float(by_split["train"].agg(F.avg("label")).first()[0])  # the constant: train mean
        report = evaluate_predictions(labels, preds, baseline_value=baseline_value)
        champ_report = None
        if evidence is not None and evidence.predictions is not None:
            seen = evidence.usable if evidence.usable is not None else np.ones(len(ids), bool)
            if seen.sum() >= 2:
                champ_report = evaluate_predictions(labels[seen], evidence.predictions[seen],
                                                    baseline_value=baseline_value)
        gate = evaluate_gate(labels, preds, baseline_value=baseline_value, settings=tc.gate, champion=evidence)
        truth = _truth(lake, ids)
        truth_rho = label_truth_rho = None
        metrics = evaluation_metrics(report, champ_report)  # test_* and, with a champion, champion_test_*
        if truth is not None:
            truth_rho = regression_metrics(truth, raw_preds).spearman  # the model's own output vs the truth
            label_truth_rho = regression_metrics(truth, labels).spearman
            metrics.update(test_truth_spearman=truth_rho, test_baseline_truth_spearman=0.0,
                           test_label_truth_spearman=label_truth_rho)
        metrics.update(best_epoch=fit.best_epoch, epochs_run=fit.epochs_run, best_val_loss=fit.best_val_loss)
        mlflow.log_metrics(metrics)
        log_gate(gate)
        mlflow.log_dict({"video_id": ids, "prediction": raw_preds.tolist(), "prediction_compared": preds.tolist(),
                         "label": labels.tolist(),
                         "true_engagement": None if truth is None else truth.tolist()}, "test_predictions.json")
        mlflow.log_dict({"label": label_info, "skipped": skipped}, "training_data.json")

        within = " (predictions compared within influencer, as the label)" if is_within_influencer(tc.label) else ""
        echo(f"test split ({report.n} videos, influencers not seen in training), label = {tc.label}{within}:")
        echo(report.table())
        if truth is not None:
            echo(f"spearman vs ground-truth engagement: model {truth_rho:.3f}, constant 0.000 "
                 f"(observed label vs truth: {label_truth_rho:.3f})")
        if champ_report is not None:
            echo(f"champion v{champ.version} on the {champ_report.n} test videos it did not train on: spearman "
                 f"{champ_report.model.spearman:.3f}, r2 {champ_report.model.r2:.3f}, mae {champ_report.model.mae:.3f}")
        for line in gate_lines(gate):
            echo(line)

        label_cfg = {**label_info, "split_seed": tc.split_seed, "val_fraction": tc.val_fraction,
                     "test_fraction": tc.test_fraction, "feature_precision": tc.feature_precision}
        _, version = log_engagement_model(net, clip=training_clip(cfg), label=label_cfg,
                                          registered_model_name=cfg.mlflow.model_name)
        if promote:
            decision = apply_gate(tracking_uri=tracking, model_name=cfg.mlflow.model_name, version=str(version),
                                  gate=gate, alias=cfg.mlflow.alias, run_id=run_id)
        else:
            decision = defer_promotion(tracking_uri=tracking, model_name=cfg.mlflow.model_name, version=str(version),
                                       gate=gate, run_id=run_id)
        timings["register_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - t_start
        mlflow.log_metrics({f"seconds_{k.removesuffix('_s')}": v for k, v in timings.items()})
    held = f"v{champ.version}" if champ else "no version"
    if promote:
        verb = "now holds" if decision.promoted else f"stays with {held}"
        echo(f"registered {cfg.mlflow.model_name} v{version}; @{cfg.mlflow.alias} {verb} ({decision.status})")
    else:
        echo(f"registered {cfg.mlflow.model_name} v{version} (pe.promotion=pending); @{cfg.mlflow.alias} stays with "
             f"{held}: promotion deferred to `pe models promote --version {version}`")
    echo(f"total time {timings['total_s']:.1f} s (start-up {timings['startup_s']:.1f} s, labels "
         f"{timings['labels_s']:.1f} s, features {timings['features_s']:.1f} s, training + evaluation "
         f"{timings['train_s']:.1f} s, MLflow {timings['register_s']:.1f} s); MLflow run {run_id}")
    return TrainResult(run_id=run_id, model_version=version, promoted=decision.promoted,
                       promotion_status=decision.status, promotion_reason=decision.reason, gate=gate, test=metrics,
                       truth_spearman=truth_rho, label_stats=label_info, split_counts=split_counts, skipped=skipped,
                       training_clips_version=table_version, epochs_run=fit.epochs_run, best_epoch=fit.best_epoch,
                       timings=timings)


def _champion_evidence(cfg, champ, net, test_loader, ids, test_uris, device, echo):
    """The current champion re-evaluated on this run's test videos ``ids`` (same order), as
    :class:`models.gate.ChampionEvidence`; None without a champion.

    Its predictions come from running it (never from its logged numbers, which were on another split, maybe
    another label or window); ``usable`` marks the test videos its run did not train on (its split.json). A
    champion trained on another label definition is comparable only by rank (gate metric spearman)."""
    from models.gate import ChampionEvidence
    from models.promotion import training_videos

    if champ is None:
        return None
    version = str(champ.version)
    preds, problem, label = _champion_predictions(cfg, champ, net, test_loader, ids, test_uris, device, echo)
    if problem is None and label not in (None, cfg.train.label) and cfg.train.gate.metric != "spearman":
        problem = (f"it was trained on label {label!r}, this run on {cfg.train.label!r}: only ranks compare "
                   "(train.gate.metric spearman)")
    if problem is not None:
        return ChampionEvidence(version, unavailable=problem)
    seen = training_videos(cfg.tracking_uri, champ.run_id) if champ.run_id else None
    if seen is None:
        return ChampionEvidence(version, predictions=preds,
                                note="its training videos are not recorded (no split.json): compared on all")
    usable = np.array([v not in seen for v in ids])
    note = f"{int((~usable).sum())} test videos it trained on left out" if (~usable).any() else None
    return ChampionEvidence(version, predictions=preds, usable=usable, note=note)


def _champion_predictions(cfg, champ, net, test_loader, ids, test_uris, device, echo):
    """``(predictions, None, label definition)``: the champion's predictions for the test videos ``ids`` (same
    order) and the label it was trained on; ``(None, reason, None)`` when it cannot be evaluated.

    Same backbone with identical weights and sampling → its head on the cached features; otherwise its whole
    network on the test videos decoded with the champion's own clip settings."""
    import torch

    from models.backbones import BackboneWeightsError, UnknownBackbone
    from models.registry import ModelLoadError, load_engagement_model
    from models.training import predict_head
    from pe_udfs.errors import PEInputError

    try:
        loaded = load_engagement_model(f"models:/{cfg.mlflow.model_name}/{champ.version}",
                                       tracking_uri=cfg.tracking_uri, device=str(device))
    except (ModelLoadError, UnknownBackbone, BackboneWeightsError) as e:
        echo(f"warning: champion v{champ.version} cannot be loaded: {e}")
        return None, f"cannot load it: {e}", None
    label = (loaded.config.get("label") or {}).get("definition")
    same_features = (loaded.backbone == cfg.model.backbone and loaded.clip == training_clip(cfg)
                     and _same_tensors(loaded.module.backbone, net.backbone))
    if same_features:
        champ_ids, preds, _ = predict_head(loaded.module.head, test_loader, device=device)
        order = {v: i for i, v in enumerate(champ_ids)}
        return np.array([preds[order[v]] for v in ids]), None, label
    echo(f"champion v{champ.version} ({loaded.backbone}, {loaded.clip.max_seconds} s clips) differs in its "
         "features: scoring the test videos with it as scoring would")
    from models.network import extract_features
    from pe_udfs.video import clip_tensor, sample_video

    out = []
    for vid in ids:
        try:
            frames = sample_video(test_uris[vid], loaded.clip, allowed_schemes=list(cfg.io.allowed_schemes),
                                  allowed_roots=list(cfg.allowed_roots), with_match_frames=False).model_frames
        except PEInputError as e:
            return None, f"test video {vid} cannot be decoded for it: {e}", None
        feats = extract_features(loaded.module.backbone, clip_tensor(frames), chunk=cfg.train.frame_batch,
                                 precision=cfg.train.feature_precision)  # computed as the candidate's were
        with torch.inference_mode():
            out.append(float(loaded.module.head(feats[None].to(loaded.device))[0]))
    return np.array(out), None, label


def _same_tensors(a, b) -> bool:
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def _truth(lake, ids) -> "np.ndarray | None":  # noqa: F821
    """true_engagement of sample_truth for ``ids`` (same order), or None when the table or any video is missing."""
    if not ids or not lake.exists("sample_truth"):
        return None
    t = lake.read_pandas("sample_truth", columns=["video_id", "true_engagement"]).dropna()
    per_video = t.groupby("video_id")["true_engagement"].first()
    if not set(ids) <= set(per_video.index):
        return None
    return per_video.loc[list(ids)].to_numpy(dtype=np.float64)


def _flat_params(cfg: PEConfig, label_info: dict, split_counts: dict, table_version: int, device) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for section in ("model", "train", "clip"):
        for k, v in getattr(cfg, section).model_dump().items():
            if isinstance(v, dict):  # train.gate
                params.update({f"{section}.{k}.{kk}": vv for kk, vv in v.items()})
            else:
                params[f"{section}.{k}"] = v
    params.update({f"label.{k}": v for k, v in label_info.items()})
    params.update({f"n_{k}": v for k, v in split_counts.items()})
    params.update({"training_clips_version": table_version, "device": str(device)})
    return params


# --------------------------------------------------------------------------------------------- entry points
def main(argv: list[str] | None = None) -> int:
    """``spark-submit jobs/train.py [--config FILE] [--lake DIR] [--epochs N] [--backbone NAME] [--limit N]
    [--no-promote]``."""
    started = time.perf_counter()
    from jobs.lake import Lake
    from jobs.spark import get_spark

    p = argparse.ArgumentParser(prog="jobs/train.py", description="Train the engagement model.")
    p.add_argument("--config")
    p.add_argument("--lake")
    p.add_argument("--epochs", type=int)
    p.add_argument("--backbone")
    p.add_argument("--limit", type=int)
    p.add_argument("--no-promote", action="store_true", help="leave @champion alone; `pe models promote` decides")
    a = p.parse_args(argv)
    cfg = load_config(a.config, lake=a.lake, overrides=train_overrides(epochs=a.epochs, backbone=a.backbone,
                                                                       limit=a.limit))
    lake = Lake.from_config(cfg, get_spark(cfg, app_name="pe-train"))
    run_training(cfg, lake, started=started, promote=not a.no_promote)
    return 0


def train_overrides(*, epochs: int | None = None, backbone: str | None = None, limit: int | None = None
                    ) -> dict[str, Any]:
    """Command-line options as config overrides."""
    out: dict[str, Any] = {}
    if epochs is not None:
        out.setdefault("train", {})["epochs"] = epochs
    if limit is not None:
        out.setdefault("train", {})["limit"] = limit
    if backbone is not None:
        out["model"] = {"backbone": backbone}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
