"""Engagement heatmap: which pixels drive the model's engagement prediction, one call shape for all methods.

Every method is a class behind one contract (``EngagementMapMethod.attribute``), registered by name in
``METHODS`` and chosen by ``saliency.method``; ``engagement_heatmap`` is the one entry point::

    clip (S, 3, H, W) float32 RGB in [0, 1]  [+ product masks (S, H, W) 0/1 for methods that need them]
      ├─ 'vanilla' (paper): Captum Saliency on the whole clip at once, input (1, S, 3, H, W):
      │      g[s, c, h, w] = |∂ŷ/∂x[s, c, h, w]|  ─► max over RGB ─► (S, H, W)
      ├─ 'smoothgrad': Captum NoiseTunnel(Saliency), mean of |∂ŷ/∂x| over noisy copies x + N(0, σ²)
      ├─ 'integrated_gradients': Captum IntegratedGradients from a black clip, |attribution|, max over RGB
      ├─ 'gradcam': Grad-CAM on the head's input grid: per second ReLU(Σ_c mean_hw(∂ŷ/∂f) · f), upsampled
      ├─ 'spectral_residual' (the paper's unsupervised baseline, no model): OpenCV static saliency per frame
      │   ─► gradient-type maps are min-max scaled over the whole video (not per frame), as in the paper
      ├─ 'density' (a model with a DensityHead): the head's own engagement density d (S, h, w), whose sum is
      │      the prediction, spread evenly over each cell's pixels (mass kept)
      └─ 'ablation' (a DensityHead + the product map): the density with, in each second, the mass the
             prediction loses when the product is removed from the frame (inpainted) placed on the product's
             pixels and the rest on the density outside it — so Σe·p / Σe is the share of predicted engagement
             the product causes
          ─► density-type maps are divided by their maximum (0 stays 0: shares of them are shares of the sum)
    ─► heatmap (S, H, W) in [0, 1]

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
from typing import Callable, ClassVar, cast

import cv2
import numpy as np
import torch

from pe_udfs.errors import DeviceUnavailable, ModelError
from pe_udfs.settings import SaliencySettings

__all__ = ["HeatmapResult", "engagement_heatmap", "resolve_device", "minmax_scale", "frame_chunk_for", "METHODS",
           "EngagementMapMethod", "register_method", "remove_product", "density_to_pixels",
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


class EngagementMapMethod:
    """One way to make an engagement map. ``attribute(model, clip, settings, device, product_masks)`` →
    (raw map (S, H, W) float32 ≥ 0, the model's prediction for the clip or None). ``scaling``: 'minmax' (gradient
    magnitudes: only their relative size means anything) or 'max' (densities: 0 means no engagement)."""

    name: ClassVar[str]
    needs_model: ClassVar[bool] = True
    needs_product_map: ClassVar[bool] = False
    needs_density_head: ClassVar[bool] = False
    scaling: ClassVar[str] = "minmax"

    def attribute(self, model: torch.nn.Module | None, clip: torch.Tensor, settings: SaliencySettings,
                  device: torch.device, product_masks: np.ndarray | None) -> tuple[torch.Tensor, float | None]:
        raise NotImplementedError


#: name → method, in the order the documentation lists them
METHODS: dict[str, EngagementMapMethod] = {}


def register_method(cls: type[EngagementMapMethod]) -> type[EngagementMapMethod]:
    METHODS[cls.name] = cls()
    return cls


def engagement_heatmap(model: torch.nn.Module | None, clip: torch.Tensor, settings: SaliencySettings, *,
                       device: str | torch.device | None = "cpu", product_masks: np.ndarray | None = None
                       ) -> HeatmapResult:
    """Engagement heatmap of one clip (S, 3, H, W) float32 in [0, 1] → :class:`HeatmapResult`.

    ``settings.method`` names a registered :class:`EngagementMapMethod`; ``product_masks`` (S, H, W) 0/1 is
    required by methods with ``needs_product_map``. ``device`` ('cpu', 'cuda', 'auto') is where model and clip
    run; the model is put in eval mode for the call and its previous mode restored. ``settings.frame_chunk`` /
    ``settings.precision`` choose the frames per backbone pass (:func:`frame_chunk_for`) and float32 or bfloat16
    autocast. Raises :class:`ModelError` ('bad_clip', 'model_failed', 'bad_output', 'non_finite')."""
    if clip.ndim != 4 or clip.shape[1] != 3 or clip.shape[0] < 1:
        raise ModelError("bad_clip", f"clip must be (S, 3, H, W) with S ≥ 1, got {tuple(clip.shape)}")
    method = METHODS.get(settings.method)
    if method is None:
        raise ModelError("model_failed", f"unknown saliency method {settings.method!r}; known: {', '.join(METHODS)}")
    if method.needs_model and model is None:
        raise ModelError("model_failed", f"saliency method '{settings.method}' needs an engagement model")
    if method.needs_density_head and not callable(getattr(getattr(model, "head", None), "density", None)):
        raise ModelError("model_failed", f"saliency method '{settings.method}' needs a model with a density head "
                                         "(model.head: density); this model has another head")
    if method.needs_product_map:
        if product_masks is None or product_masks.shape != (clip.shape[0], *clip.shape[2:]):
            shape = None if product_masks is None else product_masks.shape
            raise ModelError("bad_clip", f"saliency method '{settings.method}' needs product masks "
                                         f"{(clip.shape[0], *clip.shape[2:])}, got {shape}")
    dev = resolve_device(device)
    was_training = model.training if model is not None else False
    try:
        if model is not None:
            model.eval()
            model.to(dev)
        raw, prediction = method.attribute(model, clip, settings, dev, product_masks)
    except ModelError:
        raise
    except (RuntimeError, ValueError, TypeError) as e:
        raise ModelError("model_failed", f"engagement model failed on a clip of shape {tuple(clip.shape)}: {e}") from e
    finally:
        if model is not None:
            model.train(was_training)
    raw_np = raw.detach().to("cpu", torch.float32).numpy()
    if not np.all(np.isfinite(raw_np)):
        raise ModelError("non_finite", "the engagement model's map has NaN or infinite values")
    if method.scaling == "max":
        hi = float(raw_np.max()) if raw_np.size else 0.0
        heatmap = (raw_np / np.float32(hi)).astype(np.float32) if hi > 0 else np.zeros(raw_np.shape, np.float32)
        lo = 0.0
    else:
        heatmap, lo, hi = minmax_scale(raw_np)
    return HeatmapResult(heatmap=heatmap, prediction=prediction, raw_min=lo, raw_max=hi, method=settings.method)


def _as_batch(clip: torch.Tensor, device: torch.device) -> torch.Tensor:
    return clip.to(device, dtype=torch.float32).unsqueeze(0).detach().requires_grad_(True)  # (1, S, 3, H, W)


@register_method
class Vanilla(EngagementMapMethod):
    """The paper's vanilla gradients (Simonyan et al. 2013): |∂ŷ/∂x|, max over RGB."""

    name = "vanilla"

    def attribute(self, model, clip, settings, device, product_masks):
        x = _as_batch(clip, device)
        saliency, prediction_of = _saliency(model, x, settings, device)
        grads = saliency.attribute(x, abs=True)
        return grads.amax(dim=2)[0], _check_prediction(prediction_of(None))


