"""Settings of the engagement network and its training (part of :class:`jobs.config.PEConfig`)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pe_udfs.settings import StrictSettings


class ModelSettings(StrictSettings):
    backbone: str = "mobilenet_v2"
    backbone_weights: str | None = None  # local file (e.g. xception ImageNet state dict); None → registry default
    conv_filters: int = Field(128, ge=1)
    dense_units: int = Field(256, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)


class TrainSettings(StrictSettings):
    label: Literal["log1p_shares_resid_influencer", "log1p_shares", "log1p_likes"] = "log1p_shares_resid_influencer"
    epochs: int = Field(40, ge=1)
    patience: int = Field(6, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    split_seed: int = 17
    val_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    # Seconds from the start of each video the model trains on (None → clip.max_seconds). The model is saved with
    # clip.max_seconds lowered to this, and scoring samples with the model's saved clip settings, so it sees the
    # same seconds it was trained and evaluated on. Fewer seconds make the frozen-backbone feature pass and the
    # 3-D head proportionally cheaper.
    max_seconds: int | None = Field(None, ge=1)
    limit: int | None = Field(None, ge=1)  # train on at most this many labelled videos (a deterministic subset)
    # Promotion: the metric the candidate must improve over the champion on the same test videos (strictly,
    # by more than min_improvement); it must also beat the constant baseline on spearman and r2.
    selection_metric: Literal["spearman", "r2", "mae"] = "spearman"
    min_improvement: float = Field(0.0, ge=0)
    frame_batch: int = Field(32, ge=1)  # frames per backbone batch in the feature pass
    # Feature pass arithmetic: auto → bfloat16 autocast where the hardware has native bf16 kernels (3-4x faster on
    # AVX512-BF16 CPUs), else float32. Features are stored as float16 either way.
    feature_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    torch_threads: int | None = Field(None, ge=1)  # per Spark task; None → cores / concurrent tasks
    partitions: int | None = Field(None, ge=1)  # of the feature pass; None → Spark's default parallelism
    shuffle_buffer: int = Field(256, ge=0)  # petastorm row shuffling queue (0 = no shuffling)
    loader_workers: int = Field(2, ge=1)  # petastorm reader threads
    min_videos: int = Field(10, ge=3)  # fewer usable labelled videos is an error

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> "TrainSettings":
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% of the videos for training")
        return self
