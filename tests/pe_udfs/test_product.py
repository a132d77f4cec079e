"""pe_udfs.product on real photos: a product photo warped by a known homography into a real scene."""
from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest
from pe_media import paste
from skimage import data

from pe_udfs import product_orb
from pe_udfs.errors import ProductImageError
from pe_udfs.listing import ListingFeatures, load_image, ratio_matches
from pe_udfs.product import _quad_gate, drop_unmatched_seconds, listing_features, match_frame, quad_mask
from pe_udfs.product_orb import orb_detector, orb_norm
from pe_udfs.product_views import product_map
from pe_udfs.settings import ProductSettings

SIFT = ProductSettings()


@pytest.fixture(scope="module")
def coffee():
    return data.coffee()  # (400, 600, 3) a cup of coffee on a saucer (CC0)


@pytest.fixture(scope="module")
def listing(coffee):
    return listing_features(coffee, SIFT)


# a non-square scene, so the x and y scales to the 224 grid differ
SCENE = data.astronaut()[:384]  # (384, 512, 3)
QUAD = np.float32([[150, 100], [420, 140], [400, 330], [130, 300]])


def test_listing_features_are_computed_once_and_pickle(listing, coffee):
    assert listing.method == "sift" and listing.n_features > 100
    assert (listing.width, listing.height) == (600, 400)
    assert listing.descriptors.shape == (listing.n_features, 128)
    again = pickle.loads(pickle.dumps(listing))
    assert isinstance(again, ListingFeatures) and np.array_equal(again.descriptors, listing.descriptors)


def test_large_listing_images_are_downscaled(coffee):
    feats = listing_features(cv2.resize(coffee, (1800, 1200)), SIFT)
    assert max(feats.width, feats.height) == SIFT.listing_max_side


def test_product_warped_into_a_real_scene_is_found_at_the_right_corners(coffee, listing):
    frame = paste(coffee, SCENE, QUAD)
    m = match_frame(frame, listing, SIFT)
    assert m.found and m.reason == ""
    assert m.inliers >= SIFT.min_inliers
    assert np.abs(m.quad - QUAD).max() < 3.0  # pixels


@pytest.mark.parametrize("scene", ["chelsea", "rocket", "astronaut", "camera"])
def test_unrelated_scenes_are_not_found(listing, scene):
    img = getattr(data, scene)()
    m = match_frame(img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2RGB), listing, SIFT)
    assert not m.found and m.reason


def test_product_map_keeps_every_second_and_scales_x_and_y_separately(coffee, listing):
    with_product = paste(coffee, SCENE, QUAD)
    frames = [with_product, data.chelsea()[:384, :512], with_product]
    pm = product_map(frames, listing, SIFT, out_size=224)
    assert pm.masks.shape == (3, 224, 224) and pm.masks.dtype == np.uint8
    assert pm.found.tolist() == [True, False, True]
    assert pm.masks[1].sum() == 0 and pm.quads[1] is None and pm.area_share[1] == 0
    expected_quad = QUAD * np.float32([224 / 512, 224 / 384])
    assert np.abs(pm.quads[0] - expected_quad).max() < 1.5
    truth = quad_mask(QUAD, 512, 384, 224)
    iou = (truth & pm.masks[0]).sum() / (truth | pm.masks[0]).sum()
    assert iou > 0.97
    assert pm.area_share[0] == pytest.approx(pm.masks[0].mean())


def test_no_listing_gives_empty_masks_for_every_second():
    pm = product_map([SCENE, SCENE], None, SIFT)
    assert pm.masks.shape == (2, 224, 224) and not pm.found.any() and pm.masks.sum() == 0


def test_quad_mask_fills_cells_whose_centres_are_inside():
    top_half = quad_mask(np.float32([[0, 0], [640, 0], [640, 180], [0, 180]]), 640, 360, 224)
    assert top_half[:112].all() and not top_half[112:].any()
    left_quarter = quad_mask(np.float32([[0, 0], [160, 0], [160, 360], [0, 360]]), 640, 360, 224)
    assert left_quarter[:, :56].all() and not left_quarter[:, 56:].any()


