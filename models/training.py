"""Training the engagement head on cached backbone features: batching, a plain PyTorch loop, early stopping.

The backbone is frozen, so its features are computed once per video (by the training job) and stored as
float16 bytes + shape. Here they become padded batches::

    rows [{video_id, label, feature_shape=(S, C, h, w), features=bytes}, ...]
      ─► collate_feature_rows ─► FeatureBatch(features (B, S_max, C, h, w) float32,
                                              mask (B, S_max) bool, labels (B,) float32, video_ids)
      ─► fit_head: AdamW on MSE, one pass per epoch, early stopping on validation loss (best weights restored)

Clips in a batch have different lengths; shorter ones are zero-padded and masked (the head excludes padded
frames from its max pool, so padding never changes a prediction).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from models.labels import within_groups
from pe_udfs.saliency import resolve_device

__all__ = [
    "FeatureBatch", "FitResult", "encode_features", "decode_features", "collate_feature_rows",
    "trainable_parameters", "make_optimizer", "fit_head", "predict_head", "resolve_device", "InMemoryBatches",
]


# --------------------------------------------------------------------------------------------- features
def encode_features(features: np.ndarray | torch.Tensor) -> tuple[bytes, list[int]]:
    """Backbone features (S, C, h, w) → (float16 little-endian bytes, shape) for the ``training_clips`` table."""
    if isinstance(features, torch.Tensor):
        features = features.detach().to("cpu", torch.float32).numpy()
    with np.errstate(over="ignore"):  # overflow becomes inf, refused just below
        arr = np.ascontiguousarray(features, dtype="<f2")
    if arr.ndim != 4:
        raise ValueError(f"features must be (S, C, h, w), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("features contain non-finite values (float16 overflow?)")
    return arr.tobytes(), [int(d) for d in arr.shape]


def decode_features(data: bytes, shape: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`encode_features`: bytes + shape → (S, C, h, w) float16 array (read-only view)."""
    shape = tuple(int(d) for d in shape)
    expected = int(np.prod(shape)) * 2
    if len(data) != expected:
        raise ValueError(f"feature bytes have length {len(data)}, shape {shape} needs {expected}")
    return np.frombuffer(data, dtype="<f2").reshape(shape)


@dataclass
class FeatureBatch:
    """features (B, S_max, C, h, w) float32; mask (B, S_max) bool (True = a real frame); labels (B,) float32."""

    features: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor
    video_ids: list[str]

    def __len__(self) -> int:
        return len(self.video_ids)

    def to(self, device: torch.device | str) -> "FeatureBatch":
        return FeatureBatch(self.features.to(device), self.mask.to(device), self.labels.to(device), self.video_ids)


def collate_feature_rows(rows: Sequence[Mapping[str, Any]]) -> FeatureBatch:
    """Rows with ``video_id``, ``label``, ``feature_shape`` and ``features`` (bytes) → one padded batch."""
    if not rows:
        raise ValueError("cannot collate an empty batch")
    arrays = [decode_features(r["features"], r["feature_shape"]) for r in rows]
    tail = arrays[0].shape[1:]
    bad = [str(r["video_id"]) for r, a in zip(rows, arrays) if a.shape[1:] != tail]
    if bad:
        raise ValueError(f"feature maps of videos {bad} do not have shape (S, {', '.join(map(str, tail))})")
    s_max = max(a.shape[0] for a in arrays)
    feats = torch.zeros((len(rows), s_max, *tail), dtype=torch.float32)
    mask = torch.zeros((len(rows), s_max), dtype=torch.bool)
    for i, a in enumerate(arrays):
        feats[i, : a.shape[0]] = torch.from_numpy(a.astype(np.float32))
        mask[i, : a.shape[0]] = True
    labels = torch.tensor([float(r["label"]) for r in rows], dtype=torch.float32)
    return FeatureBatch(feats, mask, labels, [str(r["video_id"]) for r in rows])


class InMemoryBatches:
    """Re-iterable batches over rows held on the driver (the petastorm loader's stand-in for sweeps and benches):
    ``shuffle`` draws a new order every pass from ``seed``; otherwise the rows' order."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], *, batch_size: int, shuffle: bool = False, seed: int = 0
                 ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.rows, self.batch_size, self.shuffle = list(rows), batch_size, shuffle
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        order = self._rng.permutation(len(self.rows)) if self.shuffle else np.arange(len(self.rows))
        for i in range(0, len(order), self.batch_size):
            yield collate_feature_rows([self.rows[j] for j in order[i: i + self.batch_size]])


# --------------------------------------------------------------------------------------------- training
def trainable_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Parameters with ``requires_grad`` (the head; a frozen backbone contributes none)."""
    return [p for p in module.parameters() if p.requires_grad]


