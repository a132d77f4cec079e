"""Engagement heatmap: which pixels drive the model's engagement prediction, one call shape for all methods.

    clip (S, 3, H, W) float32 RGB in [0, 1]
      ├─ 'vanilla' (paper): Captum Saliency on the whole clip at once, input (1, S, 3, H, W):
      │      g[s, c, h, w] = |∂ŷ/∂x[s, c, h, w]|  ─► max over RGB ─► (S, H, W)
      ├─ 'smoothgrad' (ours, optional): Captum NoiseTunnel(Saliency), mean of |∂ŷ/∂x| over noisy copies
      │      x + N(0, (stdev·(max x − min x))²)
      └─ 'spectral_residual' (the paper's unsupervised baseline, no model): OpenCV static saliency per frame
    ─► min-max scaled over the whole video (not per frame), as in the paper ─► heatmap (S, H, W) in [0, 1]

THE MODEL CONTRACT: a ``torch.nn.Module`` whose forward takes clips (B, S, 3, H, W) float32 RGB in [0, 1]
(it normalises internally) and returns (B,) predicted engagement (a (B, 1) output is accepted).

A model that also has ``backbone`` (frames (N, 3, H, W) → features (N, C, h, w), each frame on its own: eval
mode) and ``head`` (features (B, S, C, h, w) → (B,)), with ``model(x) == head(backbone(frames of x))`` — the
engagement network — gets the same gradient with memory bounded by a chunk of frames, not the clip. Captum's
Saliency runs as before; only its gradient function is replaced (Captum's own extension point), so SmoothGrad's
NoiseTunnel wraps it unchanged::

    features without a graph ─► f (B, S, C, h, w) ─► head with grad on f ─► ŷ, ∂ŷ/∂f
    for each chunk of k frames: backbone again with grad ─► backward of ∂ŷ/∂f[chunk] ─► ∂ŷ/∂x[chunk]

(the last chunk keeps its graph from the first pass, so a clip of ≤ k frames runs the backbone once).
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, cast

import cv2
import numpy as np
import torch

from pe_udfs.errors import DeviceUnavailable, ModelError
from pe_udfs.settings import SaliencySettings

__all__ = ["HeatmapResult", "engagement_heatmap", "resolve_device", "minmax_scale", "frame_chunk_for",
           "CPU_FRAME_CHUNK"]

#: Frames per backbone pass on the CPU when ``frame_chunk`` is 0 (auto): MobileNetV2 ~0.4 GB, Xception ~0.9 GB.
CPU_FRAME_CHUNK = 8
#: Share of the GPU's free memory the chunk's graph may take when sized automatically.
GPU_MEMORY_SHARE = 0.5


@dataclass
class HeatmapResult:
    """heatmap: (S, H, W) float32 in [0, 1], min-max scaled over the whole video; prediction: the model's
    predicted engagement for the clip (None for 'spectral_residual'); raw_min/raw_max: the range of the
    unscaled map (raw = heatmap·(raw_max − raw_min) + raw_min), so maps of different videos can be put on
    one scale; method: the saliency method used."""

    heatmap: np.ndarray
    prediction: float | None
    raw_min: float
    raw_max: float
    method: str


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' / None → CUDA when available, else CPU; anything else as given, but 'cuda' without a GPU is a
    :class:`DeviceUnavailable` error (never a silent fall-back, never a crash deep inside torch)."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable("no_cuda", f"device '{device}' was requested but no CUDA device is available; "
                                "use device: auto or cpu")
    return torch.device(device)


def minmax_scale(raw: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Scale an array to [0, 1] over all of its elements; a constant array becomes all zeros.
    Returns (scaled float32, min, max)."""
    lo, hi = float(raw.min()) if raw.size else 0.0, float(raw.max()) if raw.size else 0.0
    if hi > lo:
        scaled = (raw.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo)
    else:
        scaled = np.zeros(raw.shape, np.float32)
    return scaled, lo, hi


