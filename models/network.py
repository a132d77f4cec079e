"""The engagement network of the paper: a frozen 2-D backbone on every frame, then a small 3-D head.

::

    clips (B, S, 3, H, W) float RGB in [0, 1]
      │  reshape to B·S frames, in chunks of ``frame_chunk``
      ▼
    Backbone (frozen, normalises with its own mean/std)  ── per frame ──►  (B, S, C, h, w)   7×7; C=320 (mobilenet_v2),
                                                                            1280 (mobilenet_v2_1280), 2048 (xception)
      ▼
    EngagementHead                                                          ── trained ──
      permute ─► (B, C, S, h, w) ─► Conv3d(C→128, 3×3×3, padding same | valid) ─► ReLU
              ─► global max pool over (t, h, w) ─► (B, 128)
              ─► Linear(128→256) ─► ReLU ─► Dropout(0.1) ─► Linear(256→1) ─► (B,)  predicted engagement

Padding (``model.conv_padding``): "same" (zero padding 1, our default) keeps (S, 7, 7), so any clip with S ≥ 1
works and the edge seconds and cells sit in as many windows as the rest; "valid" (the paper's, Keras' default)
gives (S−2, 5, 5) and needs S ≥ 3. The global max pool makes either length-agnostic. Since the backbone is frozen,
training runs :class:`EngagementHead` alone on cached features; ``EngagementNet.head(net.features(clips))``
equals ``net(clips)``. Gradients flow through the frozen backbone to the input pixels (saliency).
"""
from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from models.backbones import Backbone, create_backbone
from models.settings import ModelSettings
from pe_udfs.errors import ModelError

__all__ = ["EngagementHead", "DensityHead", "EngagementNet", "create_engagement_head", "create_density_head",
           "build_engagement_net", "head_from_settings", "backbone_features", "extract_features", "fast_bfloat16"]


