"""Frozen 2-D image backbones by name (timm-style registry), each carrying its preprocessing config.

    create_backbone("mobilenet_v2")                      # default: torchvision's MobileNetV2 + ImageNet weights
                                                         # (320 channels; "mobilenet_v2_1280": the no-top map)
    create_backbone("xception", weights_file="x.pth")    # paper-faithful: timm's Keras-style Xception
    create_backbone("tiny")                              # a few conv layers from scratch, for fast tests
    create_backbone("mobilenet_v2", weights=None)        # the architecture only (e.g. to load a saved model)

A :class:`Backbone` takes frames ``(N, 3, H, W)`` float RGB in [0, 1], normalises them with its own mean/std
and returns feature maps ``(N, C, h, w)`` (7×7 for 224×224 input). Its :class:`PreprocessConfig` says what
input it expects and what it returns; it is saved with every model so scoring never repeats constants.

Weights never come from the network: MobileNetV2's official torchvision file is placed offline in the torch
hub cache by :func:`models.weights.ensure_mobilenet_v2`; Xception's ImageNet weights are a local state-dict
file (``cfg.model.backbone_weights``). Every file is read with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import functools
import os
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
from torch import nn

from models.weights import ensure_mobilenet_v2
from pe_udfs.errors import PEError

# Lazy imports here are deliberate: torchvision and timm load only for the backbone that is built.

__all__ = [
    "Backbone", "PreprocessConfig", "UnknownBackbone", "BackboneWeightsError", "create_backbone",
    "list_backbones", "register_backbone", "load_state_dict_file", "cached_backbone",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BackboneError(PEError):
    """A backbone cannot be built as configured (a mistake in the config or its files: exit code 2)."""

    stage = "model"
    exit_code = 2


class UnknownBackbone(BackboneError):
    """No backbone is registered under the requested name (the message lists the known names)."""


class BackboneWeightsError(BackboneError):
    """Backbone weights are missing, unreadable, or do not fit the architecture."""


@dataclass(frozen=True)
class PreprocessConfig:
    """What a backbone expects and returns (saved with every model).

    input_size: (H, W) pixels the backbone was trained on; mean/std: per-channel RGB normalisation applied to
    [0, 1] pixels; feature_channels: C; feature_size: (h, w) of the feature map for ``input_size`` input.
    """

    name: str
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    feature_channels: int
    feature_size: tuple[int, int]
    weights: str | None = None  # where the pretrained weights came from ("imagenet", a file name, None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backbone(nn.Module):
    """A frozen feature extractor: ``(N, 3, H, W)`` float in [0, 1] → ``(N, C, h, w)`` float.

    Parameters have ``requires_grad=False`` and the module always stays in eval mode (batch-norm statistics
    never change), but gradients still flow to the input pixels (for saliency).
    """

    mean: torch.Tensor  # (1, 3, 1, 1) buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, features: nn.Module, preprocess: PreprocessConfig) -> None:
        super().__init__()
        self.features = features
        self.preprocess = preprocess
        self.register_buffer("mean", torch.tensor(preprocess.mean, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(preprocess.std, dtype=torch.float32).view(1, 3, 1, 1),
                             persistent=False)
        self.freeze()

    @property
    def name(self) -> str:
        return self.preprocess.name

    @property
    def out_channels(self) -> int:
        return self.preprocess.feature_channels

    def freeze(self) -> "Backbone":
        for p in self.parameters():
            p.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> "Backbone":  # a frozen backbone is always in eval mode
        return super().train(False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"backbone '{self.name}' expects frames (N, 3, H, W), got {tuple(frames.shape)}")
        return self.features((frames - self.mean) / self.std)


# --------------------------------------------------------------------------------------------- registry
BackboneFactory = Callable[..., Backbone]
_REGISTRY: dict[str, BackboneFactory] = {}


def register_backbone(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Decorator: register ``fn(*, weights, weights_file) -> Backbone`` under ``name``."""

    def deco(fn: BackboneFactory) -> BackboneFactory:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return deco


def list_backbones() -> list[str]:
    return sorted(_REGISTRY)


def create_backbone(name: str, *, weights: str | None = "imagenet", weights_file: str | None = None) -> Backbone:
    """Build backbone ``name`` with frozen parameters.

    weights: "imagenet" → the backbone's pretrained ImageNet weights (offline; for ``xception`` from
    ``weights_file``); None → the architecture only, randomly initialised (e.g. before loading a saved
    model's state dict). weights_file: a local state-dict file that replaces the default weights source.
    Raises :class:`UnknownBackbone` listing the registered names, :class:`BackboneWeightsError` when the
    weights cannot be found or do not fit.
    """
    if weights not in ("imagenet", None):
        raise ValueError(f"weights must be 'imagenet' or None, not {weights!r} (use weights_file= for a file)")
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UnknownBackbone("unknown_backbone", f"unknown backbone {name!r}; registered: {', '.join(list_backbones())}") from None
    return factory(weights=weights, weights_file=weights_file)


@functools.lru_cache(maxsize=4)
def cached_backbone(name: str, weights_file: str | None = None, device: str = "cpu") -> Backbone:
    """:func:`create_backbone` with ImageNet weights on ``device`` in channels-last layout (faster convolutions),
    built once per process (e.g. once per Spark worker) for feature extraction."""
    net = create_backbone(name, weights="imagenet", weights_file=weights_file)
    return net.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs omit it


