"""pe report: overlay images, per-second curves and percentiles (pure), pages from a tiny PyAV video, and the
lake-backed video and campaign reports (Spark, slow)."""
from __future__ import annotations

import datetime as dt
import os
import re

import numpy as np
import pandas as pd
import pytest

from jobs.report.figures import heat_vmax, overlay_frame, percentiles, strip_seconds
from jobs.report.pages import render_video_page
from jobs.report.write import ReportError, best_video_id, write_campaign_report, write_video_report

GRID = 14


def make_video(path, seconds: int = 4, fps: int = 10, size: int = 96) -> str:
    """An H.264 MP4 (PyAV): a grey gradient with a bright square that moves one step per second."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for i in range(seconds * fps):
            img = np.tile(np.linspace(40, 200, size, dtype=np.uint8), (size, 1))[..., None].repeat(3, axis=2)
            x = 8 + 16 * (i // fps)
            img[30:60, x:x + 24] = (250, 60, 60)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return str(path)


def seconds_rows(video_id: str, n: int, version: str = "1") -> pd.DataFrame:
    """pe_seconds rows: engagement concentrated in one grid cell that moves right each second; the product
    found (quad drawn) on odd seconds."""
    rows = []
    for s in range(n):
        grid = np.zeros((GRID, GRID), np.float32)
        grid[5, min(GRID - 1, 2 + 3 * s)] = 1.0
        found = s % 2 == 1
        rows.append({"video_id": video_id, "model_version": version, "second": s, "e_mass": float(100 + 10 * s),
                     "pe_mass": float(20 * s if found else 0), "p_mass": float(5000 if found else 0),
                     "product_found": found, "inliers": 30 if found else 0,
                     "quad_224": [40.0, 40.0, 180.0, 40.0, 180.0, 180.0, 40.0, 180.0] if found else None,
                     "e_grid": grid.reshape(-1).tolist(), "run_id": "score-test"})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------- pure

def test_overlay_changes_the_hot_region_and_draws_the_product_quad():
    frame = np.full((224, 224, 3), 128, np.uint8)
    grid = np.zeros(GRID * GRID)
    grid[2 * GRID + 2] = 1.0  # hot cell near the top-left corner
    heat = overlay_frame(frame, grid, None)
    assert heat.shape == frame.shape and heat.dtype == np.uint8
    diff = np.abs(heat.astype(int) - frame.astype(int)).sum(axis=2)
    assert diff[40, 40] > 60  # inside the hot cell (cells are 16 px)
    assert diff[200, 200] == 0  # cold: the frame shows through unchanged
    quad = [50.0, 60.0, 170.0, 60.0, 170.0, 150.0, 50.0, 150.0]
    drawn = overlay_frame(frame, None, quad)
    assert tuple(drawn[60, 110]) == (0, 255, 0) and tuple(drawn[150, 110]) == (0, 255, 0)  # the quad's edges
    assert tuple(drawn[100, 110]) == (128, 128, 128)  # inside stays untouched
    np.testing.assert_array_equal(overlay_frame(frame, None, None), frame)


def test_overlay_on_a_portrait_frame_maps_heat_and_quad_back_from_the_square_model_frame():
    """A 9:16 frame (320 × 180): the model saw it squashed to 224², so the heat cell and the quad stored on
    that square land at the same fractions of the frame's width and height."""
    frame = np.full((320, 180, 3), 128, np.uint8)
    grid = np.zeros(GRID * GRID)
    grid[2 * GRID + 11] = 1.0  # row 2, column 11 of 14: near the top right
    quad = [112.0, 112.0, 224.0, 112.0, 224.0, 224.0, 112.0, 224.0]  # the bottom-right quarter of the square
    out = overlay_frame(frame, grid, quad, quad_size=224)
    assert out.shape == frame.shape
    diff = np.abs(out.astype(int) - frame.astype(int)).sum(axis=2)
    cy, cx = int(320 * 2.5 / GRID), int(180 * 11.5 / GRID)  # the hot cell's centre on the frame
    assert diff[cy, cx] > 60 and diff[cy, 180 - cx] == 0 and diff[320 - cy, cx] == 0
    assert tuple(out[160, 135]) == (0, 255, 0) and tuple(out[240, 90]) == (0, 255, 0)  # top and left edges at ½
    assert tuple(out[240, 135]) == (128, 128, 128)  # inside the quad
    square = overlay_frame(frame, None, quad)  # without quad_size the quad is in the frame's own pixels
    assert tuple(square[160, 135]) == (128, 128, 128) and tuple(square[112, 150]) == (0, 255, 0)


def test_overlay_scales_by_the_videos_maximum_and_rejects_bad_grids():
    frame = np.zeros((224, 224, 3), np.uint8)
    grid = np.zeros(GRID * GRID)
    grid[100] = 0.5
    half = overlay_frame(frame, grid, None, vmax=1.0)
    full = overlay_frame(frame, grid, None)
    assert half.sum() < full.sum()  # same cell, dimmer when the video's maximum is higher
    assert heat_vmax([grid, None, np.ones(4) * 0.2]) == 0.5
    with pytest.raises(ValueError):
        overlay_frame(frame, np.zeros(10), None)