def engagement_heatmap(model: torch.nn.Module | None, clip: torch.Tensor, settings: SaliencySettings, *,
                       device: str | torch.device | None = "cpu") -> HeatmapResult:
    """Engagement heatmap of one clip (S, 3, H, W) float32 in [0, 1] → :class:`HeatmapResult`.

    ``device`` ('cpu', 'cuda', 'auto') is where model and clip run; the model is put in eval mode for the
    call and its previous mode restored. ``settings.frame_chunk`` / ``settings.precision`` choose the frames
    per backbone pass (:func:`frame_chunk_for`) and float32 or bfloat16 autocast. Raises :class:`ModelError`
    ('bad_clip', 'model_failed', 'bad_output', 'non_finite')."""
    if clip.ndim != 4 or clip.shape[1] != 3 or clip.shape[0] < 1:
        raise ModelError("bad_clip", f"clip must be (S, 3, H, W) with S ≥ 1, got {tuple(clip.shape)}")
    if settings.method == "spectral_residual":
        return _spectral_residual(clip)
    if model is None:
        raise ModelError("model_failed", f"saliency method '{settings.method}' needs an engagement model")
    dev = resolve_device(device)
    was_training = model.training
    model.eval()
    try:
        model.to(dev)
        x = clip.to(dev, dtype=torch.float32).unsqueeze(0).detach().requires_grad_(True)  # (1, S, 3, H, W)
        saliency, prediction_of = _saliency(model, x, settings, dev)
        if settings.method == "vanilla":
            grads = saliency.attribute(x, abs=True)
            prediction = _check_prediction(prediction_of(None))
        else:
            grads = _smoothgrad(saliency, x, settings)
            prediction = _check_prediction(prediction_of(x))  # on the clean clip, not a noisy copy
    except ModelError:
        raise
    except (RuntimeError, ValueError, TypeError) as e:
        raise ModelError("model_failed", f"engagement model failed on a clip of shape {tuple(clip.shape)}: {e}") from e
    finally:
        model.train(was_training)
    raw = grads.amax(dim=2)[0]  # |grad| (1, S, 3, H, W) → max over RGB → (S, H, W)
    raw_np = raw.detach().to("cpu", torch.float32).numpy()
    if not np.all(np.isfinite(raw_np)):
        raise ModelError("non_finite", "the engagement model's gradient has NaN or infinite values")
    heatmap, lo, hi = minmax_scale(raw_np)
    return HeatmapResult(heatmap=heatmap, prediction=prediction, raw_min=lo, raw_max=hi, method=settings.method)


def _check_prediction(out: torch.Tensor) -> float:
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError("bad_output", f"the engagement model must return (B,) for B clips; got {shape} for B = 1")
    value = float(out.detach().reshape(-1)[0].item())
    if not np.isfinite(value):
        raise ModelError("non_finite", f"the engagement model predicted {value}")
    return value


def _scalar_output(out, b: int) -> torch.Tensor:
    """A model's (B,) or (B, 1) output as (B,); anything else is a 'bad_output' ModelError."""
    if isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if not isinstance(out, torch.Tensor) or out.ndim != 1 or out.shape[0] != b:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError("bad_output", f"the engagement model must return (B,) for input (B, S, 3, H, W) "
                                       f"with B = {b}; got {shape}")
    return out.float()


def _scalar_forward(model: torch.nn.Module, precision: str = "float32", device: torch.device | None = None):
    """Forward returning (B,) float32 whatever the model's (B,) or (B, 1) output, for Captum."""
    def forward(x: torch.Tensor) -> torch.Tensor:
        with _autocast(device or x.device, precision):
            out = model(x)
        return _scalar_output(out, x.shape[0])
    return forward


def _autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bfloat16" else nullcontext()


def _saliency(model: torch.nn.Module, x: torch.Tensor, settings: SaliencySettings, device: torch.device):
    """Captum Saliency for ``model`` → (saliency, prediction_of): ``prediction_of(None)`` is the prediction from
    the pass Captum differentiated (vanilla), ``prediction_of(x)`` a fresh no-grad forward of ``x``."""
    from captum.attr import Saliency

    forward = _scalar_forward(model, settings.precision, device)
    captured: list[torch.Tensor] = []
    if _has_backbone_and_head(model):
        saliency = Saliency(forward)
        chunk = frame_chunk_for(model, x.shape[1], settings, device, size=(int(x.shape[-2]), int(x.shape[-1])))
        saliency.gradient_func = _chunked_gradients(model, chunk, settings.precision, device, captured)
    else:
        def forward_and_keep(inp: torch.Tensor) -> torch.Tensor:
            out = forward(inp)
            captured.append(out.detach())  # the prediction from the very pass Captum differentiates
            return out

        saliency = Saliency(forward_and_keep)

    def prediction_of(clean: torch.Tensor | None) -> torch.Tensor:
        if clean is None:
            return captured[0]
        with torch.no_grad():
            return forward(clean)

    return saliency, prediction_of


def _smoothgrad(saliency, x: torch.Tensor, settings: SaliencySettings) -> torch.Tensor:
    from captum.attr import NoiseTunnel

    # Captum's stdevs is absolute; SmoothGrad's σ is a share of the input range ([0, 1] here → σ = stdev)
    sigma = settings.smoothgrad_stdev * float((x.detach().max() - x.detach().min()).item() or 1.0)
    return NoiseTunnel(saliency).attribute(x, nt_type="smoothgrad", nt_samples=settings.smoothgrad_samples,
                                           nt_samples_batch_size=1, stdevs=sigma, abs=True)


