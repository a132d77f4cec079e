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


# ----------------------------------------------------------------- chunked gradients (backbone + head models)
def _engagement_net(backbone: str):
    from models.network import build_engagement_net
    from models.settings import ModelSettings

    torch.manual_seed(0)
    return build_engagement_net(ModelSettings(backbone=backbone)).eval()


def _natural_clip(s: int) -> torch.Tensor:
    """s frames (s, 3, 224, 224) from scikit-image's sample photos."""
    import cv2
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    frames = np.stack([cv2.resize(photos[i % 4], (224, 224), interpolation=cv2.INTER_AREA) for i in range(s)])
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


def _whole_clip_captum(net, clip, method="vanilla", **nt):
    """The reference: Captum on the whole clip through the network's own forward (one graph for all frames)."""
    from captum.attr import NoiseTunnel, Saliency

    def forward(x):
        return net(x)

    x = clip.unsqueeze(0).clone().requires_grad_(True)
    if method == "vanilla":
        grads = Saliency(forward).attribute(x, abs=True)
    else:
        grads = NoiseTunnel(Saliency(forward)).attribute(x, nt_type="smoothgrad", nt_samples_batch_size=1, abs=True,
                                                          **nt)
    return grads.amax(dim=2)[0].numpy()


def _assert_same_gradient(got, expected):
    """Equal to 1e-5 of the map's scale (float32 convolutions batched differently differ in the last bits)."""
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * float(np.abs(expected).max()))


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_chunked_gradient_equals_whole_clip_captum_on_the_tiny_backbone(chunk):
    net, clip = _engagement_net("tiny"), torch.rand(7, 3, 112, 112, generator=torch.Generator().manual_seed(3))
    expected = _whole_clip_captum(net, clip)
    r = engagement_heatmap(net, clip, SaliencySettings(frame_chunk=chunk))
    _assert_same_gradient(raw(r), expected)
    with torch.no_grad():
        assert r.prediction == pytest.approx(float(net(clip[None])[0]), rel=1e-5)


@pytest.mark.slow
def test_chunked_gradient_equals_whole_clip_captum_on_mobilenet_v2():
    net, clip = _engagement_net("mobilenet_v2"), _natural_clip(5)
    expected = _whole_clip_captum(net, clip)
    for chunk in (2, 5):
        _assert_same_gradient(raw(engagement_heatmap(net, clip, SaliencySettings(frame_chunk=chunk))), expected)


def test_chunked_smoothgrad_equals_whole_clip_noise_tunnel():
    """Same seed, same noise draws: NoiseTunnel over the chunked gradient equals NoiseTunnel over Captum's."""
    net, clip = _engagement_net("tiny"), torch.rand(5, 3, 112, 112, generator=torch.Generator().manual_seed(4))
    settings = SaliencySettings(method="smoothgrad", smoothgrad_samples=3, smoothgrad_stdev=0.2, frame_chunk=2)
    torch.manual_seed(5)
    expected = _whole_clip_captum(net, clip, "smoothgrad", nt_samples=3, stdevs=0.2 * float(clip.max() - clip.min()))
    torch.manual_seed(5)
    r = engagement_heatmap(net, clip, settings)
    _assert_same_gradient(raw(r), expected)
    assert not np.allclose(raw(r), _whole_clip_captum(net, clip), atol=1e-3 * np.abs(expected).max())


