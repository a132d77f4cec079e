"""pe_udfs.score.score_video end to end on a real H.264 clip with a product pasted into a real photo."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pe_media import paste, write_frames
from skimage import data
from torch import nn

from pe_udfs.errors import DecodeError, ModelError
from pe_udfs.pe_math import SCORE_NAMES
from pe_udfs.product import listing_features, quad_mask
from pe_udfs.score import score_video
from pe_udfs.settings import ClipSettings, ProductSettings, SaliencySettings

SCENE = data.astronaut()[:384]  # (384, 512, 3)
QUAD = np.float32([[150, 100], [420, 140], [400, 330], [130, 300]])
SETTINGS = dict(clip=ClipSettings(), product=ProductSettings(), saliency=SaliencySettings())


class LeftHalf(nn.Module):
    """y = Σ w·x with w = 1 on the left half of every frame and 0.5 on the right: after min-max scaling
    the engagement map is exactly 1 on the left half and 0 on the right half."""

    def forward(self, x):  # (B, S, 3, H, W) → (B,)
        w = torch.full(x.shape[-2:], 0.5)
        w[:, : x.shape[-1] // 2] = 1.0
        return (x * w).sum(dim=(1, 2, 3, 4))


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    with_product = paste(data.coffee(), SCENE, QUAD)
    frames = [with_product] * 6 + [SCENE] * 2  # 2 fps: product in seconds 0-2, gone in second 3
    return str(write_frames(tmp_path_factory.mktemp("clips") / "ad.mp4", frames, fps=2))


@pytest.fixture(scope="module")
def listing():
    return listing_features(data.coffee(), ProductSettings())


def test_scores_match_the_known_engagement_and_product_regions(clip_path, listing):
    r = score_video(clip_path, listing, model=LeftHalf(), keep_maps=True, **SETTINGS)
    assert r.n_seconds == 4 and r.product_found_seconds == 3
    assert [s["product_found"] for s in r.seconds] == [True, True, True, False]
    truth = quad_mask(QUAD, 512, 384, 224)
    left = np.zeros((224, 224), np.uint8)
    left[:, :112] = 1
    expected_share = 3 * (truth & left).sum() / (4 * left.sum())
    assert r.scores["pe_share"] == pytest.approx(expected_share, rel=0.03)
    assert r.scores["p_score"] == pytest.approx(3 * truth.sum(), rel=0.03)
    assert r.scores["e_score"] == pytest.approx(4 * 224 * 112)
    assert set(r.scores) == set(SCORE_NAMES)
    sec3 = r.seconds[3]
    assert sec3["pe_mass"] == 0 and sec3["p_mass"] == 0 and sec3["quad_224"] is None
    assert sec3["e_mass"] == pytest.approx(224 * 112)
    q = np.array(r.seconds[0]["quad_224"]).reshape(4, 2)
    assert np.abs(q - QUAD * np.float32([224 / 512, 224 / 384])).max() < 2.0
    assert len(r.seconds[0]["e_grid"]) == 14 * 14 and r.seconds[0]["e_grid"][0] == pytest.approx(1.0)
    assert r.seconds[0]["e_grid"][13] == pytest.approx(0.0)
    assert r.heatmap.shape == r.product_masks.shape == (4, 224, 224)
    assert r.predicted_engagement is not None and np.isfinite(r.predicted_engagement)
    assert set(r.timings) == {"decode", "product", "saliency", "pe", "total"}
    assert r.video["width"] == 512 and r.video["height"] == 384


def test_product_only_reports_the_product_map_alone(clip_path, listing):
    r = score_video(clip_path, listing, product_only=True, **SETTINGS)
    assert r.product_only and r.predicted_engagement is None and r.saliency_method is None
    assert set(r.scores) == {"p_score", "p_score_6s"}
    assert [s["product_found"] for s in r.seconds] == [True, True, True, False]
    assert all(s["e_mass"] is None and s["e_grid"] is None for s in r.seconds)
    assert "saliency" not in r.timings


def test_spectral_residual_baseline_needs_no_model(clip_path, listing):
    settings = dict(SETTINGS, saliency=SaliencySettings(method="spectral_residual"))
    r = score_video(clip_path, listing, **settings)
    assert r.saliency_method == "spectral_residual" and r.predicted_engagement is None
    assert 0 < r.scores["pe_share"] < 1


def test_without_a_listing_every_pe_score_is_zero(clip_path):
    r = score_video(clip_path, None, model=LeftHalf(), **SETTINGS)
    assert r.product_found_seconds == 0 and r.scores["pe_share"] == r.scores["pe_raw"] == 0
    assert r.scores["e_score"] > 0


def test_errors_carry_their_stage(tmp_path, listing):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DecodeError) as e:
        score_video(str(empty), listing, model=LeftHalf(), **SETTINGS)
    assert e.value.stage == "decode"
    with pytest.raises(ModelError) as e:
        score_video(str(empty), listing, model=None, **SETTINGS)  # vanilla saliency needs a model
    assert e.value.stage == "model"


def test_the_engagement_network_of_the_models_package_fits_the_contract(clip_path, listing):
    network = pytest.importorskip("models.network")
    from models.settings import ModelSettings

    net = network.build_engagement_net(ModelSettings(backbone="tiny"))
    r = score_video(clip_path, listing, model=net, **SETTINGS)
    assert r.n_seconds == 4 and np.isfinite(r.predicted_engagement)
    assert 0 <= r.scores["pe_share"] <= 1 and r.scores["e_score"] > 0


def test_cnn_and_product_matching_split_the_cores_when_they_run_side_by_side():
    from pe_udfs.score import _split_cores
    from pe_udfs.settings import ProductSettings

    assert _split_cores(2, ProductSettings(), True)[0] == 1
    assert _split_cores(2, ProductSettings(), True)[1].match_workers == 1
    assert _split_cores(8, ProductSettings(), True)[0] == 4
    assert _split_cores(8, ProductSettings(match_workers=2), True)[0] == 6  # an explicit setting is kept
    assert _split_cores(1, ProductSettings(), True)[0] == 1
    threads, product = _split_cores(8, ProductSettings(), False)  # not side by side: nothing changes
    assert threads == 8 and product.match_workers == 0


class RampLeft(nn.Module):
    """y = Σ_s (s + 1)·Σ left half of frame s: after min-max scaling e[s] = (s + 1)/S on the left half, 0 on
    the right, so every second's engagement mass is different and a shifted pairing shows."""

    def forward(self, x):  # (B, S, 3, H, W) → (B,)
        w = torch.zeros(x.shape[-2:])
        w[:, : x.shape[-1] // 2] = 1.0
        ramp = torch.arange(1, x.shape[1] + 1, dtype=x.dtype).view(1, -1, 1, 1, 1)
        return (x * w * ramp).sum(dim=(1, 2, 3, 4))


@pytest.mark.parametrize("drop", [True, False])
def test_orb_hull_drop_unmatched_seconds_pairs_masks_with_earlier_engagement(tmp_path, drop):
    blank = np.full_like(SCENE, 128)
    with_product = paste(data.coffee(), SCENE, QUAD)
    path = str(write_frames(tmp_path / "gaps.mp4", [blank, with_product, blank, with_product], fps=1))
    paper = ProductSettings(method="orb_hull", drop_unmatched_seconds=drop)
    feats = listing_features(data.coffee(), paper)
    kw = dict(clip=ClipSettings(), saliency=SaliencySettings(), model=RampLeft(), keep_maps=True)
    r = score_video(path, feats, product=paper, **kw)
    aligned = score_video(path, feats, product=paper.model_copy(update={"drop_unmatched_seconds": False}), **kw)
    assert aligned.n_seconds == 4 and [s["product_found"] for s in aligned.seconds] == [False, True, False, True]
    e, p = aligned.heatmap, aligned.product_masks
    sources = [1, 3] if drop else [0, 1, 2, 3]
    assert r.n_seconds == len(sources) and [s["second"] for s in r.seconds] == list(range(len(sources)))
    assert [s["product_second"] for s in r.seconds] == sources
    for k, src in enumerate(sources):  # row k: engagement of second k, product mask of second src
        assert r.seconds[k]["e_mass"] == pytest.approx(float(e[k].sum()))
        assert r.seconds[k]["pe_mass"] == pytest.approx(float((e[k] * p[src]).sum()))
    pe = sum(float((e[k] * p[src]).sum()) for k, src in enumerate(sources))
    assert r.scores["pe_raw"] == pytest.approx(pe / (len(sources) * 224 * 224))
    assert r.scores["e_score"] == pytest.approx(float(e[: len(sources)].sum()))  # their code cut e to K too
    assert r.product_found_seconds == 2