# ------------------------------------------------------------------------ chunked gradients (backbone + head)
def _has_backbone_and_head(model: torch.nn.Module) -> bool:
    return isinstance(getattr(model, "backbone", None), torch.nn.Module) and \
        isinstance(getattr(model, "head", None), torch.nn.Module)


def frame_chunk_for(model: torch.nn.Module, seconds: int, settings: SaliencySettings, device: torch.device, *,
                    size: tuple[int, int] = (224, 224), memory_share: float = 1.0) -> int:
    """Frames per backbone pass: ``settings.frame_chunk`` when set; else on CUDA the largest chunk whose
    estimated memory (pe_udfs.memory) fits :data:`GPU_MEMORY_SHARE` of the GPU memory this process may use
    (the free memory, at most ``memory_share`` of the total: a Spark task's GPU amount), on the CPU
    :data:`CPU_FRAME_CHUNK`."""
    if settings.frame_chunk:
        return settings.frame_chunk
    if device.type != "cuda":
        return CPU_FRAME_CHUNK
    from pe_udfs.memory import chunk_for_budget, frame_footprint

    free, total = torch.cuda.mem_get_info(device)
    budget = GPU_MEMORY_SHARE * min(free, total * memory_share)
    # measured in float32: under bf16 autocast activations take fewer bytes, so the chunk errs on the safe side
    footprint = frame_footprint(cast(torch.nn.Module, model.backbone), size, device=device)
    return chunk_for_budget(footprint, int(budget), seconds=seconds, match_size=(0, 0))


def _chunked_gradients(model: torch.nn.Module, chunk: int, precision: str, device: torch.device,
                       captured: list[torch.Tensor]) -> Callable:
    """A Captum ``gradient_func`` (forward_fn, inputs, target, args) → (∂ŷ/∂x,) computed chunk by chunk through
    ``model.backbone`` and ``model.head``; appends each call's prediction (B,) to ``captured``."""
    backbone, head = model.backbone, model.head

    def gradient_func(_forward_fn, inputs, target_ind=None, additional_forward_args=None):
        (x,) = inputs  # (B, S, 3, H, W)
        b, s = x.shape[:2]
        frames = x.detach().reshape(b * s, *x.shape[2:])
        starts = list(range(0, b * s, chunk))
        last = frames[starts[-1]:].detach().requires_grad_(True)
        with torch.enable_grad(), _autocast(device, precision):
            with torch.no_grad():
                early = [backbone(frames[i:i + chunk]) for i in starts[:-1]]
            last_feats = backbone(last)  # its graph stays until the first backward below
        feats = torch.cat([*early, last_feats.detach()]).float()
        feats = feats.reshape(b, s, *feats.shape[1:]).requires_grad_(True)
        del early
        with torch.enable_grad():
            y = _scalar_output(head(feats), b)
            (g_feats,) = torch.autograd.grad(y.sum(), feats)  # clips are independent: Σ over B = each clip's ŷ
        captured.append(y.detach())
        g_feats = g_feats.reshape(b * s, *g_feats.shape[2:])
        grads = torch.empty_like(frames)
        (grads[starts[-1]:],) = torch.autograd.grad(last_feats, last, g_feats[starts[-1]:].to(last_feats.dtype))
        del last_feats, last
        for i in starts[:-1]:
            part = frames[i:i + chunk].detach().requires_grad_(True)
            with torch.enable_grad(), _autocast(device, precision):
                f = backbone(part)
            (grads[i:i + chunk],) = torch.autograd.grad(f, part, g_feats[i:i + chunk].to(f.dtype))
            del f, part
        return (grads.reshape(x.shape),)

    return gradient_func


def _spectral_residual(clip: torch.Tensor) -> HeatmapResult:
    """OpenCV's static spectral-residual saliency (Hou & Zhang 2007) per frame; no model, no prediction."""
    frames = (clip.detach().to("cpu", torch.float32).clamp(0, 1) * 255.0).round().to(torch.uint8)
    frames_np = frames.permute(0, 2, 3, 1).numpy()  # (S, H, W, 3) RGB
    detector = cv2.saliency.StaticSaliencySpectralResidual_create()
    maps = []
    for rgb in frames_np:
        ok, sal = detector.computeSaliency(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            sal = np.zeros(rgb.shape[:2], np.float32)
        maps.append(np.asarray(sal, np.float32))
    heatmap, lo, hi = minmax_scale(np.stack(maps))
    return HeatmapResult(heatmap=heatmap, prediction=None, raw_min=lo, raw_max=hi, method="spectral_residual")
