"""The HTML pages of ``pe report`` (Jinja templates in jobs/templates): a video's page (frame strip with overlays,
curves, scores and percentiles) and a campaign's leaderboard, from frames and score tables already in memory.
Both write the page and its PNG images into the output folder, so the page opens offline."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from jobs.report.figures import (
    curves_figure,
    engagement_pe_figure,
    heat_vmax,
    overlay_frame,
    percentiles,
    save_png,
    strip_seconds,
)
from pe_udfs.advice import VideoAdvice

#: Scores shown on the pages, with their meaning.
SCORE_FIELDS = {
    "pe_share": "share of the engagement that falls on the product",
    "pe_raw": "PE score: Σ e·p / (S·224·224), the paper's equation 1",
    "pe_lift": "engagement on the product relative to its size",
    "e_score": "total engagement Σ e",
    "p_score": "product presence Σ p (pixels × seconds)",
    "pe_share_6s": "share of engagement on the product in the first 6 seconds",
    "predicted_engagement": "the model's predicted engagement (standardised)",
}

#: scores that are shares (shown as percentages) and sums or counts (shown with thousands separators)
SHARE_FIELDS = frozenset({"pe_share", "pe_share_6s", "percentile"})
COUNT_FIELDS = frozenset({"e_score", "e_score_6s", "p_score", "p_score_6s", "e_mass", "p_mass", "pe_mass",
                          "product_found_seconds", "n_seconds", "videos", "scored"})


def fmt_score(name: str, v: Any) -> str:
    """A number for people: shares as percentages ('12.3 %'), sums and counts with thousands separators
    ('13,590'), other scores to 4 significant digits; '–' when missing."""
    if v is None or (isinstance(v, (float, np.floating)) and not np.isfinite(v)):
        return "–"
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
        if name in SHARE_FIELDS:
            return f"{float(v):.1f} %" if name == "percentile" else f"{100 * float(v):.1f} %"
        if name in COUNT_FIELDS:
            return f"{float(v):,.0f}"
    return _fmt(v)


@dataclass
class VideoReport:
    """A written video page: ``html`` (its path; also ``str(report)``), the image files, and why the frames
    are missing (None when they are shown)."""

    html: str
    images: list[str] = field(default_factory=list)
    frames_error: str | None = None

    def __str__(self) -> str:
        return self.html


def render_video_page(out_dir: str, score: pd.Series, seconds: pd.DataFrame, campaign_scores: pd.DataFrame,
                      frames: Sequence[np.ndarray] | None, *, quad_size: int | None = None,
                      meta: dict[str, Any] | None = None, strip: int = 8,
                      frames_error: str | None = None, advice: VideoAdvice | None = None) -> VideoReport:
    """Write ``video-<id>.html`` and its images into ``out_dir``.

    score: the video's ``pe_scores`` row; seconds: its ``pe_seconds`` rows (same model version);
    campaign_scores: ``pe_scores`` rows of the campaign's videos (for percentiles); frames: S frames (H, W, 3)
    uint8 at the video's aspect ratio (None when the video could not be decoded: ``frames_error`` says why);
    quad_size: the model frame's size, which the stored quads are on (see :func:`overlay_frame`); advice: the
    video's edit advice (``pe_udfs.advice.advise_video``) for the "What to change" section, None to leave it out.
    """
    from jobs.templates import render_template

    vid = str(score["video_id"])
    img_dir = os.path.join(out_dir, f"video-{slug(vid)}_files")
    os.makedirs(img_dir, exist_ok=True)
    rel = os.path.basename(img_dir)
    seconds = seconds.sort_values("second").reset_index(drop=True)
    by_second = {int(r["second"]): r for _, r in seconds.iterrows()}
    vmax = heat_vmax([r.get("e_grid") for r in by_second.values()])
    tiles, images = [], []
    if frames is not None and len(frames):
        n = min(len(frames), int(seconds["second"].max()) + 1 if len(seconds) else len(frames))
        for sec in strip_seconds(n, strip):
            row = by_second.get(sec)
            grid = as_list(row.get("e_grid")) if row is not None else None
            quad = as_list(row.get("quad_224")) if row is not None else None
            raw_path = save_png(frames[sec], os.path.join(img_dir, f"frame-{sec:03d}.png"))
            over_path = save_png(overlay_frame(frames[sec], grid, quad, quad_size=quad_size, vmax=vmax),
                                  os.path.join(img_dir, f"overlay-{sec:03d}.png"))
            images += [raw_path, over_path]
            found = bool(row["product_found"]) if row is not None and pd.notna(row.get("product_found")) else False
            tiles.append({"src": f"{rel}/{os.path.basename(over_path)}", "raw": f"{rel}/{os.path.basename(raw_path)}",
                          "caption": f"{sec} s · Σe {fmt_score('e_mass', _get(row, 'e_mass'))} · "
                                     f"{'product found' if found else 'no product'}"})
    curves = None
    if len(seconds):
        curves = curves_figure(seconds, os.path.join(img_dir, "curves.png"), title=f"video {vid}")
        images.append(curves)
    pct = percentiles(score, campaign_scores)
    change = _change_section(advice, by_second, frames, img_dir, rel, quad_size, vmax)
    images += change.pop("images") if change else []
    score_rows = [{"name": k, "value": fmt_score(k, score.get(k)), "meaning": v} for k, v in SCORE_FIELDS.items()
                  if k in score and pd.notna(score.get(k))]
    html_path = os.path.join(out_dir, f"video-{slug(vid)}.html")
    page = render_template(
        "video_report.html.j2", title=f"Video {vid}", meta={k: _fmt(v) for k, v in (meta or {}).items()},
        tiles=tiles, frames_error=frames_error, curves=f"{rel}/curves.png" if curves else None,
        scores=score_rows, change=change, n_campaign=f"{len(campaign_scores):,}",
        percentiles=[{k: fmt_score(r["score"] if k == "value" else k, v) for k, v in r.items()}
                     for r in pct.to_dict("records")])
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(page)
    return VideoReport(html_path, images, frames_error)


def _change_section(advice: VideoAdvice | None, by_second: dict, frames, img_dir: str, rel: str,
                    quad_size: int | None, vmax: float | None) -> dict | None:
    """Template data of "What to change": the suggestions (PE now → after, as predicted) and each missed moment
    in words, with its most engaged second's frame, overlay and product outline when frames are available."""
    if advice is None:
        return None
    moments, images = [], []
    for m in advice.moments:
        peak = max(m.seconds, key=lambda s: float(_get(by_second.get(s), "e_mass") or 0.0))
        tile = None
        if frames is not None and peak < len(frames):
            row = by_second.get(peak)
            path = save_png(overlay_frame(frames[peak], as_list(_get(row, "e_grid")), as_list(_get(row, "quad_224")),
                                          quad_size=quad_size, vmax=vmax),
                            os.path.join(img_dir, f"missed-{peak:03d}.png"))
            images.append(path)
            tile = f"{rel}/{os.path.basename(path)}"
        moments.append({"words": m.words(), "src": tile, "caption": f"{peak} s, the moment's most engaged second",
                        "share": fmt_score("pe_share", m.e_share)})
    suggestions = [{"rank": i + 1, "text": s.text, "now": fmt_score("pe_share", s.pe_share_now),
                    "after": fmt_score("pe_share", s.pe_share_after),
                    "now_6s": fmt_score("pe_share", s.pe_share_6s_now),
                    "after_6s": fmt_score("pe_share", s.pe_share_6s_after)}
                   for i, s in enumerate(advice.suggestions)]
    return {"moments": moments, "suggestions": suggestions, "images": images,
            "reference": fmt_score("pe_share", advice.reference_share)}


