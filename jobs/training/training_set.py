"""The training set of ``pe train``: labelled videos, their influencer split and labels, cached backbone features.

    extract    engagement_labels ⋈ campaign_videos (Spark)                       → labelled videos
    transform  split by influencer and labels fitted on training rows only (models.labels: the influencer fixed
               effects within each split, standardisation with the training rows' mean and SD; influencers with
               one video carry no label after fixed effects and are left out)
    features   decode each video (pe_udfs.video) and run the frozen backbone ONCE per video (mapInPandas,
               backbone loaded once per worker) → Delta table training_clips; features of unchanged videos
               (same backbone, weights and sampling) are reused from the previous run
    ─► TrainingSet: the usable training_clips rows, split sizes, skipped videos, each video's influencer

The job (jobs/training/train.py) trains, evaluates and registers on it.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterator

from jobs.config import PEConfig
from pe_udfs.errors import PEError
from pe_udfs.settings import ClipSettings

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame

__all__ = ["TrainingDataError", "TrainingSet", "build_training_set", "labelled_videos", "labelled_split",
           "training_clip", "clip_config_json", "feature_rows"]


class TrainingDataError(PEError):
    """The lake does not hold enough usable labelled videos to train (the message says what is missing)."""

    stage = "train"


@dataclass
class TrainingSet:
    """What training needs from the lake: the usable ``training_clips`` rows (Spark: video_id, split, label,
    feature_shape, features, …) of Delta version ``table_version``, and about them: the label statistics, each
    video's influencer (``groups``), videos per split, the videos whose features failed, the test videos' URIs
    (to re-score a champion with other features)."""

    usable: "DataFrame"
    table_version: int
    label_info: dict[str, Any]
    groups: dict[str, str]
    split_counts: dict[str, int]
    skipped: list[dict[str, str]]
    test_uris: dict[str, str]


# --------------------------------------------------------------------------------------------- extract
def labelled_videos(lake) -> "DataFrame":
    """engagement_labels joined to campaign_videos on video_id: one row per labelled video with a URI."""
    from pyspark.sql import functions as F

    for name in ("engagement_labels", "campaign_videos"):
        if not lake.exists(name):
            raise TrainingDataError("table_not_found", f"table '{name}' does not exist in {lake.root}; run `pe sample` (or ingest "
                                    "labels) first")
    labels = lake.read("engagement_labels").alias("l")
    videos = lake.read("campaign_videos").alias("v")
    return (labels.join(videos, F.col("l.video_id") == F.col("v.video_id"), "inner")
            .select(F.col("l.video_id").alias("video_id"),
                    F.coalesce(F.col("v.video_uri"), F.col("l.video_uri")).alias("video_uri"),
                    F.coalesce(F.col("v.influencer_id"), F.col("l.influencer_id")).alias("influencer_id"),
                    F.col("l.shares").alias("shares"), F.col("l.likes").alias("likes")))


# --------------------------------------------------------------------------------------------- transform
def labelled_split(cfg: PEConfig, videos: "DataFrame"
                   ) -> tuple["DataFrame", dict[str, Any], dict[str, str]]:
    """The labelled videos (Spark, one row per video) → (video_id, video_uri, label, split), the label statistics
    and each video's influencer (its split group), through :func:`models.labels.split_by_group` and
    :func:`models.labels.build_labels` on the driver (one small row per video). ``train.limit`` takes a
    deterministic subset first."""
    from pyspark.sql import functions as F

    from models.labels import LabelError, build_labels, group_key, split_by_group

    tc = cfg.train
    if tc.limit is not None:
        videos = videos.orderBy(F.xxhash64(F.lit(f"limit:{tc.split_seed}"), "video_id"), "video_id").limit(tc.limit)
    pdf: pd.DataFrame = videos.toPandas()
    if pdf.empty:
        raise TrainingDataError("no_videos", "no labelled video has a row in campaign_videos; run `pe sample` or add labels")
    split = split_by_group(pdf, seed=tc.split_seed, val_fraction=tc.val_fraction, test_fraction=tc.test_fraction)
    try:
        labelled, info = build_labels(pdf, tc.label, split)
    except LabelError as e:
        raise TrainingDataError(e.reason, e.message) from None
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
    from models.training import encode_features
    from pe_udfs.errors import PEInputError
    from pe_udfs.saliency import resolve_device
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
        except Exception as e:  # any failure: one bad video must not stop the job; it is recorded
            rec.update(error_stage="model", error_reason="model_failed", error_message=f"{type(e).__name__}: {e}")
        yield rec


def _feature_partition(batches, **kwargs):
    """mapInPandas adapter around :func:`feature_rows`: one output frame per video (keeps Arrow batches small)."""
    import pandas as pd

    for pdf in batches:
        for rec in feature_rows(pdf.to_dict("records"), **kwargs):
            yield pd.DataFrame([rec])


def _compute_features(cfg: PEConfig, todo: "DataFrame", clip_config: str, torch_threads: int,
                      partitions: int) -> "DataFrame":
    import functools

    from jobs.storage.contracts import spark_schema

    clip = training_clip(cfg).model_dump()
    fn = functools.partial(
        _feature_partition, clip=clip, io={"allowed_schemes": list(cfg.io.allowed_schemes),
                                           "allowed_roots": list(cfg.allowed_roots)},
        backbone=cfg.model.backbone, backbone_weights=cfg.model.backbone_weights, frame_batch=cfg.train.frame_batch,
        torch_threads=torch_threads, clip_config=clip_config, label_definition=cfg.train.label, device=cfg.device,
        precision=cfg.train.feature_precision)
    return (todo.select("video_id", "video_uri", "label", "split").repartition(partitions)
                .mapInPandas(fn, schema=spark_schema("training_clips")))


# --------------------------------------------------------------------------------------------- the training set
def build_training_set(cfg: PEConfig, lake, *, echo: Callable[[str], None], timings: dict[str, float],
                       t_start: float, features_only: bool = False) -> TrainingSet | None:
    """Labels and split (driver), then features of every labelled video into ``training_clips`` (reusing unchanged
    ones); None when ``features_only``. Raises :class:`TrainingDataError` when a split is too small to train."""
    from pyspark.sql import functions as F

    from jobs.storage.contracts import contract

    spark = lake.spark
    tc = cfg.train
    # ---- extract + transform
    labelled, label_info, groups = labelled_split(cfg, labelled_videos(lake))
    labelled = labelled.cache()
    n_labelled = label_info["n"]
    if n_labelled < tc.min_videos:
        raise TrainingDataError("too_few_videos", f"only {n_labelled} labelled videos with a video file (need at least "
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
            raise TrainingDataError("schema_mismatch",
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
            raise TrainingDataError("too_few_videos", f"the {name} split has {split_counts.get(name, 0)} usable videos, fewer than "
                                    f"{least}{why}; add labelled videos or change train.val_fraction/test_fraction")
    return TrainingSet(usable=usable, table_version=commit.version, label_info=label_info, groups=groups,
                       split_counts=split_counts, skipped=skipped, test_uris=test_uris)
