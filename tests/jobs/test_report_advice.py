"""The reports' "What to change" section, the campaign's engagement-vs-PE chart and largest gains, and numbers
written for people (pure: pages from frames and tables in memory)."""
from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd

from jobs.report.pages import fmt_score, render_campaign_page, render_video_page
from pe_udfs.advice import advise_video
from tests.jobs.test_report import make_video, seconds_rows


def test_numbers_are_for_people():
    assert fmt_score("e_score", 13590.2) == "13,590"
    assert fmt_score("pe_share", 0.1234) == "12.3 %"
    assert fmt_score("percentile", 75.0) == "75.0 %"
    assert fmt_score("pe_raw", 0.000123456) == "0.0001235"
    assert fmt_score("pe_share", None) == "–" and fmt_score("e_score", float("nan")) == "–"


def test_video_page_says_what_to_change_with_the_missed_moments_frames(tmp_path):
    from jobs.config import load_config
    from pe_udfs.video import sample_video

    cfg = load_config(lake=str(tmp_path))
    frames = sample_video(make_video(tmp_path / "v.mp4"), cfg.clip, allowed_roots=[str(tmp_path)]).match_frames
    seconds = seconds_rows("v", 4)  # product found on odd seconds; engagement rises: 2 s is engaged without it
    advice = advise_video(seconds, cfg.advice)
    assert [(m.start_s, m.end_s) for m in advice.moments] == [(2, 3)] and advice.suggestions
    score = pd.Series({"video_id": "v", "model_version": "1", "pe_share": 0.123, "e_score": 13590.0})
    page = render_video_page(str(tmp_path / "R"), score, seconds, pd.DataFrame([score]), frames, quad_size=224,
                             advice=advice)
    html = open(page.html, encoding="utf-8").read()
    section = html.split("What to change")[1].split("Per second")[0]
    assert advice.suggestions[0].text in section
    assert f"{100 * advice.suggestions[0].pe_share_after:.1f} %" in section
    assert "2-3 s: the product is not shown" in section
    assert [os.path.basename(p) for p in page.images if "missed-" in p] == ["missed-002.png"]
    assert "13,590" in html and "12.3 %" in html and "1.359e+04" not in html
    plain = open(render_video_page(str(tmp_path / "P"), score, seconds, pd.DataFrame([score]), None).html,
                 encoding="utf-8").read()
    assert "What to change" not in plain


def test_campaign_page_opens_with_the_chart_and_lists_the_largest_gains(tmp_path):
    rng = np.random.default_rng(0)
    board = pd.DataFrame({"video_id": [f"v{i}" for i in range(8)], "pe_share": rng.uniform(0, 0.3, 8),
                          "predicted_engagement": rng.normal(size=8), "e_score": 13590.0, "model_version": "1"})
    gains = pd.DataFrame({"video_id": ["v1", "v2"], "gain": [0.02, 0.08], "text": ["edit one", "edit two"],
                          "pe_share_now": [0.1, 0.05], "pe_share_after": [0.12, 0.13]})
    path = render_campaign_page(str(tmp_path), "c", board, {}, gains=gains)
    html = open(path, encoding="utf-8").read()
    assert html.index("chart.png") < html.index("Largest achievable gains") < html.index("Leaderboard")
    assert (tmp_path / "campaign-c_files" / "chart.png").is_file()
    rows = re.findall(r"<tr><td>(v\d)</td><td[^>]*>(edit \w+)</td>", html)
    assert rows == [("v2", "edit two"), ("v1", "edit one")]
    assert "+8.0 points" in html and "13,590" in html
