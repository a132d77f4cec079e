"""Settings of the engagement network and its training (part of :class:`jobs.config.PEConfig`)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

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
