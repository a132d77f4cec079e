"""pe_udfs.saliency on tiny models whose input gradient is known in closed form."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pe_udfs.errors import ModelError
from pe_udfs.saliency import engagement_heatmap, minmax_scale
from pe_udfs.settings import SaliencySettings

VANILLA = SaliencySettings()


class Linear(nn.Module):
    """y = Σ_s Σ_chw w·x[s]  →  ∂y/∂x[s] = w for every frame."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):  # (B, S, 3, H, W) → (B,)
        return (x * self.w).sum(dim=(1, 2, 3, 4))


class SquaredPerFrame(nn.Module):
    """y = Σ_s (w·x[s])²  →  ∂y/∂x[s] = 2 (w·x[s]) w: each frame's gradient depends on that frame only."""

    def __init__(self, w, chunk=None):
        super().__init__()
        self.w, self.chunk = nn.Parameter(w), chunk

    def forward(self, x):
        b, s = x.shape[:2]
        frames = x.reshape(b * s, *x.shape[2:])
        parts = torch.split(frames, self.chunk or b * s)
        a = torch.cat([(f * self.w).sum(dim=(1, 2, 3)) for f in parts]).reshape(b, s)
        return (a ** 2).sum(dim=1)


class MaxOverTime(nn.Module):
    """y = max_s (w·x[s])  →  the gradient is w on the arg-max frame and 0 on every other frame."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x * self.w).sum(dim=(2, 3, 4)).amax(dim=1)


def raw(result):
    return result.heatmap * (result.raw_max - result.raw_min) + result.raw_min


@pytest.fixture
def w():
    return torch.randn(3, 8, 10, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def clip():
    return torch.rand(5, 3, 8, 10, generator=torch.Generator().manual_seed(1))


def test_vanilla_gradient_of_a_linear_model_is_abs_w_max_over_rgb(w, clip):
    r = engagement_heatmap(Linear(w), clip, VANILLA)
    expected = w.abs().amax(dim=0).numpy()
    assert r.heatmap.shape == (5, 8, 10) and r.heatmap.dtype == np.float32
    assert np.allclose(raw(r), np.broadcast_to(expected, (5, 8, 10)), atol=1e-6)
    assert r.heatmap.min() == 0.0 and r.heatmap.max() == pytest.approx(1.0)
    assert r.prediction == pytest.approx(float((clip * w).sum()), rel=1e-5)
    assert r.method == "vanilla"


def test_gradient_depends_on_each_frame_as_in_closed_form(w, clip):
    r = engagement_heatmap(SquaredPerFrame(w), clip, VANILLA)
    a = (clip * w).sum(dim=(1, 2, 3))  # (S,)
    expected = (2 * a.abs()[:, None, None] * w.abs().amax(dim=0)[None]).numpy()
    assert np.allclose(raw(r), expected, rtol=1e-5)
    # min-max over the whole video, not per frame: the frame with the largest |a| holds the maximum
    assert np.isclose(r.heatmap[int(a.abs().argmax())].max(), 1.0)
    assert r.heatmap[int(a.abs().argmin())].max() < 1.0


def test_whole_clip_at_once_sees_temporal_interactions(w, clip):
    r = engagement_heatmap(MaxOverTime(w), clip, VANILLA)
    best = int((clip * w).sum(dim=(1, 2, 3)).argmax())
    assert r.heatmap[best].max() == pytest.approx(1.0)
    assert np.all(np.delete(r.heatmap, best, axis=0) == 0.0)


def test_length_and_chunking_invariance(w, clip):
    """A per-frame model's raw gradient for a frame does not change with the clip's length or with how the
    model batches frames internally."""
    full = raw(engagement_heatmap(SquaredPerFrame(w), clip, VANILLA))
    prefix = raw(engagement_heatmap(SquaredPerFrame(w), clip[:2], VANILLA))
    chunked = raw(engagement_heatmap(SquaredPerFrame(w, chunk=2), clip, VANILLA))
    assert np.allclose(full[:2], prefix, rtol=1e-5)
    assert np.allclose(full, chunked, rtol=1e-5)


def test_smoothgrad_of_a_linear_model_equals_vanilla(w, clip):
    settings = SaliencySettings(method="smoothgrad", smoothgrad_samples=3)
    r = engagement_heatmap(Linear(w), clip, settings)
    assert np.allclose(raw(r), w.abs().amax(dim=0).numpy()[None], atol=1e-6)
    assert r.prediction == pytest.approx(float((clip * w).sum()), rel=1e-5)  # clean clip, not a noisy one


def test_smoothgrad_averages_gradients_of_noisy_copies(w, clip):
    torch.manual_seed(0)
    settings = SaliencySettings(method="smoothgrad", smoothgrad_samples=4, smoothgrad_stdev=0.5)
    smooth = raw(engagement_heatmap(SquaredPerFrame(w), clip, settings))
    vanilla = raw(engagement_heatmap(SquaredPerFrame(w), clip, VANILLA))
    assert smooth.shape == vanilla.shape and not np.allclose(smooth, vanilla)


def test_spectral_residual_needs_no_model_and_finds_a_blob():
    clip = torch.full((2, 3, 64, 64), 0.5)
    clip[:, :, 40:48, 8:16] = 1.0  # one bright square on a flat background
    r = engagement_heatmap(None, clip, SaliencySettings(method="spectral_residual"))
    assert r.prediction is None and r.heatmap.shape == (2, 64, 64)
    assert r.heatmap.min() == 0.0 and r.heatmap.max() == pytest.approx(1.0)
    y, x = np.unravel_index(int(r.heatmap[0].argmax()), (64, 64))
    assert 32 <= y <= 56 and 0 <= x <= 24


def test_model_output_of_shape_b_by_1_is_accepted(w, clip):
    class Column(Linear):
        def forward(self, x):
            return super().forward(x)[:, None]

    r = engagement_heatmap(Column(w), clip, VANILLA)
    assert np.allclose(raw(r), w.abs().amax(dim=0).numpy()[None], atol=1e-6)


def test_model_mode_is_restored(w, clip):
    m = Linear(w).train()
    engagement_heatmap(m, clip, VANILLA)
    assert m.training


@pytest.mark.parametrize("model,reason", [
    (lambda w: nn.Sequential(nn.Flatten(1)), "bad_output"),  # returns (B, S·3·H·W)
    (lambda w: _Nan(), "non_finite"),
    (lambda w: nn.Conv2d(3, 1, 3), "model_failed"),           # 2-D layer on a 5-D clip
])
def test_model_failures_are_model_errors(w, clip, model, reason):
    with pytest.raises(ModelError) as e:
        engagement_heatmap(model(w), clip, VANILLA)
    assert e.value.stage == "model" and e.value.reason == reason


class _Nan(nn.Module):
    def forward(self, x):
        return x.sum(dim=(1, 2, 3, 4)) * float("nan")


def test_bad_clip_and_missing_model(w):
    with pytest.raises(ModelError) as e:
        engagement_heatmap(Linear(w), torch.rand(3, 8, 10), VANILLA)
    assert e.value.reason == "bad_clip"
    with pytest.raises(ModelError):
        engagement_heatmap(None, torch.rand(1, 3, 8, 10), VANILLA)


def test_minmax_of_a_constant_map_is_zero():
    scaled, lo, hi = minmax_scale(np.full((2, 3, 3), 4.0))
    assert np.all(scaled == 0) and lo == hi == 4.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(w, clip):
    cpu = engagement_heatmap(SquaredPerFrame(w), clip, VANILLA, device="cpu")
    gpu = engagement_heatmap(SquaredPerFrame(w), clip, VANILLA, device="cuda")
    assert np.allclose(cpu.heatmap, gpu.heatmap, atol=1e-4)
    assert gpu.prediction == pytest.approx(cpu.prediction, rel=1e-4)