def make_optimizer(module: nn.Module, *, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(trainable_parameters(module), lr=learning_rate, weight_decay=weight_decay)


@dataclass
class FitResult:
    best_epoch: int  # 1-based epoch whose weights were kept
    best_val_loss: float
    epochs_run: int
    stopped_early: bool
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: epoch, train_loss, val_loss, seconds


def fit_head(
    head: nn.Module,
    train_batches: Iterable[FeatureBatch],
    val_batches: Iterable[FeatureBatch],
    *,
    epochs: int,
    patience: int,
    learning_rate: float,
    weight_decay: float = 0.0,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    val_groups: Mapping[str, str] | None = None,
    augment: Callable[[FeatureBatch], FeatureBatch] | None = None,
) -> FitResult:
    """Train ``head`` (features, mask → (B,)) with MSE; stop when validation loss has not improved for
    ``patience`` epochs; restore the best weights. ``train_batches``/``val_batches`` are iterated once per epoch
    (lists, or re-iterable loaders). ``val_groups`` (video_id → influencer): the validation loss compares
    predictions within influencer (:func:`evaluate_loss`), as a label residualised on influencers is evaluated.
    ``augment`` (e.g. :class:`models.augment.Augmentation`) transforms every training batch, never validation.
    Seed torch before calling for reproducible results."""
    device = torch.device(device)
    head.to(device)
    opt = make_optimizer(head, learning_rate=learning_rate, weight_decay=weight_decay)
    loss_fn = nn.MSELoss()
    best_loss, best_epoch, best_state = math.inf, 0, copy.deepcopy(head.state_dict())
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    stopped_early = False
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        head.train()
        total, n = 0.0, 0
        for batch in train_batches:
            if augment is not None:
                batch = augment(batch)
            batch = batch.to(device)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(head(batch.features, batch.mask), batch.labels)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(batch)
            n += len(batch)
        if n == 0:
            raise ValueError("the training split is empty")
        val_loss = evaluate_loss(head, val_batches, device=device, groups=val_groups)
        row = {"epoch": epoch, "train_loss": total / n, "val_loss": val_loss, "seconds": time.perf_counter() - t0}
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if val_loss < best_loss - 1e-6:
            best_loss, best_epoch, best_state = val_loss, epoch, copy.deepcopy(head.state_dict())
        elif epoch - best_epoch >= patience:
            stopped_early = True
            break
    head.load_state_dict(best_state)
    head.eval()
    return FitResult(best_epoch, best_loss, len(history), stopped_early, time.perf_counter() - started, history)


@torch.inference_mode()
def evaluate_loss(head: nn.Module, batches: Iterable[FeatureBatch], *, device: str | torch.device = "cpu",
                  groups: Mapping[str, str] | None = None) -> float:
    """Mean squared error of ``head`` over all rows of ``batches`` (eval mode). With ``groups`` (video_id →
    group), each prediction first loses the mean prediction of its group (models.labels.within_groups)."""
    if groups is not None:
        ids, preds, labels = predict_head(head, batches, device=device)
        if not ids:
            raise ValueError("the validation split is empty")
        return float(np.mean((within_groups(preds, [groups[v] for v in ids]) - labels) ** 2))
    head.eval()
    total, n = 0.0, 0
    for batch in batches:
        batch = batch.to(device)
        total += float(((head(batch.features, batch.mask) - batch.labels) ** 2).sum())
        n += len(batch)
    if n == 0:
        raise ValueError("the validation split is empty")
    return total / n


@torch.inference_mode()
def predict_head(head: nn.Module, batches: Iterable[FeatureBatch], *, device: str | torch.device = "cpu"
                 ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(video_ids, predictions (N,), labels (N,)) of ``head`` over ``batches`` in eval mode."""
    head.eval()
    ids: list[str] = []
    preds: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for batch in batches:
        b = batch.to(device)
        preds.append(head(b.features, b.mask).float().cpu().numpy())
        labels.append(batch.labels.numpy())
        ids.extend(batch.video_ids)
    if not ids:
        return [], np.zeros(0), np.zeros(0)
    return ids, np.concatenate(preds).astype(np.float64), np.concatenate(labels).astype(np.float64)