def render_campaign_page(out_dir: str, campaign_id: str, board: pd.DataFrame, thumbnails: dict[str, str | None],
                         *, rank_by: str = "pe_share", meta: dict[str, Any] | None = None,
                         evaluation: pd.DataFrame | None = None, gains: pd.DataFrame | None = None,
                         top_gains: int = 10) -> str:
    """Write ``campaign-<id>.html``: ``board`` (one row per video with scores; sorted here by ``rank_by``,
    highest first) and ``thumbnails`` (video_id → image path relative to ``out_dir``, or None);
    ``evaluation``: rows of the ``evaluations`` table to show (one run), or None; ``gains``: per video the best
    suggested edit (video_id, gain, text, pe_share_now, pe_share_after), the ``top_gains`` largest listed.
    The page opens with PE against engagement per video (``chart.png``)."""
    from jobs.templates import render_template

    board = board.sort_values(rank_by, ascending=False, na_position="last").reset_index(drop=True)
    cols = [c for c in ("pe_share", "pe_raw", "pe_lift", "e_score", "p_score", "product_found_seconds",
                        "n_seconds", "model_version") if c in board]
    rows = []
    for i, r in board.iterrows():
        rows.append({"rank": i + 1, "video_id": r["video_id"], "influencer_id": _fmt(r.get("influencer_id")),
                     "thumb": thumbnails.get(str(r["video_id"])), "cells": [fmt_score(c, r.get(c)) for c in cols],
                     "note": r.get("thumb_note")})
    path = os.path.join(out_dir, f"campaign-{slug(campaign_id)}.html")
    files = os.path.join(out_dir, f"campaign-{slug(campaign_id)}_files")
    os.makedirs(files, exist_ok=True)
    engagement_pe_figure(board, os.path.join(files, "chart.png"))
    best = []
    if gains is not None and len(gains):
        top = gains.dropna(subset=["gain"]).sort_values("gain", ascending=False).head(top_gains)
        best = [{"video_id": g["video_id"], "text": g["text"], "now": fmt_score("pe_share", g["pe_share_now"]),
                 "after": fmt_score("pe_share", g["pe_share_after"]),
                 "gain": f"+{100 * g['gain']:.1f} points"} for _, g in top.iterrows()]
    page = render_template("campaign_report.html.j2", title=f"Campaign {campaign_id}", rank_by=rank_by,
                           columns=cols, rows=rows, meta={k: fmt_score(k, v) for k, v in (meta or {}).items()},
                           evaluation=_evaluation_rows(evaluation), chart=f"{os.path.basename(files)}/chart.png",
                           gains=best)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path