@register_method
class SmoothGrad(EngagementMapMethod):
    """SmoothGrad (Smilkov et al. 2017): Captum's NoiseTunnel around the vanilla gradient."""

    name = "smoothgrad"

    def attribute(self, model, clip, settings, device, product_masks):
        x = _as_batch(clip, device)
        saliency, prediction_of = _saliency(model, x, settings, device)
        grads = _smoothgrad(saliency, x, settings)
        return grads.amax(dim=2)[0], _check_prediction(prediction_of(x))  # on the clean clip, not a noisy copy


@register_method
class IntegratedGradients(EngagementMapMethod):
    """Integrated Gradients (Sundararajan et al. 2017) from a black clip, ``settings.ig_steps`` steps, |·|."""

    name = "integrated_gradients"

    def attribute(self, model, clip, settings, device, product_masks):
        from captum.attr import IntegratedGradients as CaptumIG

        x = _as_batch(clip, device)
        saliency, prediction_of = _saliency(model, x, settings, device)
        ig = CaptumIG(saliency.forward_func)
        ig.gradient_func = saliency.gradient_func
        attr = ig.attribute(x, baselines=torch.zeros_like(x), n_steps=settings.ig_steps, internal_batch_size=1)
        return attr.abs().amax(dim=2)[0], _check_prediction(prediction_of(x))


