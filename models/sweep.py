"""Hyper-parameter sweeps of the head: a YAML grid or random search, and one in-memory fit per trial.

A sweep file names settings of ``model.*`` and ``train.*`` by their dotted config path and lists the values
to try::

    method: grid          # grid: every combination; random: ``trials`` combinations drawn with ``seed``
    trials: 8
    seed: 0
    params:
      train.weight_decay: [0.0001, 0.01]
      train.feature_dropout: [0.0, 0.3]
      model.conv_filters: [32, 128]

    SweepSpec ─► trials() ─► [{"train": {"weight_decay": 1e-4, ...}, "model": {...}}, ...]  config overrides
    cached features (driver rows) + one trial's settings ─► fit_in_memory ─► (head, FitResult)

Trials are compared by their validation loss alone (never the test split); the job (jobs/training/sweep_trials.py) logs one
nested MLflow run each and retrains the best through ``pe train``'s own path and gate.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
import yaml
from pydantic import Field, ValidationError, field_validator

from models.augment import Augmentation
from models.network import DensityHead, EngagementHead, head_from_settings
from models.settings import ModelSettings, TrainSettings
from models.training import FitResult, InMemoryBatches, fit_head
from pe_udfs.errors import PEError
from pe_udfs.settings import StrictSettings

__all__ = ["SweepError", "SweepSpec", "load_sweep", "fit_in_memory", "SWEEPABLE"]

SWEEPABLE = ("model", "train")  # config sections a sweep may vary
# settings that define the data, the split, the features or the gate: the same for every trial, or trials would
# not be compared on the same validation videos and labels
FIXED = {"model.backbone", "model.backbone_weights", "train.label", "train.split_seed", "train.val_fraction",
         "train.test_fraction", "train.max_seconds", "train.limit", "train.gate", "train.feature_precision",
         "train.min_videos", "train.min_val_videos"}


class SweepError(PEError):
    """The sweep file cannot be used (the message says why)."""

    stage = "sweep"
    exit_code = 2


class SweepSpec(StrictSettings):
    method: Literal["grid", "random"] = "grid"
    trials: int | None = Field(None, ge=1)  # random: how many; grid: at most this many (the first ones)
    seed: int = 0
    params: dict[str, list[Any]]

    @field_validator("params")
    @classmethod
    def _dotted_known_sections(cls, params: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not params:
            raise ValueError("params must name at least one setting")
        for key, values in params.items():
            section, _, name = key.partition(".")
            if section not in SWEEPABLE or not name:
                raise ValueError(f"{key!r}: name settings as model.<name> or train.<name>")
            if key in FIXED or key.startswith("train.gate."):
                raise ValueError(f"{key!r} defines the data, split, features or gate; it cannot vary in a sweep")
            if not values:
                raise ValueError(f"{key!r} lists no values")
        return params

    def trials_overrides(self) -> list[dict[str, dict[str, Any]]]:
        """The trials as config overrides ({"train": {...}, "model": {...}}), in a fixed order."""
        keys = list(self.params)
        grid = list(itertools.product(*(self.params[k] for k in keys)))
        if self.method == "random":
            rng = np.random.default_rng(self.seed)
            grid = [grid[i] for i in rng.permutation(len(grid))]
        if self.trials is not None:
            grid = grid[: self.trials]
        out = []
        for values in grid:
            trial: dict[str, dict[str, Any]] = {}
            for key, value in zip(keys, values):
                section, _, name = key.partition(".")
                trial.setdefault(section, {})[name] = value
            out.append(trial)
        return out


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep YAML file (:class:`SweepError` with the reason otherwise)."""
    p = Path(path)
    if not p.is_file():
        raise SweepError("not_found", f"sweep file {p} does not exist")
    try:
        raw = yaml.safe_load(p.read_text())
        return SweepSpec.model_validate(raw if raw is not None else {})
    except yaml.YAMLError as e:
        raise SweepError("bad_yaml", f"sweep file {p} is not valid YAML: {e}") from None
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'file'}: {err['msg']}" for err in e.errors())
        raise SweepError("bad_sweep", f"sweep file {p}: {problems}") from None


def fit_in_memory(train_rows: Sequence[Mapping[str, Any]], val_rows: Sequence[Mapping[str, Any]], *,
                  model: ModelSettings, train: TrainSettings, in_channels: int,
                  val_groups: Mapping[str, str] | None = None, device: str | torch.device = "cpu",
                  on_epoch=None) -> tuple[EngagementHead | DensityHead, FitResult]:
    """A fresh head trained on driver-held feature rows (video_id, label, feature_shape, features) with the
    trial's settings: the same :func:`models.training.fit_head`, augmentation and early stopping as ``pe train``,
    batches drawn in memory instead of through petastorm. Seeds torch with ``train.seed``."""
    torch.manual_seed(train.seed)
    head = head_from_settings(model, in_channels)
    fit = fit_head(head, InMemoryBatches(train_rows, batch_size=train.batch_size, shuffle=True, seed=train.seed),
                   InMemoryBatches(val_rows, batch_size=train.batch_size), epochs=train.epochs,
                   patience=train.patience, learning_rate=train.learning_rate, weight_decay=train.weight_decay,
                   device=device, val_groups=val_groups, augment=Augmentation.from_settings(train),
                   on_epoch=on_epoch)
    return head, fit