def _evaluation_rows(ev: pd.DataFrame | None) -> dict | None:
    """Template data: the run, its metrics on the model's test influencers (the headline) and on all videos (not
    the scored-window variants nor the difference against each single rule: those stay in the table), and
    Spearman of pe_share vs area-only per scenario."""
    if ev is None or ev.empty:
        return None
    metric = ev["metric"].astype(str)
    shown = ev[ev["scope"].isin(["test", "all"]) & ~metric.str.endswith("_window")
               & ~(metric.str.contains("_minus_") & ~metric.str.endswith("_minus_best_baseline"))]
    shown = shown.assign(order=shown["scope"].map({"test": 0, "all": 1})).sort_values("order", kind="stable")
    detail = shown["detail"] if "detail" in shown.columns else pd.Series(None, index=shown.index)
    overall = [{"metric": (f"{r['metric']} ({detail[i]})" if isinstance(detail[i], str) else r["metric"])
                + ("" if r["scope"] == "all" else " — test influencers"),
                "value": _fmt(r["value"]), "ci": f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]",
                "n": int(r["n"])} for i, r in shown.iterrows()]
    per = ev[~ev["scope"].isin(["all", "test"]) & ev["metric"].isin(["spearman_pe_share", "spearman_area_only", "mean_pe_share",
                                                         "mean_true_pe", "product_iou_median"])]
    table = per.pivot_table(index="scope", columns="metric", values="value") if len(per) else pd.DataFrame()
    return {"run": str(ev["run"].iloc[0]), "model_version": str(ev["model_version"].iloc[0]), "overall": overall,
            "scenario_columns": list(table.columns),
            "scenarios": [{"scope": k, "cells": [_fmt(v) for v in row]} for k, row in table.iterrows()]}


def as_list(v) -> list[float] | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return [float(x) for x in v]


def _get(row, key):
    return None if row is None else row.get(key)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text))[:120] or "x"


def _fmt(v: Any) -> str:
    from jobs.analysis.render import fmt_value

    return fmt_value(v, ".4g")
