"""Memory one video's scoring needs, from the backbone's per-frame footprint, the frame chunk and the clip window.

    backbone ─► frame_footprint (one probe frame: bytes autograd saves, largest activation, weights)
                     │
    seconds S, chunk k, frame sizes ─► video_memory ─► MemoryEstimate (bytes per part; .total)
                     │
    a memory budget ─► chunk_for_budget ─► the largest chunk whose estimate fits

The saliency pass (pe_udfs.saliency, chunked vanilla gradients) holds at most one chunk of frames' autograd
graph at a time, so only the ``chunk`` term depends on the backbone's depth; the rest grows with S at the cost
of the clip's pixels (a few MB per second). The estimate is an upper-bound model calibrated against measured peak
RSS (bench/memory.py prints both); :data:`WORKER_BASE_BYTES` is a Python worker with torch, OpenCV, PyAV and the
scoring modules imported, before any model.
"""
from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

import torch

__all__ = ["FrameFootprint", "MemoryEstimate", "frame_footprint", "video_memory", "chunk_for_budget",
           "worker_memory", "WORKER_BASE_BYTES", "parse_size", "format_size"]

#: A scoring Python worker's resident memory before it loads a model: torch (CUDA build), torchvision, timm,
#: Captum, OpenCV, PyAV, MLflow, pandas/pyarrow and the scoring modules imported (measured 1.11 GiB; rounded up).
WORKER_BASE_BYTES = 1280 * 2**20
#: Transient buffers per frame during a backward pass, in units of the largest activation (its gradient, the
#: gradient of the layer below and a convolution workspace).
_BACKWARD_TRANSIENTS = 4
#: The allocator's overhead on the saved tensors, calibrated so the estimate bounds bench/memory.py's measured
#: peaks (2026-12, CPU, chunk 8: MobileNetV2 +925/+973 MB at 30/60 s, Xception +1531/+1602 MB).
_ALLOCATOR_SLACK = 1.2
#: Per-second copies of the clip's pixels alive at the peak: the uint8 frames, the float clip, the device copy,
#: its gradient, |gradient| and the per-pixel map (float32, 3-channel where it applies).
_CLIP_COPIES = 5