def _features_and_head_gradient(model: torch.nn.Module, clip: torch.Tensor, settings: SaliencySettings,
                                device: torch.device) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Backbone features f (S, C, h, w) of every frame (no graph), ∂ŷ/∂f and ŷ."""
    head = cast(torch.nn.Module, model.head)
    feats = _backbone_features(model, clip, settings, device)
    f = feats[None].requires_grad_(True)
    with torch.enable_grad():
        y = _scalar_output(head(f), 1)
        (g,) = torch.autograd.grad(y.sum(), f)
    return feats, g[0], _check_prediction(y.detach())


def _upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(S, h, w) → (S, H, W) bilinear."""
    return torch.nn.functional.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


@register_method
class GradCAM(EngagementMapMethod):
    """Grad-CAM (Selvaraju et al. 2017) on the head's input grid: per second, channels weighted by their mean
    gradient, ReLU, bilinear to the frame."""

    name = "gradcam"

    def attribute(self, model, clip, settings, device, product_masks):
        if not _has_backbone_and_head(model):
            raise ModelError("model_failed", "gradcam needs a model with a backbone and a head")
        feats, g, prediction = _features_and_head_gradient(model, clip, settings, device)
        cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * feats).sum(dim=1))  # (S, h, w)
        return _upsample(cam, (int(clip.shape[-2]), int(clip.shape[-1]))), prediction


@register_method
class SpectralResidualMap(EngagementMapMethod):
    """OpenCV's static spectral-residual saliency (Hou & Zhang 2007) per frame; no model, no prediction."""

    name = "spectral_residual"
    needs_model = False

    def attribute(self, model, clip, settings, device, product_masks):
        return torch.from_numpy(_spectral_residual_raw(clip)), None


