"""Edit advice on hand-made per-second tables whose answers are known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pe_udfs.advice import EDITS, advise_video, region_words, sums_from_seconds
from pe_udfs.errors import UsageError
from pe_udfs.pe_math import scores_from_sums
from pe_udfs.settings import AdviceSettings

AREA = 0.1 * 224 * 224  # a product covering a tenth of the frame


def table(e, share, present, grid_peak=None, g=14) -> pd.DataFrame:
    """pe_seconds-like rows: e_mass e, pe_mass e·share where the product is present, p_mass AREA there;
    the grid peaks at cell ``grid_peak`` (row, col) when given."""
    e = np.asarray(e, float)
    present = np.asarray(present, bool)
    pe = np.where(present, e * np.asarray(share, float), 0.0)
    rows = pd.DataFrame({"second": np.arange(len(e)), "e_mass": e, "pe_mass": pe,
                         "p_mass": np.where(present, AREA, 0.0)})
    if grid_peak is not None:
        grid = np.full((g, g), 0.1, np.float32)
        grid[grid_peak] = 5.0
        rows["e_grid"] = [list(grid.reshape(-1)) for _ in range(len(e))]
    return rows


def test_a_peak_without_the_product_is_flagged_and_showing_it_there_ranks_first():
    # 12 s, product shown at 30 % of the engagement except seconds 6-8, where engagement peaks and it is absent
    e = [100.0] * 12
    e[6:9] = [400.0, 500.0, 400.0]
    present = [True] * 12
    present[6:9] = [False] * 3
    advice = advise_video(table(e, 0.3, present, grid_peak=(2, 1)), AdviceSettings())
    assert [(m.start_s, m.end_s) for m in advice.moments] == [(6, 9)]
    m = advice.moments[0]
    assert not m.product_shown and m.region == "upper left" and m.on_face is None
    assert m.e_share == pytest.approx(1300 / 2200)
    top = advice.suggestions[0]
    assert top.kind == "show_product" and top.seconds == (6, 7, 8)
    # shown at the video's own on-product share (0.3): every second then holds 30 % of its engagement
    assert top.pe_share_now == pytest.approx(0.3 * 900 / 2200)
    assert top.pe_share_after == pytest.approx(0.3)
    assert top.gain == pytest.approx(top.pe_share_after - top.pe_share_now)
    kinds = [s.kind for s in advice.suggestions]
    assert "cut_off_product" in kinds and "show_earlier" not in kinds  # the product is there from 0 s
    assert [s.gain for s in advice.suggestions] == sorted((s.gain for s in advice.suggestions), reverse=True)


def test_a_video_already_on_the_product_gets_no_suggestion():
    rng = np.random.default_rng(3)
    advice = advise_video(table(rng.uniform(50, 500, 20), 0.4, [True] * 20, grid_peak=(7, 7)), AdviceSettings())
    assert advice.moments == [] and advice.suggestions == []
    assert advice.pe_share == pytest.approx(0.4)


def test_a_late_first_appearance_is_advised_earlier_and_scored_on_the_first_seconds():
    e = np.full(15, 200.0)
    present = np.arange(15) >= 4
    advice = advise_video(table(e, 0.5, present), AdviceSettings(edits=["show_earlier"]))
    (s,) = advice.suggestions
    assert s.kind == "show_earlier" and s.seconds == (0, 1, 2, 3)
    assert s.pe_share_6s_now == pytest.approx(0.5 * 2 / 6) and s.pe_share_6s_after == pytest.approx(0.5)


def test_cutting_removes_the_flagged_seconds_and_the_score_is_the_one_pe_math_gives():
    e = np.array([100.0, 100, 900, 900, 100, 100, 100, 100])
    present = np.ones(8, bool)
    share = np.where(np.arange(8) // 2 == 1, 0.01, 0.4)  # seconds 2, 3: engaged, product off the action
    rows = table(e, share, present)
    advice = advise_video(rows, AdviceSettings(edits=["cut_off_product"]))
    (s,) = advice.suggestions
    assert s.seconds == (2, 3)
    kept = rows[~rows["second"].isin([2, 3])]
    assert s.pe_share_after == pytest.approx(scores_from_sums(sums_from_seconds(kept))["pe_share"])


def test_at_most_max_suggestions_and_small_gains_dropped():
    e = np.tile([100.0, 600.0], 15)  # 15 separate one-second peaks without the product
    present = np.tile([True, False], 15)
    advice = advise_video(table(e, 0.3, present), AdviceSettings(max_suggestions=2))
    assert len(advice.moments) == 15 and len(advice.suggestions) == 2
    none = advise_video(table(e, 0.3, present), AdviceSettings(min_gain=0.9))
    assert none.suggestions == [] and len(none.moments) == 15


def test_region_words_cover_the_frame():
    g = np.zeros((14, 14))
    g[12, 12] = 1
    assert region_words(g)[0] == "lower right"
    g = np.zeros((14, 14))
    g[7, 7] = 1
    words, (x, y) = region_words(g)
    assert words == "centre" and x == pytest.approx(120) and y == pytest.approx(120)


def test_a_face_at_the_engaged_place_is_named(tmp_path):
    import cv2

    from jobs.synth.footage import PERSON_KEYS, person_asset

    person = person_asset(PERSON_KEYS[0])
    frame = cv2.resize(person.frames[0], (224, 224))
    fx, fy, fw, fh = person.faces[0]
    h, w = person.frames.shape[1:3]
    cx, cy = (fx + fw / 2) * 224 / w, (fy + fh / 2) * 224 / h
    e = [100.0] * 6
    e[3] = 800.0
    present = [True] * 6
    present[3] = False
    rows = table(e, 0.3, present, grid_peak=(int(cy / 16), int(cx / 16)))
    (m,) = advise_video(rows, frames={3: frame}).moments
    assert m.on_face is True
    (m,) = advise_video(rows, frames={3: np.zeros_like(frame)}).moments
    assert m.on_face is False


def test_unusable_rows_and_unknown_edits_are_refused():
    with pytest.raises(UsageError, match="no_engagement|product only"):
        advise_video(pd.DataFrame({"second": [0], "e_mass": [None], "pe_mass": [None], "p_mass": [1.0]}))
    with pytest.raises(UsageError) as err:
        advise_video(table([1.0], 0.1, [True]), AdviceSettings(edits=["teleport"]))
    assert err.value.reason == "unknown_edit"
    assert set(AdviceSettings().edits) <= set(EDITS)
