"""models.agreement: Spearman and bootstrap intervals against answers known by hand or in closed form."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from models.agreement import bootstrap, paired_difference, pearson, permutation_null, spearman


def test_spearman_known_values_with_ties():
    assert spearman([1, 2, 3, 4, 5], [10, 20, 30, 40, 50]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    # by hand: ranks of y = 1, 2, 3.5, 5, 3.5 → Σdxdy = 8, Σdx² = 10, Σdy² = 9.5 → 8 / sqrt(95)
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)


def test_a_constant_ranks_nothing():
    assert spearman(np.ones(10), np.arange(10)) == 0.0 and pearson(np.ones(10), np.arange(10)) == 0.0
    e = bootstrap(np.zeros(30), np.arange(30.0))
    assert (e.value, e.ci_low, e.ci_high, e.n) == (0.0, 0.0, 0.0, 30)


def test_bootstrap_interval_covers_the_population_value():
    """Bivariate normal with correlation 0.6: the population Spearman is (6/π)·asin(0.3) ≈ 0.585."""
    rho = 0.6
    target = 6 / math.pi * math.asin(rho / 2)
    rng = np.random.default_rng(1)
    z = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=400)
    e = bootstrap(z[:, 0], z[:, 1], seed=2)
    assert e.ci_low < target < e.ci_high and e.ci_low < e.value < e.ci_high
    assert 0.08 < e.ci_high - e.ci_low < 0.25  # ≈ 2·1.96·(1 - ρs²)/√n
    assert bootstrap(z[:, 0], z[:, 1], seed=2) == e  # seeded: reproducible


def test_paired_difference_of_a_better_score_is_above_zero_and_of_itself_is_zero():
    rng = np.random.default_rng(3)
    truth = rng.normal(size=200)
    good = truth + rng.normal(0, 0.3, 200)
    weak = truth + rng.normal(0, 2.0, 200)
    d = paired_difference(good, weak, truth)
    assert d.value == pytest.approx(spearman(good, truth) - spearman(weak, truth))
    assert d.ci_low > 0
    same = paired_difference(good, good, truth)
    assert (same.value, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0)
    # permuted labels: no better than chance, the interval straddles 0
    perm = paired_difference(rng.permutation(good), np.zeros(200), truth)
    assert perm.ci_low < 0 < perm.ci_high


def test_too_few_units_give_nan_and_bad_shapes_are_errors():
    assert math.isnan(bootstrap([1, 2], [2, 1]).value)
    with pytest.raises(ValueError):
        bootstrap([1, 2, 3], [1, 2])


def test_permutation_null_band_is_chance_alone():
    """Shuffled scores: median ≈ 0 and a band of about ±1.96/√(n-1); a faithful score lies far outside it."""
    rng = np.random.default_rng(4)
    truth = rng.normal(size=200)
    score = truth + rng.normal(0, 0.5, 200)
    null = permutation_null(score, truth, seed=5)
    assert abs(null.value) < 0.02 and null.n == 200
    assert null.ci_high == pytest.approx(1.96 / math.sqrt(199), abs=0.03)
    assert null.ci_low == pytest.approx(-1.96 / math.sqrt(199), abs=0.03)
    assert spearman(score, truth) > null.ci_high


def test_cluster_bootstrap_of_duplicated_videos_equals_the_bootstrap_of_the_originals():
    """Every video repeated 5 times in its own cluster: resampling clusters is resampling the originals (the same
    draws, and Spearman of exact copies equals Spearman of the originals), so the intervals match exactly;
    resampling the copies as if independent gives an interval about √5 narrower."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=40)
    y = 0.5 * x + rng.normal(size=40)
    xs, ys, groups = np.repeat(x, 5), np.repeat(y, 5), np.repeat([f"inf-{i:03d}" for i in range(40)], 5)  # names sort in video order
    plain = bootstrap(x, y, seed=5)
    clustered = bootstrap(xs, ys, seed=5, groups=groups)
    assert clustered.value == pytest.approx(plain.value)
    assert (clustered.ci_low, clustered.ci_high) == pytest.approx((plain.ci_low, plain.ci_high))
    naive = bootstrap(xs, ys, seed=5)
    assert (naive.ci_high - naive.ci_low) < 0.6 * (clustered.ci_high - clustered.ci_low)
    d = paired_difference(xs, -xs, ys, seed=5, groups=groups)
    d_plain = paired_difference(x, -x, y, seed=5)
    assert (d.value, d.ci_low, d.ci_high) == pytest.approx((d_plain.value, d_plain.ci_low, d_plain.ci_high))


def test_fewer_than_three_clusters_give_nan():
    x = np.arange(10.0)
    assert math.isnan(bootstrap(x, x, groups=["a"] * 5 + ["b"] * 5).value)
    with pytest.raises(ValueError):
        bootstrap(x, x, groups=["a"] * 3)
