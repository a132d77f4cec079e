"""Multi-view products (pe_udfs.product_views): the best view per second, its name, the listing cache."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from pe_media import paste
from skimage import data

from pe_udfs import product_views
from pe_udfs.errors import ProductImageError
from pe_udfs.product import listing_features
from pe_udfs.product_views import ListingCache, ListingView, best_match, product_map, row_views, views_product_map
from pe_udfs.settings import ProductSettings

SIFT = ProductSettings(match_workers=1)
SCENE = data.astronaut()[:384]  # (384, 512, 3)
QUAD = np.float32([[150, 100], [420, 140], [400, 330], [130, 300]])


@pytest.fixture(scope="module")
def front():
    return data.coffee()  # (400, 600, 3)


@pytest.fixture(scope="module")
def side():
    return data.chelsea()  # (300, 451, 3) a cat: shares no texture with the cup


@pytest.fixture(scope="module")
def views(front, side):
    return [ListingView("front", listing_features(front, SIFT)), ListingView("side", listing_features(side, SIFT))]


def test_the_view_that_matches_is_picked_and_named(views, side):
    frame = paste(side, SCENE, QUAD)  # only the side is in the frame
    m, view = best_match(frame, views, SIFT)
    assert view is not None and view.name == "side" and m.found
    assert np.abs(m.quad - QUAD).max() < 3.0
    pmap = views_product_map([frame, SCENE], views, SIFT)
    assert pmap.found.tolist() == [True, False]
    assert pmap.matched_view == ["side", None]
    # the front view alone does not find it: the second view is what found it
    assert not views_product_map([frame], views[:1], SIFT).found[0]


def test_with_both_faces_in_view_the_match_with_most_inliers_wins(views, front, side):
    big, small = np.float32([[40, 40], [330, 60], [320, 300], [50, 330]]), np.float32([[380, 250], [500, 255], [498, 340], [382, 338]])
    frame = paste(front, paste(side, SCENE, small), big)  # the cup large, the cat small
    ms = {v.name: best_match(frame, [v], SIFT)[0] for v in views}
    assert ms["front"].found and ms["side"].found and ms["front"].inliers > ms["side"].inliers
    for order in (views, views[::-1]):  # whatever the order of the views
        m, view = best_match(frame, order, SIFT)
        assert view.name == "front" and m.inliers == ms["front"].inliers


def test_one_view_gives_exactly_the_single_listing_map(views, side):
    frames = [paste(side, SCENE, QUAD), SCENE]
    single = product_map(frames, views[1].features, SIFT)
    multi = views_product_map(frames, views[1:], SIFT)
    assert np.array_equal(single.masks, multi.masks) and single.inliers.tolist() == multi.inliers.tolist()
    assert single.matched_view == [None, None] and multi.matched_view == ["side", None]


def test_nothing_found_keeps_the_closest_views_diagnostics(views):
    m, view = best_match(SCENE, views, SIFT)
    assert view is None and not m.found and m.reason
    assert views_product_map([SCENE], [], SIFT).reasons == ["no_listing"]


def test_row_views_puts_the_videos_own_image_first_unless_a_view_names_it():
    assert row_views("a.jpg", None, None) == [("main", "a.jpg")]
    assert row_views("f.jpg", ["front", "side"], ["f.jpg", "s.jpg"]) == [("front", "f.jpg"), ("side", "s.jpg")]
    assert row_views("x.jpg", ["front", "side"], ["f.jpg", "s.jpg"]) == [("main", "x.jpg"), ("front", "f.jpg"),
                                                                          ("side", "s.jpg")]
    assert row_views("file:///p/f%20a.jpg", ["front"], ["/p/f a.jpg"]) == [("front", "/p/f a.jpg")]
    assert row_views("file:///p/f.jpg", ["front"], ["s3://b/f.jpg"])[0] == ("main", "file:///p/f.jpg")
    assert row_views(None, ["main"], ["m.jpg"]) == [("main", "m.jpg")]
    assert row_views("x.jpg", ["main"], ["m.jpg"])[0] == ("campaign", "x.jpg")
    assert row_views(None, None, None) == []
    with pytest.raises(ValueError):
        row_views(None, ["a"], [])


def _write(path, rgb) -> str:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return str(path)


def test_cache_computes_each_image_once_until_the_file_changes(tmp_path, front, side, monkeypatch):
    calls = []
    real = product_views.listing_features
    monkeypatch.setattr(product_views, "listing_features", lambda *a, **k: calls.append(k["name"]) or real(*a, **k))
    f, s = _write(tmp_path / "front.png", front), _write(tmp_path / "side.png", side)
    cache = ListingCache()
    pairs = [("front", f), ("side", s)]
    first = cache.views(pairs, SIFT)
    for _ in range(3):  # more videos of the same product, and a setting that changes no feature
        again = cache.views(pairs, SIFT.model_copy(update={"match_workers": 4}))
    assert calls == [f, s] and cache.computed == 2
    assert all(a.features is b.features for a, b in zip(first, again))
    cache.views(pairs, SIFT.model_copy(update={"listing_max_side": 400}))  # other settings: other features
    assert cache.computed == 4
    _write(tmp_path / "side.png", side[:, ::-1])  # the file is replaced (new size or mtime): read again
    os.utime(s, ns=(1, 1))
    cache.views(pairs, SIFT)
    assert calls[-1] == s and cache.computed == 5


def test_cache_keeps_errors_and_evicts_the_oldest(tmp_path, front):
    cache = ListingCache(max_size=2)
    missing = str(tmp_path / "missing.png")
    for _ in range(2):
        with pytest.raises(ProductImageError) as e:
            cache.get(missing, SIFT)
        assert e.value.reason == "not_found"
    assert cache.computed == 1
    images = [_write(tmp_path / f"{i}.png", np.roll(front, 40 * i, axis=1)) for i in range(3)]
    for uri in images:
        cache.get(uri, SIFT)
    cache.get(images[0], SIFT)  # evicted by the two after it: computed again
    assert cache.computed == 5
