"""pe_udfs.pe_math on hand-built maps whose scores are known exactly."""
from __future__ import annotations

import numpy as np
import pytest

from pe_udfs.pe_math import SCORE_NAMES, SecondSums, coarse_grid, pe_scores, per_second_sums, scores_from_sums


def box_mask(s, h, w, y0, y1, x0, x1):
    p = np.zeros((s, h, w), np.uint8)
    p[:, y0:y1, x0:x1] = 1
    return p


def test_uniform_engagement_gives_the_product_area_share():
    e = np.full((5, 224, 224), 0.7, np.float32)
    p = box_mask(5, 224, 224, 10, 66, 20, 132)  # 56 × 112 = 1/8 of the frame
    s = pe_scores(e, p)
    assert s["pe_share"] == pytest.approx(1 / 8)
    assert s["pe_lift"] == pytest.approx(1.0)
    assert s["p_score"] == 5 * 56 * 112
    assert s["e_score"] == pytest.approx(5 * 224 * 224 * 0.7, rel=1e-6)


def test_no_product_scores_zero():
    e = np.random.default_rng(0).random((4, 32, 32))
    s = pe_scores(e, np.zeros((4, 32, 32), np.uint8))
    assert s["pe_raw"] == s["pe_share"] == s["pe_lift"] == s["p_score"] == 0.0
    assert s["e_score"] > 0


def test_engagement_only_on_the_product_gives_share_one():
    p = box_mask(3, 32, 32, 8, 16, 4, 28)
    e = p * np.random.default_rng(1).uniform(0.1, 1.0, p.shape)
    s = pe_scores(e, p)
    assert s["pe_share"] == pytest.approx(1.0)
    assert s["pe_lift"] == pytest.approx(1.0 / (8 * 24 / (32 * 32)))


def test_no_engagement_scores_zero_share():
    p = box_mask(2, 8, 8, 0, 4, 0, 4)
    s = pe_scores(np.zeros((2, 8, 8)), p)
    assert s["pe_share"] == 0.0 and s["pe_lift"] == 0.0 and s["pe_raw"] == 0.0


def test_pe_raw_is_the_papers_equation_1():
    """pe_raw = Σ e·p / (S·H·W): a per-pixel mean over the whole video, so it does not grow with length."""
    rng = np.random.default_rng(2)
    e = rng.random((3, 16, 16))
    p = (rng.random((3, 16, 16)) > 0.6).astype(np.uint8)
    expected = sum(float(e[s, y, x] * p[s, y, x]) for s in range(3) for y in range(16) for x in range(16)) / (3 * 16 * 16)
    assert pe_scores(e, p)["pe_raw"] == pytest.approx(expected)
    doubled = pe_scores(np.concatenate([e, e]), np.concatenate([p, p]))
    assert doubled["pe_raw"] == pytest.approx(expected)
    assert doubled["e_score"] == pytest.approx(2 * pe_scores(e, p)["e_score"])


def test_first_six_seconds_use_only_those_seconds():
    e = np.ones((10, 4, 4))
    p = np.zeros((10, 4, 4), np.uint8)
    p[:6, :2, :] = 1   # product on the top half for the first six seconds
    e[6:] = 5.0        # engagement elsewhere later
    s = pe_scores(e, p)
    assert s["pe_share_6s"] == pytest.approx(0.5)
    assert s["p_score_6s"] == 6 * 8 and s["e_score_6s"] == pytest.approx(6 * 16)
    assert s["pe_share"] == pytest.approx(48 / (96 + 4 * 16 * 5))
    short = pe_scores(e[:3], p[:3])  # fewer than six seconds: the window is the whole video
    assert short["pe_share_6s"] == short["pe_share"] and short["pe_raw_6s"] == short["pe_raw"]
    assert set(s) == set(SCORE_NAMES)


def test_scores_are_reproducible_from_stored_per_second_sums():
    rng = np.random.default_rng(3)
    e, p = rng.random((8, 12, 12)), (rng.random((8, 12, 12)) > 0.5).astype(np.uint8)
    sums = per_second_sums(e, p)
    assert sums.e_mass[2] == pytest.approx(e[2].sum()) and sums.pe_mass[2] == pytest.approx((e[2] * p[2]).sum())
    assert sums.p_mass[2] == p[2].sum() and sums.pixels == 144
    stored = SecondSums(np.array(sums.e_mass.tolist()), np.array(sums.pe_mass.tolist()),
                        np.array(sums.p_mass.tolist()), 144)
    assert scores_from_sums(stored) == pytest.approx(pe_scores(e, p))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="both be"):
        pe_scores(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))


def test_coarse_grid_is_a_cell_mean():
    e = np.zeros((1, 224, 224), np.float32)
    e[0, :16, :16] = 1.0       # exactly cell (0, 0)
    e[0, 16:32, 32:40] = 1.0   # half of cell (1, 2)
    g = coarse_grid(e, 14)
    assert g.shape == (1, 14, 14)
    assert g[0, 0, 0] == pytest.approx(1.0) and g[0, 1, 2] == pytest.approx(0.5)
    assert g.sum() == pytest.approx(1.5)
    odd = coarse_grid(np.ones((2, 30, 30)), 7)  # not a multiple: area interpolation keeps the mean
    assert odd.shape == (2, 7, 7) and np.allclose(odd, 1.0)