def test_strip_seconds_and_percentiles():
    assert strip_seconds(3, 8) == [0, 1, 2]
    assert strip_seconds(60, 4) == [0, 20, 39, 59]
    assert strip_seconds(0, 4) == []
    campaign = pd.DataFrame({"pe_share": [0.1, 0.2, 0.3, 0.4], "e_score": [4.0, 3.0, 2.0, 1.0]})
    p = percentiles(pd.Series({"pe_share": 0.3, "e_score": 2.0}), campaign).set_index("score")
    assert p.loc["pe_share", "percentile"] == 75.0 and p.loc["pe_share", "rank"] == 2
    assert p.loc["e_score", "percentile"] == 50.0 and p.loc["e_score", "rank"] == 3


def test_video_page_from_a_real_video_is_offline_with_overlays_that_differ_from_the_frames(tmp_path):
    from jobs.config import load_config
    from pe_udfs.video import sample_video

    cfg = load_config(lake=str(tmp_path))
    uri = make_video(tmp_path / "v.mp4")
    frames = sample_video(uri, cfg.clip, allowed_roots=[str(tmp_path)]).match_frames
    assert len(frames) == 4 and frames[0].shape == (96, 96, 3)
    score = pd.Series({"video_id": "vid/1", "model_version": "1", "pe_raw": 0.01, "pe_share": 0.3, "e_score": 5.0,
                       "p_score": 9.0})
    campaign = pd.DataFrame({"video_id": ["vid/1", "b", "c"], "pe_share": [0.3, 0.1, 0.5], "e_score": [5.0, 6, 7],
                             "pe_raw": [0.01, 0.02, 0.03], "p_score": [9.0, 1, 2]})
    out = tmp_path / "R"
    page = render_video_page(str(out), score, seconds_rows("vid/1", 4), campaign, frames, quad_size=224, strip=3,
                             meta={"campaign": "c1"})
    html = open(page.html, encoding="utf-8").read()
    assert os.path.basename(page.html) == "video-vid_1.html"
    srcs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert srcs and all(not s.startswith(("http:", "https:", "//")) for s in srcs)
    for s in srcs:
        assert (out / s).is_file(), s
    import matplotlib.image as mpimg

    overlays = sorted(p for p in page.images if "overlay-" in p)
    assert len(overlays) == 3
    for path in overlays:
        raw = mpimg.imread(path.replace("overlay-", "frame-"))
        over = mpimg.imread(path)
        changed = np.abs(raw - over)[..., :3].max(axis=2)
        assert raw.shape == over.shape and changed.max() > 0.2  # the hot cell is recoloured
        assert (changed > 0.05).mean() > 0.004  # at least about one of the 14 x 14 cells
    assert "curves.png" in html and "75" not in html.split("Within the campaign")[0][-5:]
    assert ">2<" in html  # rank 2 of 3 by pe_share


def test_campaign_page_shows_the_latest_evaluation(tmp_path):
    from jobs.report.pages import render_campaign_page

    board = pd.DataFrame({"video_id": ["a", "b"], "pe_share": [0.2, 0.4], "model_version": ["3", "3"]})
    ev = pd.DataFrame({"model_version": "3", "run": "evaluate-x-v3",
                       "metric": ["spearman_pe_share", "spearman_area_only", "spearman_pe_share", "spearman_area_only"],
                       "scope": ["all", "all", "prop", "prop"], "value": [0.61, 0.12, -0.2, 0.3],
                       "ci_low": [0.5, 0.0, -0.5, 0.0], "ci_high": [0.7, 0.25, 0.1, 0.6], "n": [200, 200, 34, 34]})
    html = open(render_campaign_page(str(tmp_path), "c", board, {}, evaluation=ev), encoding="utf-8").read()
    assert "Evaluation against the sample campaign" in html and "evaluate-x-v3" in html
    assert "[0.5, 0.7]" in html and ">prop<" in html and "-0.2" in html
    plain = open(render_campaign_page(str(tmp_path), "d", board, {}), encoding="utf-8").read()
    assert "Evaluation against" not in plain


def test_video_page_without_frames_still_has_scores_and_curves(tmp_path):
    score = pd.Series({"video_id": "v", "model_version": "1", "pe_share": 0.3})
    page = render_video_page(str(tmp_path), score, seconds_rows("v", 3), pd.DataFrame([score]), None,
                             frames_error="decode/unreadable: broken")
    html = open(page.html, encoding="utf-8").read()
    assert "Frames unavailable: decode/unreadable: broken" in html
    assert [os.path.basename(p) for p in page.images] == ["curves.png"]