class _RecordingBackbone(nn.Module):
    """Wraps a backbone and records (frames, grad enabled) of every call."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, frames):
        self.calls.append((frames.shape[0], torch.is_grad_enabled()))
        return self.inner(frames)


def test_no_backbone_graph_holds_more_than_one_chunk_of_frames():
    """Memory grows with the chunk: the backbone never builds a graph over more than ``chunk`` frames, and the
    clip's frames are recomputed once (the last chunk's graph from the first pass is reused)."""
    net = _engagement_net("tiny")
    net.backbone = _RecordingBackbone(net.backbone)
    engagement_heatmap(net, torch.rand(10, 3, 112, 112), SaliencySettings(frame_chunk=4))
    with_grad = [n for n, grad in net.backbone.calls if grad]
    assert max(with_grad) <= 4 and sum(with_grad) == 10
    assert sum(n for n, grad in net.backbone.calls if not grad) == 10 - 2  # chunks 0-3 and 4-7 without a graph


def test_frame_chunk_defaults_on_the_cpu():
    from pe_udfs.saliency import CPU_FRAME_CHUNK, frame_chunk_for

    net, cpu = _engagement_net("tiny"), torch.device("cpu")
    assert frame_chunk_for(net, 60, SaliencySettings(), cpu) == CPU_FRAME_CHUNK
    assert frame_chunk_for(net, 60, SaliencySettings(frame_chunk=3), cpu) == 3


@pytest.mark.slow
def test_bfloat16_autocast_heatmap_is_close_to_float32():
    """bf16 autocast of the backbone passes (GPU, or CPU with bf16 kernels; emulated elsewhere) against float32 on
    MobileNetV2 (ImageNet) and natural frames. bf16 keeps ~3 significant digits and pixel gradients sum many
    signed terms, so single pixels differ a lot (measured: pixel correlation ~0.7); what scoring stores agrees:
    the 14×14 grid (correlation ≥ 0.85) and the share of engagement on a region (within 5% of its value)."""
    from pe_udfs.pe_math import coarse_grid

    net, clip = _engagement_net("mobilenet_v2"), _natural_clip(4)
    fp32 = engagement_heatmap(net, clip, SaliencySettings(frame_chunk=4))
    bf16 = engagement_heatmap(net, clip, SaliencySettings(frame_chunk=4, precision="bfloat16"))
    grid32, grid16 = coarse_grid(fp32.heatmap, 14), coarse_grid(bf16.heatmap, 14)
    assert np.corrcoef(grid32.ravel(), grid16.ravel())[0, 1] >= 0.85
    region = np.zeros(fp32.heatmap.shape, bool)
    region[:, 60:160, 60:160] = True
    share32 = fp32.heatmap[region].sum() / fp32.heatmap.sum()
    share16 = bf16.heatmap[region].sum() / bf16.heatmap.sum()
    assert share16 == pytest.approx(share32, rel=0.05)
    assert bf16.prediction == pytest.approx(fp32.prediction, rel=0.02, abs=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_chunked_gradient_matches_cpu_and_sizes_its_chunk():
    from pe_udfs.saliency import frame_chunk_for

    net, clip = _engagement_net("tiny"), torch.rand(9, 3, 224, 224, generator=torch.Generator().manual_seed(6))
    cpu = engagement_heatmap(net, clip, SaliencySettings(frame_chunk=4), device="cpu")
    gpu = engagement_heatmap(net, clip, SaliencySettings(), device="cuda")  # chunk sized to the free memory
    np.testing.assert_allclose(raw(gpu), raw(cpu), rtol=0, atol=1e-4 * raw(cpu).max())
    assert gpu.prediction == pytest.approx(cpu.prediction, rel=1e-4)
    assert 1 <= frame_chunk_for(net.cuda(), 9, SaliencySettings(), torch.device("cuda")) <= 9
    bf16 = engagement_heatmap(net, clip, SaliencySettings(precision="bfloat16"), device="cuda")
    assert bf16.heatmap.shape == cpu.heatmap.shape


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_without_a_gpu_is_an_error_not_a_fallback():
    from pe_udfs.errors import DeviceUnavailable
    from pe_udfs.saliency import resolve_device

    assert resolve_device("auto").type == "cpu" and resolve_device(None).type == "cpu"
    with pytest.raises(DeviceUnavailable) as e:
        resolve_device("cuda")
    assert e.value.reason == "no_cuda" and e.value.exit_code == 2