@dataclass(frozen=True)
class FrameFootprint:
    """Per-frame memory of a backbone at one input size (bytes): ``saved`` — tensors autograd keeps for the
    input gradient; ``largest_activation`` — the biggest single layer output; ``features`` — the output
    (C·h·w floats); ``weights`` — parameters and buffers (once per model, not per frame)."""

    name: str
    size: tuple[int, int]
    saved: int
    largest_activation: int
    features: int
    weights: int

    @property
    def graph_per_frame(self) -> int:
        """Bytes one frame adds while its chunk's graph is alive and back-propagated."""
        return int(_ALLOCATOR_SLACK * self.saved) + _BACKWARD_TRANSIENTS * self.largest_activation


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one video adds to a worker that already holds the model: ``chunk_graph`` (one chunk's autograd
    graph and backward transients), ``clip`` (pixel copies of the whole clip), ``features`` (S frames' features
    and their gradient), ``match_frames`` (the frames product matching reads). ``total`` is their sum."""

    seconds: int
    chunk: int
    chunk_graph: int
    clip: int
    features: int
    match_frames: int

    @property
    def total(self) -> int:
        return self.chunk_graph + self.clip + self.features + self.match_frames


_FOOTPRINTS: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()


def frame_footprint(backbone: torch.nn.Module, size: tuple[int, int] = (224, 224), *,
                    device: str | torch.device = "cpu", name: str | None = None) -> FrameFootprint:
    """Measure a backbone (frames (N, 3, H, W) → features (N, C, h, w)) on one zero frame of ``size``: the bytes
    autograd saves for ∂features/∂pixels (distinct storages) and the largest module output. Cached per module."""
    key = (tuple(size), str(device))
    cached = _FOOTPRINTS.setdefault(backbone, {})
    if key in cached:
        return cached[key]
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    largest = [0]

    def on_output(_module, _inputs, out) -> None:
        if isinstance(out, torch.Tensor):
            largest[0] = max(largest[0], out.numel() * out.element_size())

    hooks = [m.register_forward_hook(on_output) for m in backbone.modules() if not list(m.children())]
    was_training = backbone.training
    try:
        backbone.eval()
        frame = torch.zeros(1, 3, *size, device=device, requires_grad=True)
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = backbone(frame)
        storages.pop(frame.untyped_storage().data_ptr(), None)  # the input is the clip's, counted there
        weights = sum(t.numel() * t.element_size() for t in [*backbone.parameters(), *backbone.buffers()])
        weight_ptrs = {t.untyped_storage().data_ptr() for t in [*backbone.parameters(), *backbone.buffers()]}
        saved = sum(n for ptr, n in storages.items() if ptr not in weight_ptrs)
        fp = FrameFootprint(name=str(name or getattr(backbone, "name", type(backbone).__name__)),
                            size=(int(size[0]), int(size[1])),
                            saved=saved, largest_activation=largest[0],
                            features=out.numel() * out.element_size(), weights=weights)
    finally:
        for h in hooks:
            h.remove()
        backbone.train(was_training)
    cached[key] = fp
    return fp


def video_memory(footprint: FrameFootprint, *, seconds: int, chunk: int, match_size: tuple[int, int] = (640, 360)
                 ) -> MemoryEstimate:
    """Estimate the bytes scoring one clip of ``seconds`` frames (1 fps) adds, with ``chunk`` frames per backbone
    pass; ``match_size`` (w, h) is the frames product matching reads (capped at clip.match_max_width)."""
    if seconds < 1 or chunk < 1:
        raise ValueError(f"seconds and chunk must be at least 1, got {seconds} and {chunk}")
    h, w = footprint.size
    return MemoryEstimate(
        seconds=seconds, chunk=chunk,
        chunk_graph=min(chunk, seconds) * footprint.graph_per_frame,
        clip=seconds * _CLIP_COPIES * 3 * h * w * 4,
        features=seconds * 2 * footprint.features,
        match_frames=seconds * match_size[0] * match_size[1] * 3,
    )


def chunk_for_budget(footprint: FrameFootprint, budget_bytes: int, *, seconds: int, max_chunk: int = 64,
                     match_size: tuple[int, int] = (640, 360)) -> int:
    """The largest chunk (1 … min(max_chunk, seconds)) whose :func:`video_memory` fits ``budget_bytes``; 1 when
    even that does not fit (the caller reports it)."""
    best = 1
    for k in range(1, min(max_chunk, seconds) + 1):
        if video_memory(footprint, seconds=seconds, chunk=k, match_size=match_size).total > budget_bytes:
            break
        best = k
    return best


def worker_memory(footprint: FrameFootprint, *, seconds: int, chunk: int, prefetch: int = 1,
                  match_size: tuple[int, int] = (640, 360)) -> int:
    """Bytes one scoring task needs: the worker's base, the model's weights, one video being scored and
    ``prefetch`` decoded videos waiting (their frames only)."""
    one = video_memory(footprint, seconds=seconds, chunk=chunk, match_size=match_size)
    waiting = prefetch * seconds * (3 * footprint.size[0] * footprint.size[1] + match_size[0] * match_size[1] * 3)
    return WORKER_BASE_BYTES + footprint.weights + one.total + waiting


_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "m": 2**20, "mb": 2**20, "g": 2**30, "gb": 2**30,
          "t": 2**40, "tb": 2**40}


def parse_size(text: str) -> int:
    """A JVM/Spark memory string ('16g', '512m', '4096', '1.5g') → bytes; a bare number is MiB, as in Spark."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?b?)\s*", str(text).lower())
    if not m:
        raise ValueError(f"not a memory size: {text!r} (use e.g. 512m, 16g)")
    number, unit = float(m.group(1)), m.group(2)
    return int(number * (_UNITS[unit] if unit else 2**20))


def format_size(n: int) -> str:
    """Bytes → '1.4 GB' / '380 MB' (binary units)."""
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"