# ------------------------------------------------------------------------------------------- lake (Spark)

def contract_frame(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every column of the table's contract, in order (absent ones null)."""
    from jobs.storage.contracts import contract

    return frame.reindex(columns=contract(name).columns).astype(object).where(lambda f: f.notna(), None)


@pytest.fixture
def scored_lake(lake, cfg, tmp_path):
    media = os.path.join(cfg.lake_path, "media")
    os.makedirs(media, exist_ok=True)
    uris = [make_video(os.path.join(media, f"v{i}.mp4"), seconds=3) for i in range(2)]
    now = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    lake.write_arrow("campaign_videos", contract_frame("campaign_videos", pd.DataFrame({
        "video_id": ["v0", "v1", "v2"], "video_uri": [uris[0], uris[1], os.path.join(media, "missing.mp4")],
        "product_id": ["p0", "p1", "p2"], "product_image_uri": None, "influencer_id": ["i0", "i1", "i0"],
        "campaign_id": "camp", "own_product": False, "published_at": now, "ingested_at": now})))
    scores = pd.DataFrame({"video_id": ["v0", "v1", "v2"], "model_version": "1", "pe_raw": [0.01, 0.02, 0.03],
                           "pe_share": [0.2, 0.6, 0.4], "pe_lift": 1.5, "e_score": [10.0, 20.0, 30.0],
                           "p_score": 100.0, "n_seconds": 3, "product_found_seconds": 1, "scored_at": now})
    lake.write_arrow("pe_scores", contract_frame("pe_scores", scores))
    lake.write_arrow("pe_seconds", contract_frame("pe_seconds", pd.concat([seconds_rows(v, 3) for v in ("v0", "v1", "v2")],
                                                                         ignore_index=True)))
    return lake


@pytest.mark.slow
def test_video_and_campaign_reports_from_the_lake(scored_lake, cfg, tmp_path):
    out = tmp_path / "R"
    assert best_video_id(scored_lake) == "v1"
    page = write_video_report(cfg, scored_lake, "v1", str(out), strip=3)
    assert page.frames_error is None
    html = open(page.html, encoding="utf-8").read()
    assert "camp" in html and len([p for p in page.images if "overlay-" in p]) == 3
    assert "What to change" in html and any("missed-002" in p for p in page.images)
    assert all(os.path.isfile(p) for p in page.images)
    missing = write_video_report(cfg, scored_lake, "v2", str(out))
    assert missing.frames_error and missing.frames_error.startswith("fetch/not_found")
    with pytest.raises(ReportError) as err:
        write_video_report(cfg, scored_lake, "nope", str(out))
    assert err.value.reason == "video_not_found"

    board = write_campaign_report(cfg, scored_lake, None, str(out))  # the only campaign
    html = open(board, encoding="utf-8").read()
    # the page opens with the engagement-vs-PE chart and the largest achievable gains (the fixture's videos
    # miss the product at their engaged second 2), then the leaderboard
    assert html.index("chart.png") < html.index("Largest achievable gains") < html.index("Leaderboard")
    leaderboard = html.split("Leaderboard")[1]
    order = [leaderboard.index(f">{v}<") for v in ("v1", "v2", "v0")]  # ranked by pe_share: 0.6, 0.4, 0.2
    assert order == sorted(order)
    thumbs = re.findall(r'class="thumb" src="([^"]+)"', html)
    assert len(thumbs) == 2 and all((out / t).is_file() for t in thumbs)
    with pytest.raises(ReportError) as err:
        write_campaign_report(cfg, scored_lake, "other", str(out))
    assert err.value.reason == "campaign_not_found"


def test_campaign_page_leads_with_the_test_influencers_and_names_the_best_rule(tmp_path):
    from jobs.report.pages import render_campaign_page

    board = pd.DataFrame({"video_id": ["a"], "pe_share": [0.2], "model_version": ["3"]})
    ev = pd.DataFrame({"model_version": "3", "run": "evaluate-y-v3",
                       "metric": ["spearman_pe_share", "spearman_best_baseline", "spearman_pe_share_window",
                                  "spearman_pe_share_minus_area_only", "spearman_pe_share"],
                       "scope": ["all", "test", "test", "test", "test"], "value": [0.3, 0.66, 0.1, 0.2, 0.01],
                       "ci_low": [0.1, 0.4, 0.0, 0.0, -0.3], "ci_high": [0.5, 0.8, 0.2, 0.4, 0.3], "n": [200, 50, 50, 50, 50],
                       "detail": [None, "product_speed", None, None, None]})
    html = open(render_campaign_page(str(tmp_path), "c", board, {}, evaluation=ev), encoding="utf-8").read()
    assert "spearman_best_baseline (product_speed) — test influencers" in html
    assert html.index("— test influencers") < html.index("[0.1, 0.5]")  # the headline comes first
    assert "spearman_pe_share_window" not in html and "minus_area_only" not in html  # left in the table