def load_state_dict_file(path: str) -> dict[str, torch.Tensor]:
    """Read a state dict with ``torch.load(weights_only=True)`` (tensors only, no code); unwraps a
    ``{"state_dict": ...}`` or ``{"model": ...}`` checkpoint."""
    if not os.path.isfile(path):
        raise BackboneWeightsError("weights_missing", f"weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt file, or a pickle that is not just tensors
        raise BackboneWeightsError("weights_unreadable", f"cannot read weights file {path} as a state dict: {e}") from e
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BackboneWeightsError("not_a_state_dict", f"weights file {path} does not hold a state dict of tensors")
    return obj


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], source: str, *, drop_prefixes: tuple[str, ...] = ()
               ) -> None:
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(drop_prefixes)}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise BackboneWeightsError("weights_mismatch", f"weights from {source} do not fit the architecture: {e}") from e


def _feature_size(features: nn.Module, input_size: tuple[int, int]) -> tuple[int, int]:
    with torch.inference_mode():
        out = features(torch.zeros(1, 3, *input_size))
    return int(out.shape[-2]), int(out.shape[-1])


# --------------------------------------------------------------------------------------------- backbones
def _mobilenet_v2_net(weights: str | None, weights_file: str | None):
    """torchvision's MobileNetV2 with its official ImageNet weights (offline), a local file, or none."""
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    if weights_file is not None:
        net = mobilenet_v2(weights=None)
        _load_into(net, load_state_dict_file(weights_file), weights_file)
        return net, os.path.basename(weights_file)
    if weights == "imagenet":
        ensure_mobilenet_v2()  # the file is in the hub cache: torchvision checks its hash, no download
        return mobilenet_v2(weights=MobileNet_V2_Weights.IMAGENET1K_V1), "imagenet"
    return mobilenet_v2(weights=None), None


@register_backbone("mobilenet_v2")
def _mobilenet_v2(*, weights: str | None, weights_file: str | None) -> Backbone:
    """The default: torchvision MobileNetV2 up to its last inverted-residual block, 224² → (320, 7, 7).

    Improvement over the plain no-top network (``mobilenet_v2_1280``): the final 1×1 convolution only expands
    these 320 channels to 1280 for the classifier's pooling; dropping it makes the trained Conv3d head 4×
    cheaper (1.1 M instead of 4.4 M weights), which is what lets training run on CPUs in minutes."""
    net, source = _mobilenet_v2_net(weights, weights_file)
    return Backbone(net.features[:-1], PreprocessConfig(
        name="mobilenet_v2", input_size=(224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD,
        feature_channels=320, feature_size=(7, 7), weights=source))


@register_backbone("mobilenet_v2_1280")
def _mobilenet_v2_1280(*, weights: str | None, weights_file: str | None) -> Backbone:
    """torchvision MobileNetV2 without its classifier (the standard no-top feature map): 224² → (1280, 7, 7)."""
    net, source = _mobilenet_v2_net(weights, weights_file)
    return Backbone(net.features, PreprocessConfig(
        name="mobilenet_v2_1280", input_size=(224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD,
        feature_channels=net.last_channel, feature_size=(7, 7), weights=source))


@register_backbone("xception")
def _xception(*, weights: str | None, weights_file: str | None) -> Backbone:
    """timm's ``legacy_xception`` (the Keras Xception the paper used) without its classifier:
    224² → (2048, 7, 7); inputs scaled to [-1, 1]. ImageNet weights only from a local file."""
    import timm

    if weights_file is None and weights == "imagenet":
        raise BackboneWeightsError("weights_missing", 
            "the xception backbone needs its ImageNet weights as a local file (nothing is downloaded): set "
            "model.backbone_weights to a state-dict file of timm's legacy_xception (e.g. xception-43020ad28.pth)")
    net: Any = timm.create_model("legacy_xception", pretrained=False, num_classes=0, global_pool="")
    source = None
    if weights_file is not None:
        _load_into(net, load_state_dict_file(weights_file), weights_file, drop_prefixes=("fc.",))
        source = os.path.basename(weights_file)
    features = _ForwardFeatures(net)
    return Backbone(features, PreprocessConfig(
        name="xception", input_size=(224, 224), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        feature_channels=int(net.num_features), feature_size=(7, 7), weights=source))


class _ForwardFeatures(nn.Module):
    """Wrap a timm model so ``forward`` returns its final feature map (no pooling, no classifier)."""

    net: Any  # a timm model: forward_features is not part of nn.Module

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)


@register_backbone("tiny")
def _tiny(*, weights: str | None, weights_file: str | None) -> Backbone:
    """Four strided conv layers from scratch (fast tests): 224² → (16, 7, 7). Not pretrained: "imagenet"
    gives a fixed seeded initialisation so two builds are identical; None a random one."""
    def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    def build() -> nn.Sequential:
        return nn.Sequential(*block(3, 8, 4), *block(8, 16, 2), *block(16, 16, 2), *block(16, 16, 2))

    if weights == "imagenet" and weights_file is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            features = build()
    else:
        features = build()
    source = None
    if weights_file is not None:
        _load_into(features, load_state_dict_file(weights_file), weights_file)
        source = os.path.basename(weights_file)
    return Backbone(features, PreprocessConfig(
        name="tiny", input_size=(224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD, feature_channels=16,
        feature_size=_feature_size(features.eval(), (224, 224)), weights=source))