def backbone_features(backbone: Backbone, frames: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """``(N, 3, H, W)`` frames in [0, 1] → ``(N, C, h, w)``, ``chunk`` frames at a time (gradients still flow
    when enabled; wrap in ``torch.inference_mode()`` for feature extraction)."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    return torch.cat([backbone(part) for part in torch.split(frames, chunk)])


def fast_bfloat16(device: torch.device | str) -> bool:
    """True when ``device`` runs bfloat16 convolutions natively (CUDA with bf16, or a CPU whose oneDNN has bf16
    kernels, e.g. AVX512-BF16/AMX), so autocast there is faster, not an emulation."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def extract_features(backbone: Backbone, frames: torch.Tensor, *, chunk: int = 32, precision: str = "auto"
                     ) -> torch.Tensor:
    """Inference-only backbone features for caching: ``(N, 3, H, W)`` in [0, 1] → ``(N, C, h, w)`` float32 on CPU.

    Runs on the backbone's device without autograd, channels-last, and (precision "auto" where
    :func:`fast_bfloat16`, or "bfloat16") under bfloat16 autocast — 3-4x faster on CPUs with bf16 kernels, at
    ~3 significant digits, below the float16 the features are stored in. "float32" disables it."""
    if precision not in ("auto", "float32", "bfloat16"):
        raise ValueError(f"precision must be auto, float32 or bfloat16, not {precision!r}")
    device = next(backbone.parameters()).device
    use_bf16 = precision == "bfloat16" or (precision == "auto" and fast_bfloat16(device))
    frames = frames.to(device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
        feats = backbone_features(backbone, frames, chunk)
    return feats.float().contiguous().cpu()


class EngagementHead(nn.Module):
    """The trainable 3-D head: features ``(B, S, C, h, w)`` (+ optional ``mask`` (B, S) bool, True = a real
    frame) → ``(B,)``.

    With a mask, padded frames are zero-filled before the convolution (exactly what "same" padding's own zeros
    give an unpadded clip) and the outputs whose window reaches past the clip's end are excluded from the max
    pool (set to -inf; with "valid" padding that is the last k−1 positions of each clip), so a padded batch gives
    each clip the same output as running it alone.
    """

    def __init__(self, conv: nn.Conv3d, activation: nn.Module, mlp: nn.Sequential) -> None:
        super().__init__()
        self.conv = conv
        self.activation = activation
        self.mlp = mlp

    @property
    def in_channels(self) -> int:
        return self.conv.in_channels

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if features.ndim != 5 or features.shape[2] != self.in_channels or features.shape[1] < 1:
            raise ModelError("bad_clip", f"the engagement head expects features (B, S≥1, {self.in_channels}, h, w), "
                                         f"got {tuple(features.shape)}")
        x = features.permute(0, 2, 1, 3, 4)  # (B, C, S, h, w)
        span = self.conv.kernel_size[0] - 1 if self.conv.padding == (0, 0, 0) else 0  # frames lost at the end
        if mask is None and features.shape[1] <= span:
            raise ModelError("clip_too_short", f"the engagement head (valid padding) needs clips of at least "
                                               f"{span + 1} seconds, got {features.shape[1]}")
        if mask is not None:
            if mask.shape != features.shape[:2]:
                raise ModelError("bad_clip", f"mask {tuple(mask.shape)} does not match features "
                                             f"{tuple(features.shape[:2])}")
            if not bool(mask.any(dim=1).all()):
                raise ModelError("bad_clip", "every clip needs at least one unmasked frame")
            keep = mask.to(dtype=torch.bool, device=x.device)[:, None, :, None, None]
            x = x * keep.to(x.dtype)
            lengths = mask.sum(dim=1)
            if bool((lengths <= span).any()):
                raise ModelError("clip_too_short", f"the engagement head (valid padding) needs clips of at least "
                                                   f"{span + 1} seconds, got {int(lengths.min())}")
        y = self.activation(self.conv(x))  # (B, F, S − span, h', w')
        if mask is not None:
            valid = keep[:, :, span:] if span else keep  # output t covers frames t..t+span: all must be real
            y = y.masked_fill(~valid, float("-inf"))
        pooled = y.amax(dim=(2, 3, 4))  # (B, F): global max over time and space
        return self.mlp(pooled).squeeze(-1)


def create_engagement_head(
    *,
    in_channels: int,
    conv_filters: int = 128,
    kernel_size: int = 3,
    dense_units: int = 256,
    dropout: float = 0.1,
    padding: str = "same",
    activation: type[nn.Module] = nn.ReLU,
) -> EngagementHead:
    """Build the paper's 3-D head::

        (B, S, C, h, w) ─► Conv3d(C→conv_filters, k×k×k, padding k//2 ("same") or 0 ("valid")) ─► activation
                        ─► max over (t, h, w) ─► Linear(conv_filters→dense_units) ─► activation
                        ─► Dropout(dropout) ─► Linear(dense_units→1) ─► (B,)
    """
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd so that 'same' padding keeps the time axis, got {kernel_size}")
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', not {padding!r}")
    conv = nn.Conv3d(in_channels, conv_filters, kernel_size, padding=kernel_size // 2 if padding == "same" else 0)
    mlp = nn.Sequential(nn.Linear(conv_filters, dense_units), activation(), nn.Dropout(dropout),
                        nn.Linear(dense_units, 1))
    return EngagementHead(conv, activation(), mlp)


class DensityHead(nn.Module):
    """A head whose spatial map *is* its prediction: a non-negative engagement density per second and cell, and the
    video's engagement is its bias plus the density summed over the frame and averaged over the seconds::

        features (B, S, C, h, w) ─► permute (B, C, S, h, w) ─► Conv3d 1×1×1 (C→F) = z
          z, |z_s − z_s−1| (0 at s = 0) ─► concat (2F) ─► Conv3d k×k×k same (2F→F) ─► ReLU ─► Dropout
          ─► Conv3d 1×1×1 (F→1) ─► softplus ─► density d (B, S, h, w) ≥ 0
        ŷ = bias + mean over real seconds of Σ_hw d        (B,)

    The change channel |z_s − z_s−1| lets a cell's density depend on what moves there. Because ŷ is a sum over
    space, "how much of the predicted engagement sits in a region" has one answer: the density's share there, or
    what the sum loses when the region is removed from the frames (pe_udfs.saliency's 'density' and 'ablation').
    With a mask (B, S) padded seconds count nowhere."""

    def __init__(self, in_channels: int, filters: int = 16, kernel_size: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.reduce = nn.Conv3d(in_channels, filters, 1)
        self.conv = nn.Conv3d(2 * filters, filters, kernel_size, padding=kernel_size // 2)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Conv3d(filters, 1, 1)
        nn.init.constant_(cast(torch.Tensor, self.out.bias), -4.0)  # a small density everywhere at the start
        self.bias = nn.Parameter(torch.zeros(()))

    @property
    def in_channels(self) -> int:
        return self.reduce.in_channels

    def density(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, S, C, h, w)`` → ``(B, S, h, w)`` non-negative density (0 on padded seconds)."""
        if features.ndim != 5 or features.shape[2] != self.in_channels or features.shape[1] < 1:
            raise ModelError("bad_clip", f"the density head expects features (B, S≥1, {self.in_channels}, h, w), "
                                         f"got {tuple(features.shape)}")
        x = features.permute(0, 2, 1, 3, 4)  # (B, C, S, h, w)
        keep = None
        if mask is not None:
            if mask.shape != features.shape[:2]:
                raise ModelError("bad_clip", f"mask {tuple(mask.shape)} does not match features "
                                             f"{tuple(features.shape[:2])}")
            keep = mask.to(dtype=x.dtype, device=x.device)[:, None, :, None, None]
            x = x * keep
        z = self.reduce(x)
        if keep is not None:
            z = z * keep
        change = torch.zeros_like(z)
        change[:, :, 1:] = (z[:, :, 1:] - z[:, :, :-1]).abs()
        if keep is not None:
            change = change * keep * torch.cat([torch.zeros_like(keep[:, :, :1]), keep[:, :, :-1]], dim=2)
        h = self.dropout(torch.relu(self.conv(torch.cat([z, change], dim=1))))
        d = nn.functional.softplus(self.out(h))[:, 0]  # (B, S, h, w)
        if keep is not None:
            d = d * keep[:, 0]
        return d

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        d = self.density(features, mask)
        seconds = (mask.sum(dim=1).to(d.dtype) if mask is not None
                   else torch.full((d.shape[0],), float(d.shape[1]), dtype=d.dtype, device=d.device))
        if bool((seconds < 1).any()):
            raise ModelError("bad_clip", "every clip needs at least one unmasked frame")
        return self.bias + d.sum(dim=(1, 2, 3)) / seconds


def create_density_head(*, in_channels: int, filters: int = 16, kernel_size: int = 3, dropout: float = 0.1
                        ) -> DensityHead:
    """Build a :class:`DensityHead` (see its diagram)."""
    return DensityHead(in_channels, filters, kernel_size, dropout)


class EngagementNet(nn.Module):
    """Frozen backbone per frame + trainable 3-D head: clips ``(B, S, 3, H, W)`` float RGB in [0, 1] → ``(B,)``.

    ``frame_chunk`` frames go through the backbone at a time (bounds inference memory; a backward through
    ``forward`` still holds every chunk's graph — saliency bounds it with ``backbone`` and ``head`` separately,
    see pe_udfs.saliency).
    ``settings`` is the :class:`ModelSettings` it was built from (saved with the model).
    """

    def __init__(self, backbone: Backbone, head: EngagementHead | DensityHead, *, settings: ModelSettings | None = None,
                 frame_chunk: int = 32) -> None:
        super().__init__()
        if head.in_channels != backbone.out_channels:
            raise ValueError(f"head expects {head.in_channels} channels, backbone '{backbone.name}' gives "
                             f"{backbone.out_channels}")
        self.backbone = backbone
        self.head = head
        self.settings = settings or ModelSettings(backbone=backbone.name)
        self.frame_chunk = frame_chunk

    @property
    def preprocess(self):
        return self.backbone.preprocess

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """Backbone features of every frame: ``(B, S, 3, H, W)`` → ``(B, S, C, h, w)``."""
        if clips.ndim != 5 or clips.shape[2] != 3 or clips.shape[1] < 1:
            raise ModelError("bad_clip", f"expected clips (B, S≥1, 3, H, W), got {tuple(clips.shape)}")
        b, s = clips.shape[:2]
        frames = clips.reshape(b * s, *clips.shape[2:])
        feats = backbone_features(self.backbone, frames, self.frame_chunk)
        return feats.reshape(b, s, *feats.shape[1:])

    def forward(self, clips: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(clips), mask)

    def config(self) -> dict[str, Any]:
        """What rebuilds this architecture: model settings + the backbone's preprocessing config."""
        return {"model": self.settings.model_dump(), "preprocess": self.preprocess.to_dict()}


def build_engagement_net(settings: ModelSettings, *, weights: str | None = "imagenet", frame_chunk: int = 32
                         ) -> EngagementNet:
    """Build the network from ``cfg.model``: the named backbone (ImageNet weights, or ``settings.backbone_weights``
    when set; ``weights=None`` for the bare architecture) and a freshly initialised head."""
    backbone = create_backbone(settings.backbone, weights=weights,
                               weights_file=settings.backbone_weights if weights is not None else None)
    return EngagementNet(backbone, head_from_settings(settings, backbone.out_channels), settings=settings,
                         frame_chunk=frame_chunk)


def head_from_settings(settings: ModelSettings, in_channels: int) -> EngagementHead | DensityHead:
    """A freshly initialised head of ``cfg.model.head`` ('max_pool': the paper's :class:`EngagementHead`;
    'density': :class:`DensityHead`) with ``cfg.model``'s sizes (seed torch first)."""
    if settings.head == "density":
        return create_density_head(in_channels=in_channels, filters=settings.conv_filters, dropout=settings.dropout)
    return create_engagement_head(in_channels=in_channels, conv_filters=settings.conv_filters,
                                  dense_units=settings.dense_units, dropout=settings.dropout,
                                  padding=settings.conv_padding)