def test_gates_reject_implausible_quads():
    w, h = 640, 360
    good = np.float32([[100, 100], [300, 110], [290, 250], [110, 240]])
    assert _quad_gate(good, w, h, SIFT) == ""
    assert _quad_gate(good[[1, 0, 3, 2]], w, h, SIFT) == "mirrored_or_degenerate"
    assert _quad_gate(np.float32([[100, 100], [300, 100], [150, 130], [100, 300]]), w, h, SIFT) == "not_convex"
    assert _quad_gate(np.float32([[0, 0], [5, 0], [5, 5], [0, 5]]), w, h, SIFT) == "too_small"
    assert _quad_gate(np.float32([[-10, -10], [650, -10], [650, 370], [-10, 370]]), w, h, SIFT) == "too_large"
    assert _quad_gate(np.float32([[100, 100], [600, 100], [600, 103], [100, 103]]), w, h,
                      ProductSettings(min_area_share=0)) == "too_skewed"
    assert _quad_gate(np.float32([[100, 100], [1000, 100], [1000, 150], [100, 150]]), w, h,
                      ProductSettings(max_area_share=1)) == "outside_frame"
    # a strong but possible tilt passes; a far edge at less than half the near edge's length does not
    assert _quad_gate(np.float32([[140, 100], [260, 100], [300, 250], [100, 250]]), w, h, SIFT) == ""
    assert _quad_gate(np.float32([[180, 100], [220, 100], [300, 250], [100, 250]]), w, h, SIFT) == "too_foreshortened"


def test_orb_hull_paper_mode_marks_the_hull_of_matches(coffee):
    settings = ProductSettings(method="orb_hull")
    feats = listing_features(coffee, settings)
    assert feats.descriptors.dtype == np.uint8 and feats.descriptors.shape[1] == 32
    frame = paste(coffee, SCENE, QUAD)
    pm = product_map([frame], feats, settings)
    assert pm.found[0] and pm.quads[0] is None and pm.inliers[0] >= 3
    truth = quad_mask(QUAD, 512, 384, 224)
    inside = (pm.masks[0] & truth).sum() / pm.masks[0].sum()
    assert inside > 0.9  # the hull of matched keypoints lies on the product
    with pytest.raises(ValueError, match="computed with"):
        match_frame(frame, feats, SIFT)


PAPER = ProductSettings(method="orb_hull")


def test_orb_hull_defaults_are_the_authors_settings():
    orb = orb_detector(PAPER)
    assert orb.getMaxFeatures() == 1000 and orb.getScoreType() == cv2.ORB_FAST_SCORE
    assert (PAPER.orb_size, PAPER.ratio, PAPER.norm, PAPER.drop_unmatched_seconds) == (224, 0.75, "l2", True)
    assert orb_norm(PAPER) == cv2.NORM_L2
    assert orb_norm(PAPER.model_copy(update={"norm": "hamming"})) == cv2.NORM_HAMMING
    with pytest.raises(ValueError):
        ProductSettings(method="orb_hull", norm="l1")


def test_orb_hull_listing_is_squashed_to_224_grayscale_first(coffee):
    feats = listing_features(coffee, PAPER)  # (400, 600, 3) → 224×224 gray, aspect not kept
    assert (feats.width, feats.height) == (224, 224)
    squashed = cv2.resize(cv2.cvtColor(coffee, cv2.COLOR_RGB2GRAY), (224, 224))
    kps, des = cv2.ORB_create(nfeatures=1000, scoreType=cv2.ORB_FAST_SCORE).detectAndCompute(squashed, None)
    assert np.array_equal(feats.descriptors, des)
    assert np.allclose(feats.keypoints, [kp.pt for kp in kps])


def test_matcher_norm_picks_a_different_nearest_neighbour():
    # query: 32 zero bytes; a: every byte 1 (L2 5.7, Hamming 32 bits); b: one byte 128 (L2 128, Hamming 1 bit)
    listing = ListingFeatures(np.zeros((1, 2), np.float32), np.zeros((1, 32), np.uint8), 224, 224, "orb_hull")
    frame = np.zeros((2, 32), np.uint8)
    frame[0] = 1
    frame[1, 0] = 128
    assert ratio_matches(listing, frame, 0.75, orb_norm(PAPER)) == [(0, 0)]
    assert ratio_matches(listing, frame, 0.75, orb_norm(PAPER.model_copy(update={"norm": "hamming"}))) == [(0, 1)]


