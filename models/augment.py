"""Regularising augmentations of cached backbone features, applied to each training batch (never to evaluation).

The backbone is frozen and its features are cached once per video, so augmentation acts on the cached
``(B, S, C, h, w)`` maps, not on pixels::

    FeatureBatch ─► random_windows   each clip cut to a random run of ``window_seconds`` consecutive seconds
                                     (clips that are not longer stay whole); the head is length-agnostic
                 ─► random_hflip     with probability ``p`` per clip, the 7×7 map mirrored left ↔ right
                 ─► feature_dropout  each (clip, channel) zeroed with probability ``p`` for the whole clip,
                                     the rest scaled by 1/(1 − p) (Dropout3d on the head's input)

Flips act on the feature grid, not on the frames: a mirrored image's features are only approximately the mirrored
features of the image (the backbone's filters are not symmetric), but computing features of flipped frames would
double the feature pass, the job's dominant cost (bench/train.py), for every video of every campaign. Mirroring
the grid keeps what the head can exploit — where on the frame something happens — from being learned one-sided.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from models.training import FeatureBatch

__all__ = ["Augmentation", "random_windows", "random_hflip", "feature_dropout"]


def random_windows(features: torch.Tensor, mask: torch.Tensor, seconds: int, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut each clip of ``features`` (B, S, C, h, w) with ``mask`` (B, S) (True = a real second, real seconds
    first) to ``seconds`` consecutive real seconds starting at a uniform random offset → (B, S', C, h, w),
    (B, S') with S' = min(seconds, S). A clip of ``seconds`` or fewer real seconds is kept whole."""
    if seconds < 1:
        raise ValueError(f"seconds must be at least 1, got {seconds}")
    b, s = mask.shape
    width = min(seconds, s)
    lengths = mask.sum(dim=1)
    slack = (lengths - width).clamp(min=0)  # how far each window may start from 0
    starts = (torch.rand(b, generator=generator) * (slack + 1).to(torch.float32)).floor().long()
    index = starts[:, None] + torch.arange(width)[None, :]  # (B, S')
    index = index.clamp(max=s - 1)
    rows = torch.arange(b)[:, None]
    return features[rows, index], mask[rows, index] & (torch.arange(width)[None, :] < lengths[:, None])


def random_hflip(features: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Mirror the last (width) axis of each clip of ``features`` (B, S, C, h, w) with probability ``p``."""
    flip = torch.rand(features.shape[0], generator=generator) < p
    if not bool(flip.any()):
        return features
    out = features.clone()
    out[flip] = features[flip].flip(-1)
    return out


def feature_dropout(features: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Zero each (clip, channel) of ``features`` (B, S, C, h, w) with probability ``p`` over all its seconds and
    cells, and scale the kept channels by 1/(1 − p) so the expected input is unchanged."""
    if not 0 <= p < 1:
        raise ValueError(f"feature dropout must be in [0, 1), got {p}")
    if p == 0:
        return features
    keep = (torch.rand(features.shape[0], 1, features.shape[2], 1, 1, generator=generator) >= p)
    return features * keep.to(features.dtype) / (1 - p)


@dataclass(frozen=True)
class Augmentation:
    """The training-batch augmentation of ``train.*`` settings; calling it returns a new :class:`FeatureBatch`.
    ``seed`` fixes the draws (one generator per Augmentation, advanced batch after batch)."""

    window_seconds: int | None = None
    flip: float = 0.0
    feature_dropout: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        object.__setattr__(self, "_generator", gen)

    @classmethod
    def from_settings(cls, train) -> "Augmentation":
        """From :class:`models.settings.TrainSettings` (window_seconds, flip, feature_dropout, seed)."""
        return cls(train.window_seconds, train.flip, train.feature_dropout, train.seed)

    @property
    def active(self) -> bool:
        return self.window_seconds is not None or self.flip > 0 or self.feature_dropout > 0

    def __call__(self, batch: FeatureBatch) -> FeatureBatch:
        gen = self._generator  # type: ignore[attr-defined]
        feats, mask = batch.features, batch.mask
        if self.window_seconds is not None:
            feats, mask = random_windows(feats, mask, self.window_seconds, gen)
        if self.flip > 0:
            feats = random_hflip(feats, self.flip, gen)
        feats = feature_dropout(feats, self.feature_dropout, gen)
        return FeatureBatch(feats, mask, batch.labels, batch.video_ids)
