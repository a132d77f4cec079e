"""The engagement-map registry (pe_udfs.saliency.METHODS) and the map methods of a density head, on tiny models
whose answers are known by hand: a backbone that pools the red channel onto a 4×4 grid and a head whose density
is that grid, so the predicted engagement is the red mass and the product's share of it is countable."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models.network import DensityHead
from pe_udfs.errors import ModelError
from pe_udfs.pe_math import pe_scores
from pe_udfs.saliency import METHODS, density_to_pixels, engagement_heatmap, remove_product
from pe_udfs.settings import SaliencySettings


class RedGrid(nn.Module):
    """(N, 3, 32, 32) → (N, 1, 4, 4): the mean red level of each 8×8 cell."""

    def forward(self, frames):
        return nn.functional.avg_pool2d(frames[:, :1], 8)


class IdentityDensity(nn.Module):
    """density = the red grid itself; prediction = its sum per second, averaged over seconds."""

    def density(self, features, mask=None):
        return features[:, :, 0]

    def forward(self, features, mask=None):
        return self.density(features).sum(dim=(2, 3)).mean(dim=1)


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone, self.head = RedGrid(), IdentityDensity()

    def forward(self, clips):
        b, s = clips.shape[:2]
        return self.head(self.backbone(clips.reshape(b * s, *clips.shape[2:])).reshape(b, s, 1, 4, 4))


def _clip_with_two_red_squares(seconds=3):
    """Grey-free black frames with two red 8×8 squares: one at cells (0, 0), one at (2, 2)."""
    frames = np.zeros((seconds, 32, 32, 3), np.uint8)
    frames[:, 0:8, 0:8, 0] = 255
    frames[:, 16:24, 16:24, 0] = 255
    masks = np.zeros((seconds, 32, 32), np.uint8)
    masks[:, 16:24, 16:24] = 1  # the product is the second square
    return frames, masks


def _tensor(frames):
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255


def test_every_registered_method_is_in_the_registry():
    assert {"vanilla", "smoothgrad", "integrated_gradients", "gradcam", "spectral_residual", "density",
            "ablation"} <= set(METHODS)


def test_density_map_keeps_each_seconds_mass_and_its_share_is_the_squares_share():
    frames, masks = _clip_with_two_red_squares()
    r = engagement_heatmap(TinyNet(), _tensor(frames), SaliencySettings(method="density"))
    assert r.prediction == pytest.approx(2.0)  # two full cells of red per second
    assert r.heatmap.max() == pytest.approx(1.0) and r.raw_min == 0.0
    # each cell's mass spread evenly over its pixels: the product square is one of the two red cells
    assert pe_scores(r.heatmap, masks)["pe_share"] == pytest.approx(0.5, abs=1e-5)
    d = torch.rand(2, 4, 4)
    assert density_to_pixels(d, (32, 32)).sum(dim=(1, 2)) == pytest.approx(d.sum(dim=(1, 2)), rel=1e-5)


def test_ablation_gives_the_product_what_removing_it_costs():
    """Inpainting the product square from its black surroundings removes its red: the prediction loses half its
    mass every second, so exactly half of the map sits on the product; a mask on empty black costs nothing."""
    frames, masks = _clip_with_two_red_squares()
    r = engagement_heatmap(TinyNet(), _tensor(frames), SaliencySettings(method="ablation"), product_masks=masks)
    assert pe_scores(r.heatmap, masks)["pe_share"] == pytest.approx(0.5, abs=0.02)
    empty = np.zeros_like(masks)
    empty[:, 0:8, 24:32] = 1  # a black corner: nothing there to remove
    r2 = engagement_heatmap(TinyNet(), _tensor(frames), SaliencySettings(method="ablation"), product_masks=empty)
    assert pe_scores(r2.heatmap, empty)["pe_share"] == pytest.approx(0.0, abs=0.02)


def test_remove_product_fills_the_region_and_leaves_other_seconds_untouched():
    frames, masks = _clip_with_two_red_squares(2)
    masks[1] = 0
    out = remove_product(frames, masks)
    assert out[0, 16:24, 16:24, 0].max() < 60 and np.array_equal(out[1], frames[1])
    assert np.array_equal(out[0, 0:8, 0:8], frames[0, 0:8, 0:8])  # far from the product: unchanged


def test_density_methods_refuse_a_model_without_a_density_head_and_ablation_needs_masks():
    class Plain(TinyNet):
        def __init__(self):
            super().__init__()
            self.head = nn.Identity()

    frames, masks = _clip_with_two_red_squares()
    with pytest.raises(ModelError, match="density head"):
        engagement_heatmap(Plain(), _tensor(frames), SaliencySettings(method="density"))
    with pytest.raises(ModelError, match="needs product masks"):
        engagement_heatmap(TinyNet(), _tensor(frames), SaliencySettings(method="ablation"))


def test_gradcam_of_a_linear_head_follows_the_positive_features():
    """Head ŷ = Σ f: every channel's gradient is 1, so Grad-CAM is ReLU(f) upsampled — the red square's cells."""
    class SumHead(nn.Module):
        def forward(self, f, mask=None):
            return f.sum(dim=(1, 2, 3, 4))

    net = TinyNet()
    net.head = SumHead()
    frames, masks = _clip_with_two_red_squares(2)
    r = engagement_heatmap(net, _tensor(frames), SaliencySettings(method="gradcam"))
    assert r.prediction == pytest.approx(4.0)
    for s in range(2):  # brightest inside a red square, darkest far from both
        y, x = np.unravel_index(np.argmax(r.heatmap[s]), r.heatmap[s].shape)
        assert (0 <= y < 8 and 0 <= x < 8) or (16 <= y < 24 and 16 <= x < 24)
        assert r.heatmap[s, 4, 28] == pytest.approx(0.0, abs=1e-6)


def test_density_head_pads_like_a_shorter_clip_and_sees_change():
    torch.manual_seed(0)
    head = DensityHead(6, 4).eval()
    x = torch.randn(2, 5, 6, 3, 3)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        assert head(x, mask)[0].item() == pytest.approx(head(x[:1, :3])[0].item(), abs=1e-6)
    assert (head.density(x, mask)[0, 3:] == 0).all() and (head.density(x) >= 0).all()
    still = x[:1, :1].repeat(1, 4, 1, 1, 1)
    with torch.no_grad():  # a still clip: no change channel, so every second but the edges has the same density
        d = head.density(still)[0]
    assert torch.allclose(d[1], d[2], atol=1e-6)