def density_to_pixels(density: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A density per cell (S, h, w) spread evenly over each cell's pixels (S, H, W), so every second keeps its
    mass (Σ over pixels = Σ over cells) and a region's share of it is the cells' mass it covers (a smooth
    bilinear spread would move mass onto neighbouring cells)."""
    up = torch.nn.functional.interpolate(density[:, None], size=size, mode="nearest")[:, 0].clamp_min(0)
    mass, up_mass = density.sum(dim=(1, 2)), up.sum(dim=(1, 2))
    return up * torch.where(up_mass > 0, mass / up_mass.clamp_min(1e-30), torch.zeros_like(mass))[:, None, None]


def _backbone_features(model: torch.nn.Module, frames: torch.Tensor, settings: SaliencySettings,
                       device: torch.device) -> torch.Tensor:
    chunk = frame_chunk_for(model, frames.shape[0], settings, device,
                            size=(int(frames.shape[-2]), int(frames.shape[-1])))
    backbone = cast(torch.nn.Module, model.backbone)
    with torch.no_grad(), _autocast(device, settings.precision):
        return torch.cat([backbone(part.to(device)) for part in torch.split(frames, chunk)]).float()


@register_method
class Density(EngagementMapMethod):
    """The density head's own map: where its predicted engagement is."""

    name = "density"
    needs_density_head = True
    scaling = "max"

    def attribute(self, model, clip, settings, device, product_masks):
        feats = _backbone_features(model, clip, settings, device)
        with torch.no_grad():
            d = model.head.density(feats[None])[0]
            prediction = _check_prediction(model.head(feats[None]))
        return density_to_pixels(d, (int(clip.shape[-2]), int(clip.shape[-1]))), prediction


def remove_product(frames: np.ndarray, masks: np.ndarray, *, radius: int = 5, grow: int = 3) -> np.ndarray:
    """The frames with the product region filled from its surroundings: (S, H, W, 3) uint8 RGB, masks (S, H, W)
    0/1 → a copy where every second with a mask is inpainted (OpenCV Telea, ``radius`` px) over the mask grown by
    ``grow`` px (the product's anti-aliased edge goes too)."""
    out = frames.copy()
    kernel = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
    for s in np.flatnonzero(masks.reshape(len(masks), -1).any(axis=1)):
        region = cv2.dilate((masks[s] > 0).astype(np.uint8) * 255, kernel)
        out[s] = cv2.inpaint(np.ascontiguousarray(frames[s]), region, radius, cv2.INPAINT_TELEA)
    return out


@register_method
class ProductAblation(EngagementMapMethod):
    """The share of predicted engagement the product causes: per second, the density's mass minus its mass
    with the product removed from the frames (:func:`remove_product`; the head sees the whole clip again, so a
    product's motion counts too), placed on the product's pixels; the rest of the second's mass on the density
    outside the product."""

    name = "ablation"
    needs_density_head = True
    needs_product_map = True
    scaling = "max"

    def attribute(self, model, clip, settings, device, product_masks):
        size = (int(clip.shape[-2]), int(clip.shape[-1]))
        feats = _backbone_features(model, clip, settings, device)
        has_product = np.flatnonzero(product_masks.reshape(len(product_masks), -1).any(axis=1))
        frames = (clip.permute(0, 2, 3, 1).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        ablated = feats.clone()
        if len(has_product):
            removed = remove_product(frames[has_product], product_masks[has_product])
            x = torch.from_numpy(removed).permute(0, 3, 1, 2).float().div_(255.0)
            ablated[torch.from_numpy(has_product)] = _backbone_features(model, x, settings, device)
        with torch.no_grad():
            d = model.head.density(feats[None])[0]
            d_removed = model.head.density(ablated[None])[0]
            prediction = _check_prediction(model.head(feats[None]))
        mass = d.sum(dim=(1, 2))
        caused = (mass - d_removed.sum(dim=(1, 2))).clamp(min=0)
        caused = torch.minimum(caused, mass)
        pixels = density_to_pixels(d, size)
        p = torch.from_numpy(product_masks.astype(np.float32))
        outside = pixels * (1 - p)
        outside_mass = outside.sum(dim=(1, 2))
        rest = mass - caused
        # a second whose density lies wholly on the product keeps the rest uniformly outside it
        fallback = (1 - p) / (1 - p).sum(dim=(1, 2), keepdim=True).clamp_min(1.0)
        outside = torch.where((outside_mass > 0)[:, None, None], outside / outside_mass.clamp_min(1e-30)[:, None, None],
                              fallback) * rest[:, None, None]
        on = p / p.sum(dim=(1, 2), keepdim=True).clamp_min(1.0) * caused[:, None, None]
        return outside + on, prediction


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


def _spectral_residual_raw(clip: torch.Tensor) -> np.ndarray:
    """OpenCV's static spectral-residual saliency (Hou & Zhang 2007) per frame → (S, H, W) float32."""
    frames = (clip.detach().to("cpu", torch.float32).clamp(0, 1) * 255.0).round().to(torch.uint8)
    frames_np = frames.permute(0, 2, 3, 1).numpy()  # (S, H, W, 3) RGB
    detector = cv2.saliency.StaticSaliencySpectralResidual_create()
    maps = []
    for rgb in frames_np:
        ok, sal = detector.computeSaliency(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            sal = np.zeros(rgb.shape[:2], np.float32)
        maps.append(np.asarray(sal, np.float32))
    return np.stack(maps)