@pytest.mark.parametrize("norm", ["l2", "hamming"])
def test_orb_hull_mask_is_the_authors_hull_of_rounded_matches(coffee, norm, monkeypatch):
    """The mask equals an independent re-implementation of the authors' code: ORB on the 224² gray squash,
    BFMatcher with the chosen norm, ratio 0.75, matched points rounded, scipy Delaunay hull over all pixels."""
    from scipy.spatial import Delaunay

    settings = PAPER.model_copy(update={"norm": norm})
    used = []
    monkeypatch.setattr(product_orb, "ratio_matches",
                        lambda *a: used.append(a[3]) or ratio_matches(*a))
    feats = listing_features(coffee, settings)
    frame = paste(coffee, SCENE, QUAD)
    pm = product_map([frame], feats, settings)
    assert used == [orb_norm(settings)]

    orb = cv2.ORB_create(nfeatures=1000, scoreType=cv2.ORB_FAST_SCORE)
    _, des1 = orb.detectAndCompute(cv2.resize(cv2.cvtColor(coffee, cv2.COLOR_RGB2GRAY), (224, 224)), None)
    kp2, des2 = orb.detectAndCompute(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (224, 224)), None)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING if norm == "hamming" else cv2.NORM_L2)
    good = [m for m, n in matcher.knnMatch(des1, des2, k=2) if m.distance < 0.75 * n.distance]
    rows_cols = np.unique(np.rint([kp2[m.trainIdx].pt for m in good]).astype(int)[:, ::-1], axis=0)
    pixels = np.stack(np.meshgrid(np.arange(224), np.arange(224), indexing="ij"), -1).reshape(-1, 2)
    expected = (Delaunay(rows_cols).find_simplex(pixels) >= 0).reshape(224, 224)
    assert pm.found[0] and pm.inliers[0] == len(rows_cols) and pm.matches[0] == len(good)
    assert np.array_equal(pm.masks[0].astype(bool), expected)


def test_orb_hull_seconds_without_a_hull_are_dropped_or_kept_per_switch(coffee):
    feats = listing_features(coffee, PAPER)
    with_product, blank = paste(coffee, SCENE, QUAD), np.full_like(SCENE, 128)
    pm = product_map([blank, with_product, blank, with_product], feats, PAPER)
    assert pm.found.tolist() == [False, True, False, True] and pm.reasons[0] == "no_matches"
    kept, seconds = drop_unmatched_seconds(pm)
    assert seconds.tolist() == [1, 3] and kept.n_seconds == 2 and kept.found.all()
    assert np.array_equal(kept.masks, pm.masks[[1, 3]])


def test_blank_listing_image_has_no_features():
    with pytest.raises(ProductImageError) as e:
        listing_features(np.full((300, 300, 3), 200, np.uint8), SIFT, name="blank.png")
    assert (e.value.stage, e.value.reason) == ("product", "product_no_features")
    assert "blank.png" in str(e.value)


def test_load_image(tmp_path, coffee):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 2] = 255          # red in BGRA
    rgba[:10, :, 3] = 255       # top opaque, bottom transparent
    cv2.imwrite(str(tmp_path / "cut.png"), rgba)
    img = load_image(str(tmp_path / "cut.png"))
    assert img.shape == (20, 30, 3)
    assert img[0, 0].tolist() == [255, 0, 0] and img[-1, 0].tolist() == [255, 255, 255]
    cv2.imwrite(str(tmp_path / "coffee.jpg"), cv2.cvtColor(coffee, cv2.COLOR_RGB2BGR))
    assert np.abs(load_image((tmp_path / "coffee.jpg").as_uri()).astype(int) - coffee).mean() < 3
    (tmp_path / "notes.jpg").write_text("not an image")
    for path, reason in [(tmp_path / "missing.jpg", "not_found"), (tmp_path / "notes.jpg", "product_image_unreadable")]:
        with pytest.raises(ProductImageError) as e:
            load_image(str(path))
        assert (e.value.stage, e.value.reason) == ("product", reason)


# ---------------------------------------------------------------------------------------------- silhouette
def _cutout_on_white():
    """A real cut-out product (the sample campaign's gift box, alpha known) on a white listing photo."""
    from jobs.synth.products import product_asset

    asset = product_asset("gift-box")
    return asset.listing, asset.alpha >= 128


def test_listing_silhouette_is_the_non_background_of_a_white_listing_photo():
    from pe_udfs.listing import listing_silhouette

    rgb, truth = _cutout_on_white()
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    decoded = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)  # JPEG noise on the white
    sil = listing_silhouette(decoded) > 0
    assert (sil & truth).sum() / (sil | truth).sum() > 0.9 and sil.mean() < 0.8
    # a ring: the white hole inside the product is product, the white outside is not
    ring = np.full((100, 100, 3), 255, np.uint8)
    cv2.circle(ring, (50, 50), 40, (200, 30, 30), 12)
    sil = listing_silhouette(ring) > 0
    assert sil[50, 50] and not sil[2, 2] and sil[50, 12]
    # a photo without a plain border (the coffee table) is all product: the listing rectangle
    assert listing_silhouette(data.coffee()).min() == 255


