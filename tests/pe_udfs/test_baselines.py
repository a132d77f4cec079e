"""pe_udfs.baselines: model-free PE baselines and product-map agreement, on hand-made frames and masks."""
from __future__ import annotations

import numpy as np
import pytest

from pe_udfs.baselines import baseline_shares, centre_prior, mask_agreement, product_masks
from pe_udfs.product import quad_mask


def test_product_masks_rebuild_the_rectangle_or_the_silhouette_from_the_quads():
    quad = [40.0, 40.0, 120.0, 40.0, 120.0, 100.0, 40.0, 100.0]  # an axis-aligned 80x60 rectangle on the grid
    rect = product_masks([quad, None], None)
    assert rect.shape == (2, 224, 224) and rect[1].sum() == 0
    assert np.array_equal(rect[0], quad_mask(np.float32(quad).reshape(4, 2), 224, 224, 224))
    silhouette = np.zeros((60, 80), np.uint8)
    silhouette[:, :40] = 255  # the left half of the listing is product
    sil = product_masks([quad], silhouette)[0]
    assert sil[40:100, 41:79].all() and sil[:, 81:120].sum() == 0
    assert sil.sum() == pytest.approx(rect[0].sum() / 2, rel=0.05)


def test_centre_prior_pe_is_higher_for_a_centred_product_of_the_same_size():
    g = centre_prior(224)
    assert g.max() == pytest.approx(1.0, abs=1e-3) and g[112, 112] > g[10, 10]
    frames = np.full((1, 224, 224, 3), 128, np.uint8)
    centred, corner = np.zeros((1, 224, 224), np.uint8), np.zeros((1, 224, 224), np.uint8)
    centred[0, 92:132, 92:132] = 1
    corner[0, :40, :40] = 1
    a, b = baseline_shares(frames, centred), baseline_shares(frames, corner)
    assert a["area_only"] == b["area_only"] == pytest.approx(1600 / 224**2)
    assert a["centre_prior"] > 5 * b["centre_prior"]


def test_spectral_residual_pe_follows_the_salient_patch():
    rng = np.random.default_rng(0)
    frames = rng.integers(100, 140, (2, 224, 224, 3)).astype(np.uint8)  # faint texture everywhere
    frames[:, 160:190, 30:60] = 255  # one bright object
    on, off = np.zeros((2, 224, 224), np.uint8), np.zeros((2, 224, 224), np.uint8)
    on[:, 150:200, 20:70] = 1
    off[:, 20:70, 150:200] = 1  # the same area elsewhere
    assert baseline_shares(frames, on)["spectral_residual"] > \
        3 * baseline_shares(frames, off)["spectral_residual"]


def test_mask_agreement_kinds_and_iou():
    masks = np.zeros((3, 4, 4), np.uint8)
    masks[0, :2, :2] = 1  # 4 cells, truth 8 cells, overlap 4 → IoU 0.5
    masks[2, 0, 0] = 1  # marked where the product is absent
    truth = [np.zeros((4, 4), bool), None, None]
    truth[0][:2, :] = True
    rows = mask_agreement(masks, np.array([True, False, True]), truth, [True, False, False])
    assert [r["kind"] for r in rows] == ["visible", "absent", "absent"]
    assert rows[0]["iou"] == pytest.approx(0.5) and [r["found"] for r in rows[1:]] == [False, True]


def _moving_square(positions: list[tuple[int, int]], size: int = 30) -> tuple[np.ndarray, np.ndarray]:
    frames = np.full((len(positions), 224, 224, 3), 90, np.uint8)
    masks = np.zeros((len(positions), 224, 224), np.uint8)
    for s, (x, y) in enumerate(positions):
        frames[s, y:y + size, x:x + size] = 230
        masks[s, y:y + size, x:x + size] = 1
    return frames, masks


def test_motion_in_mask_and_product_speed_see_a_moving_product_not_a_still_one():
    moving = _moving_square([(20, 100), (80, 100), (140, 100)])
    still = _moving_square([(80, 100)] * 3)
    assert baseline_shares(*still, ["motion_in_mask"])["motion_in_mask"] == 0.0  # nothing changed
    assert baseline_shares(*moving, ["motion_in_mask"])["motion_in_mask"] > 0.3
    # centroid steps of 60 px in seconds 1 and 2, none before: (0 + 60 + 60) / 224 / 3 seconds
    assert baseline_shares(*moving, ["product_speed"])["product_speed"] == pytest.approx(120 / 224 / 3, rel=1e-6)
    assert baseline_shares(*still, ["product_speed"])["product_speed"] == 0.0


def test_face_distance_is_one_without_faces_and_zero_where_the_product_is_not_found():
    frames, masks = _moving_square([(80, 100)] * 2)
    masks[1] = 0
    assert baseline_shares(frames, masks, ["face_distance"])["face_distance"] == pytest.approx(0.5)  # (1 + 0) / 2


def test_steady_shots_counts_found_seconds_that_do_not_start_a_shot():
    frames, masks = _moving_square([(80, 100)] * 4)
    frames[2] = 255 - frames[2]  # a cut: a different picture
    frames[2, :, :, 1] = 0
    # second 0 starts the video (a shot), 2 is a cut, 3 follows the cut: the found, steady ones are 1 only
    # (3 changes back from the cut picture too)
    assert baseline_shares(frames, masks, ["steady_shots"])["steady_shots"] == pytest.approx(0.25)


def test_every_registered_baseline_scores_and_unknown_names_are_errors():
    frames, masks = _moving_square([(20, 100), (80, 100)])
    out = baseline_shares(frames, masks)
    assert set(out) == {"area_only", "centre_prior", "spectral_residual", "motion_in_mask", "product_speed",
                        "face_distance", "steady_shots"}
    assert all(np.isfinite(v) for v in out.values())
    with pytest.raises(ValueError):
        baseline_shares(frames, masks, ["nope"])
