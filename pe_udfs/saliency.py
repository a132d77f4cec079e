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
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from pe_udfs.errors import ModelError
from pe_udfs.settings import SaliencySettings

__all__ = ["HeatmapResult", "engagement_heatmap", "resolve_device", "minmax_scale"]


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


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto' / None → CUDA when available, else CPU; anything else as given."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
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
    call and its previous mode restored. Raises :class:`ModelError` ('bad_clip', 'model_failed',
    'bad_output', 'non_finite')."""
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
        if settings.method == "vanilla":
            grads, prediction = _vanilla(model, x)
        else:
            grads, prediction = _smoothgrad(model, x, settings)
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


def _scalar_forward(model: torch.nn.Module):
    """Forward returning (B,) whatever the model's (B,) or (B, 1) output, for Captum."""
    def forward(x: torch.Tensor) -> torch.Tensor:
        out = model(x)
        if isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if not isinstance(out, torch.Tensor) or out.ndim != 1 or out.shape[0] != x.shape[0]:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ModelError("bad_output", f"the engagement model must return (B,) for input (B, S, 3, H, W) "
                                           f"with B = {x.shape[0]}; got {shape}")
        return out
    return forward


def _vanilla(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    from captum.attr import Saliency

    captured: list[torch.Tensor] = []
    forward = _scalar_forward(model)

    def forward_and_keep(inp: torch.Tensor) -> torch.Tensor:
        out = forward(inp)
        captured.append(out.detach())  # the prediction from the very pass Captum differentiates
        return out

    grads = Saliency(forward_and_keep).attribute(x, abs=True)
    return grads, _check_prediction(captured[0])


def _smoothgrad(model: torch.nn.Module, x: torch.Tensor, settings: SaliencySettings) -> tuple[torch.Tensor, float]:
    from captum.attr import NoiseTunnel, Saliency

    forward = _scalar_forward(model)
    # Captum's stdevs is absolute; SmoothGrad's σ is a share of the input range ([0, 1] here → σ = stdev)
    sigma = settings.smoothgrad_stdev * float((x.detach().max() - x.detach().min()).item() or 1.0)
    grads = NoiseTunnel(Saliency(forward)).attribute(
        x, nt_type="smoothgrad", nt_samples=settings.smoothgrad_samples, nt_samples_batch_size=1,
        stdevs=sigma, abs=True)
    with torch.no_grad():
        prediction = _check_prediction(forward(x))  # on the clean clip, not a noisy copy
    return grads, prediction


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
