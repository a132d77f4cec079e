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
    # Conv3d padding of the head: "valid" is the paper's (Keras' default: 3x3x3 windows inside the clip only, so
    # clips need >= 3 seconds); "same" (the default, zero padding 1) keeps every second and every cell of the 7x7
    # map in as many windows as the others, so the first and last seconds are not under-weighted in the max pool
    # or in the saliency map (the first 6 s are the paper's peak window), and any clip of >= 1 s can be scored.
    conv_padding: Literal["same", "valid"] = "same"
    # the head: "max_pool" is the paper's (Conv3d, global max pool, MLP); "density" predicts engagement as a
    # non-negative density per second and cell whose sum is the prediction (models.network.DensityHead), so its
    # map says where the predicted engagement is (conv_filters = its channels; dense_units unused)
    head: Literal["max_pool", "density"] = "max_pool"


class GateSettings(StrictSettings):
    """The promotion gate (models.gate): what a new version must show on its held-out test videos."""

    metric: Literal["spearman", "r2", "mae"] = "spearman"  # compared with the constant and the champion
    min_test_videos: int = Field(15, ge=2)  # fewer: no decision can be trusted, the version is rejected
    confidence: float = Field(0.95, gt=0.5, lt=1)  # of the paired bootstrap intervals
    bootstrap: int = Field(2000, ge=100)  # paired resamples of the test videos
    seed: int = 0
    # vs the champion on the same videos: "beat" → interval of (candidate − champion) above +margin;
    # "not_worse" → above −margin (a retrain on new data may replace an equally good champion)
    champion: Literal["beat", "not_worse"] = "beat"
    margin: float = Field(0.0, ge=0)


class TrainSettings(StrictSettings):
    label: Literal["log1p_shares_resid_influencer", "log1p_shares", "log1p_likes"] = "log1p_shares_resid_influencer"
    epochs: int = Field(40, ge=1)
    patience: int = Field(6, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    # split by influencer (models.labels): test first, then validation, whole influencers, up to these fractions
    split_seed: int = 17
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.25, gt=0, lt=1)
    # early stopping picks the epoch on the validation loss; on fewer videos that choice is noise (the MSE of 10
    # standardised labels has a relative standard error of about 45 %), so training refuses to start
    min_val_videos: int = Field(10, ge=2)
    seed: int = 0
    # Seconds from the start of each video the model trains on (None → clip.max_seconds): fewer make the
    # frozen-backbone feature pass and the 3-D head proportionally cheaper. Scoring always uses clip.max_seconds
    # (the head is convolutional with a global max pool, so it takes any length).
    max_seconds: int | None = Field(None, ge=1)
    limit: int | None = Field(None, ge=1)  # train on at most this many labelled videos (a deterministic subset)
    gate: GateSettings = Field(default_factory=GateSettings)
    frame_batch: int = Field(32, ge=1)  # frames per backbone batch in the feature pass
    # Feature pass arithmetic: auto → bfloat16 autocast where the hardware has native bf16 kernels (3-4x faster on
    # AVX512-BF16 CPUs), else float32. Features are stored as float16 either way.
    feature_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    torch_threads: int | None = Field(None, ge=1)  # per Spark task; None → cores / concurrent tasks
    partitions: int | None = Field(None, ge=1)  # of the feature pass; None → Spark's default parallelism
    shuffle_buffer: int = Field(256, ge=0)  # petastorm row shuffling queue (0 = no shuffling)
    # petastorm reader threads; more than 1 reads faster but makes the batch order, and so the model, vary between runs
    loader_workers: int = Field(1, ge=1)
    min_videos: int = Field(10, ge=3)  # fewer usable labelled videos is an error
    # Regularisation of the head (models.augment; training batches only, never validation or test):
    window_seconds: int | None = Field(None, ge=1)  # random run of this many consecutive cached seconds per clip
    flip: float = Field(0.0, ge=0, le=1)  # probability of mirroring a clip's feature grid left-right
    feature_dropout: float = Field(0.0, ge=0, lt=1)  # probability of zeroing one input channel of a clip

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> "TrainSettings":
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% of the videos for training")
        return self