def test_product_region_is_the_projected_silhouette_or_the_listing_rectangle():
    from pe_udfs.product import silhouette_mask

    rgb, truth = _cutout_on_white()
    frame = paste(rgb, SCENE, QUAD)
    masks = {}
    for region in ("silhouette", "listing_rect"):
        ps = ProductSettings(region=region)
        feats = listing_features(rgb, ps)
        pm = product_map([frame], feats, ps)
        assert pm.found[0]
        masks[region] = pm.masks[0].astype(bool)
    rect = quad_mask(QUAD, 512, 384, 224).astype(bool)
    h, w = truth.shape
    H = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), QUAD)
    true_sil = silhouette_mask(truth.astype(np.uint8) * 255, H, 512, 384, 224).astype(bool)
    iou = lambda a, b: (a & b).sum() / (a | b).sum()
    assert iou(masks["listing_rect"], rect) > 0.95
    assert iou(masks["silhouette"], true_sil) > 0.85 and iou(masks["listing_rect"], true_sil) < 0.75
    assert masks["silhouette"].sum() < 0.8 * masks["listing_rect"].sum()


def test_huge_truncated_and_fake_listing_images_fail_at_the_product_stage(tmp_path):
    """A 10000x10000 PNG is refused from its header (no 400 MB decode); a truncated JPEG and a text file renamed
    .jpg are refused instead of being half-read."""
    import time

    import cv2
    import numpy as np
    import psutil
    from skimage import data

    from pe_udfs.errors import ProductImageError
    from pe_udfs.listing import load_image

    huge = tmp_path / "huge.png"
    cv2.imwrite(str(huge), np.full((10_000, 10_000), 255, np.uint8))  # compresses to a few hundred KB
    rss = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    with pytest.raises(ProductImageError) as e:
        load_image(str(huge))
    assert e.value.reason == "too_large" and "10000x10000" in str(e.value)
    assert time.perf_counter() - t0 < 2 and psutil.Process().memory_info().rss - rss < 200 * 2**20

    good = tmp_path / "cup.jpg"
    cv2.imwrite(str(good), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    assert load_image(str(good)).shape == (400, 600, 3)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size * 3 // 10])
    fake = tmp_path / "fake.jpg"
    fake.write_text("not an image at all\n" * 50)
    for path in (cut, fake):
        with pytest.raises(ProductImageError) as e:
            load_image(str(path))
        assert e.value.stage == "product" and e.value.reason == "product_image_unreadable", str(path)


def test_a_listing_jpeg_whose_header_lies_about_its_size_is_corrupt_not_grey_filler(tmp_path):
    import cv2
    from skimage import data

    from pe_udfs.errors import ProductImageError
    from pe_udfs.listing import load_image
    from tests.hostile_media import lying_jpeg

    small = cv2.resize(data.coffee(), (381, 480))
    path = lying_jpeg(tmp_path / "lie.jpg", small, header=(4900, 4900))  # holds 381x480
    with pytest.raises(ProductImageError) as e:
        load_image(path)
    assert (e.value.stage, e.value.reason) == ("product", "product_image_corrupt")
    assert "4900x4900" in e.value.message and "Corrupt JPEG data" in e.value.message
    honest = tmp_path / "honest.jpg"
    cv2.imwrite(str(honest), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    assert load_image(str(honest)).shape == (480, 381, 3)


def test_every_registered_matcher_maps_the_product_through_one_contract(coffee):
    """Each matcher (pe_udfs.product.MATCHERS) is found by its name in product.method and finds the product."""
    from pe_udfs.listing import ProductMatcher
    from pe_udfs.product import MATCHERS, matcher

    for name, m in MATCHERS.items():
        assert isinstance(m, ProductMatcher) and m.name == name
        settings = ProductSettings(method=name, norm="hamming", drop_unmatched_seconds=False)
        assert matcher(settings) is m
        feats = listing_features(coffee, settings)
        assert feats.method == name
        assert match_frame(paste(coffee, SCENE, QUAD), feats, settings).found, name
    with pytest.raises(ValueError, match="unknown product method 'surf'"):
        matcher(ProductSettings(method="surf"))
