"""``pe report``: HTML pages that show where a video's engagement falls, for brands and influencers.

``pe report --video-id ID --out DIR`` writes ``DIR/video-<ID>.html`` with

* a strip of sampled frames, each with the engagement heatmap overlaid (the coarse per-second grid of
  ``pe_seconds.e_grid``, upsampled) and the matched product quadrilateral drawn (``quad_224``);
* per-second curves of engagement (Σe), product presence (Σp, product found) and PE (Σe·p);
* the scores and their percentile among the campaign's videos.

``pe report --campaign ID --out DIR`` writes ``DIR/campaign-<ID>.html``: a leaderboard of the campaign's
videos with a thumbnail each (the frame where the most engagement falls on the product, with the overlay).

Scores come from the ``pe_latest`` view (the champion's version, else the newest, per video) or from one
``--model-version``. Frames are decoded with ``pe_udfs.video.sample_video`` at the config's clip settings; a
video that cannot be decoded still gets its page (curves and scores) with the reason shown. Images are PNG
files written with matplotlib next to the page, so it opens offline.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from pe_udfs.errors import PEError

__all__ = ["ReportError", "VideoReport", "overlay_frame", "heat_vmax", "strip_seconds", "percentiles",
           "curves_figure", "render_video_page", "render_campaign_page", "write_video_report",
           "write_campaign_report", "best_video_id", "SCORE_FIELDS"]

#: Scores shown on the pages, with their meaning.
SCORE_FIELDS = {
    "pe_share": "share of the engagement that falls on the product (0–1)",
    "pe_raw": "PE score: Σ e·p / (S·224·224), the paper's equation 1",
    "pe_lift": "engagement on the product relative to its size",
    "e_score": "total engagement Σ e",
    "p_score": "product presence Σ p (pixels × seconds)",
    "pe_share_6s": "share of engagement on the product in the first 6 seconds",
    "predicted_engagement": "the model's predicted engagement (standardised)",
}
#: Scores whose percentile within the campaign is shown.
PERCENTILE_FIELDS = ("pe_share", "pe_raw", "pe_lift", "e_score", "p_score")


class ReportError(PEError):
    """A report cannot be made; ``reason``: video_not_found, not_scored, campaign_not_found, missing_tables,
    bad_rank_by."""

    stage = "report"


# ------------------------------------------------------------------------------------------ pure pieces

def heat_vmax(grids: Sequence[Sequence[float] | None]) -> float:
    """The largest engagement cell over all seconds of a video (so the overlay's colours compare across
    seconds); 0 when there is no grid."""
    vals = [float(np.max(g)) for g in grids if g is not None and len(g)]
    return max(vals) if vals else 0.0


def overlay_frame(frame: np.ndarray, e_grid: Sequence[float] | None, quad: Sequence[float] | None, *,
                  quad_size: int | None = None, vmax: float | None = None, alpha: float = 0.6,
                  cmap: str = "jet") -> np.ndarray:
    """One sampled frame with the engagement heatmap and the product quad drawn on it, at the frame's own
    size and aspect ratio.

    frame: (H, W, 3) uint8 RGB — the video's frame as shown (any aspect), or the square model frame.
    e_grid: grid·grid engagement means over the model frame, row-major (None: no heatmap). quad: x0, y0, …,
    x3, y3 (None: not found), in the frame's pixel coordinates, or with ``quad_size`` on the quad_size ×
    quad_size model frame. The model frame is the whole video frame squashed to a square, so both map back
    by scaling each axis: the heatmap is upsampled bicubically to H×W, the quad scaled by (W, H)/quad_size.
    The heat is scaled by ``vmax`` (default: its own max), coloured with ``cmap`` and blended with opacity
    ``alpha``·heat, so cold areas keep the frame visible. Returns (H, W, 3) uint8 RGB.
    """
    import cv2
    from matplotlib import colormaps

    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be (H, W, 3), got {frame.shape}")
    h, w = frame.shape[:2]
    out = frame.astype(np.float32) / 255.0
    if e_grid is not None and len(e_grid):
        g = int(round(math.sqrt(len(e_grid))))
        if g * g != len(e_grid):
            raise ValueError(f"e_grid must hold grid·grid values, got {len(e_grid)}")
        grid = np.asarray(e_grid, np.float32).reshape(g, g)
        top = float(vmax) if vmax else float(grid.max())
        heat = np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) / top, 0, 1) if top > 0 \
            else np.zeros((h, w), np.float32)
        colour = colormaps[cmap](heat)[..., :3].astype(np.float32)
        a = (alpha * heat)[..., None]
        out = out * (1 - a) + colour * a
    img = np.ascontiguousarray((np.clip(out, 0, 1) * 255).round().astype(np.uint8))
    if quad is not None and len(quad) == 8 and all(v is not None and np.isfinite(v) for v in quad):
        pts = np.asarray(quad, np.float64).reshape(4, 2)
        if quad_size:
            pts = pts * np.array([w, h], np.float64) / float(quad_size)
        cv2.polylines(img, [np.round(pts).astype(np.int32).reshape(-1, 1, 2)], True, (0, 255, 0), 2, cv2.LINE_AA)
    return img


def strip_seconds(n_seconds: int, k: int) -> list[int]:
    """``k`` seconds spread evenly over 0..n_seconds-1 (all of them when there are fewer)."""
    if n_seconds <= 0 or k <= 0:
        return []
    if n_seconds <= k:
        return list(range(n_seconds))
    return sorted({int(round(x)) for x in np.linspace(0, n_seconds - 1, k)})


def percentiles(video_row: pd.Series, campaign: pd.DataFrame, fields: Sequence[str] = PERCENTILE_FIELDS
                ) -> pd.DataFrame:
    """Per score: the video's value, its rank (1 = highest) and percentile (% of campaign videos with a value
    ≤ it) among ``campaign`` (the scores of the campaign's videos, this one included)."""
    rows = []
    for f in fields:
        if f not in campaign or f not in video_row or pd.isna(video_row[f]):
            continue
        vals = campaign[f].dropna().to_numpy(np.float64)
        v = float(video_row[f])
        rows.append({"score": f, "value": v, "rank": int((vals > v).sum()) + 1, "of": int(len(vals)),
                     "percentile": 100.0 * float((vals <= v).sum()) / len(vals) if len(vals) else float("nan")})
    return pd.DataFrame(rows, columns=["score", "value", "rank", "of", "percentile"])


def curves_figure(seconds: pd.DataFrame, path: str, *, title: str = "") -> str:
    """Per-second curves (engagement Σe, product presence Σp with the seconds the product was found shaded,
    PE Σe·p) from ``pe_seconds`` rows; saved as PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    s = seconds.sort_values("second")
    x = s["second"].to_numpy()
    fig, axes = plt.subplots(3, 1, figsize=(8, 5.5), dpi=100, sharex=True)
    series = [("e_mass", "engagement Σe", "#4c72b0"), ("p_mass", "product presence Σp", "#55a868"),
              ("pe_mass", "PE Σe·p", "#c44e52")]
    found = s["product_found"].fillna(False).astype(bool).to_numpy() if "product_found" in s else np.zeros(len(s), bool)
    for ax, (col, label, colour) in zip(axes, series):
        y = pd.to_numeric(s[col], errors="coerce").to_numpy(np.float64) if col in s else np.full(len(s), np.nan)
        ax.plot(x, y, color=colour, marker="o", ms=3, lw=1.5)
        for sec in x[found]:
            ax.axvspan(sec - 0.5, sec + 0.5, color="#55a868", alpha=0.12, lw=0)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
        if np.all(np.isnan(y)):
            ax.text(0.5, 0.5, "not computed (product-only scoring)", transform=ax.transAxes, ha="center",
                    fontsize=8, color="#666")
    axes[-1].set_xlabel("second (green: product found)")
    if title:
        axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _save_png(img: np.ndarray, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.imsave(path, img)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text))[:120] or "x"


def _fmt(v: Any) -> str:
    from jobs.analysis.render import fmt_value

    return fmt_value(v, ".4g")


# ------------------------------------------------------------------------------------------ pages

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
                      frames_error: str | None = None) -> VideoReport:
    """Write ``video-<id>.html`` and its images into ``out_dir``.

    score: the video's ``pe_scores`` row; seconds: its ``pe_seconds`` rows (same model version);
    campaign_scores: ``pe_scores`` rows of the campaign's videos (for percentiles); frames: S frames (H, W, 3)
    uint8 at the video's aspect ratio (None when the video could not be decoded: ``frames_error`` says why);
    quad_size: the model frame's size, which the stored quads are on (see :func:`overlay_frame`).
    """
    from jobs.templates import render_template

    vid = str(score["video_id"])
    img_dir = os.path.join(out_dir, f"video-{_slug(vid)}_files")
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
            grid = _as_list(row.get("e_grid")) if row is not None else None
            quad = _as_list(row.get("quad_224")) if row is not None else None
            raw_path = _save_png(frames[sec], os.path.join(img_dir, f"frame-{sec:03d}.png"))
            over_path = _save_png(overlay_frame(frames[sec], grid, quad, quad_size=quad_size, vmax=vmax),
                                  os.path.join(img_dir, f"overlay-{sec:03d}.png"))
            images += [raw_path, over_path]
            found = bool(row["product_found"]) if row is not None and pd.notna(row.get("product_found")) else False
            tiles.append({"src": f"{rel}/{os.path.basename(over_path)}", "raw": f"{rel}/{os.path.basename(raw_path)}",
                          "caption": f"{sec} s · Σe {_fmt(_get(row, 'e_mass'))} · "
                                     f"{'product found' if found else 'no product'}"})
    curves = None
    if len(seconds):
        curves = curves_figure(seconds, os.path.join(img_dir, "curves.png"), title=f"video {vid}")
        images.append(curves)
    pct = percentiles(score, campaign_scores)
    score_rows = [{"name": k, "value": _fmt(score.get(k)), "meaning": v} for k, v in SCORE_FIELDS.items()
                  if k in score and pd.notna(score.get(k))]
    html_path = os.path.join(out_dir, f"video-{_slug(vid)}.html")
    page = render_template(
        "video_report.html.j2", title=f"Video {vid}", meta={k: _fmt(v) for k, v in (meta or {}).items()},
        tiles=tiles, frames_error=frames_error, curves=f"{rel}/curves.png" if curves else None,
        scores=score_rows, percentiles=[{k: _fmt(v) for k, v in r.items()} for r in pct.to_dict("records")],
        n_campaign=len(campaign_scores))
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(page)
    return VideoReport(html_path, images, frames_error)


def render_campaign_page(out_dir: str, campaign_id: str, board: pd.DataFrame, thumbnails: dict[str, str | None],
                         *, rank_by: str = "pe_share", meta: dict[str, Any] | None = None,
                         evaluation: pd.DataFrame | None = None) -> str:
    """Write ``campaign-<id>.html``: ``board`` (one row per video with scores; sorted here by ``rank_by``,
    highest first) and ``thumbnails`` (video_id → image path relative to ``out_dir``, or None);
    ``evaluation``: rows of the ``evaluations`` table to show (one run), or None."""
    from jobs.templates import render_template

    board = board.sort_values(rank_by, ascending=False, na_position="last").reset_index(drop=True)
    cols = [c for c in ("pe_share", "pe_raw", "pe_lift", "e_score", "p_score", "product_found_seconds",
                        "n_seconds", "model_version") if c in board]
    rows = []
    for i, r in board.iterrows():
        rows.append({"rank": i + 1, "video_id": r["video_id"], "influencer_id": _fmt(r.get("influencer_id")),
                     "thumb": thumbnails.get(str(r["video_id"])), "cells": [_fmt(r.get(c)) for c in cols],
                     "note": r.get("thumb_note")})
    path = os.path.join(out_dir, f"campaign-{_slug(campaign_id)}.html")
    page = render_template("campaign_report.html.j2", title=f"Campaign {campaign_id}", rank_by=rank_by,
                           columns=cols, rows=rows, meta={k: _fmt(v) for k, v in (meta or {}).items()},
                           evaluation=_evaluation_rows(evaluation))
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path


def latest_evaluation(lake, model_versions) -> pd.DataFrame | None:
    """The newest ``pe evaluate`` run's rows for one of ``model_versions`` (None without the table or a run)."""
    if not lake.exists("evaluations"):
        return None
    ev = lake.read_pandas("evaluations")
    ev = ev[ev["model_version"].astype(str).isin({str(v) for v in model_versions})]
    if ev.empty:
        return None
    latest = ev.sort_values("evaluated_at")["run"].iloc[-1]
    return ev[ev["run"] == latest]


def _evaluation_rows(ev: pd.DataFrame | None) -> dict | None:
    """Template data: the run, its whole-campaign metrics, and Spearman of pe_share vs area-only per scenario."""
    if ev is None or ev.empty:
        return None
    fmt = lambda r: {"metric": r["metric"], "value": _fmt(r["value"]), "ci": f"[{_fmt(r['ci_low'])}, "  # noqa: E731
                     f"{_fmt(r['ci_high'])}]", "n": int(r["n"])}
    overall = [fmt(r) for _, r in ev[ev["scope"] == "all"].iterrows()]
    per = ev[(ev["scope"] != "all") & ev["metric"].isin(["spearman_pe_share", "spearman_area_only", "mean_pe_share",
                                                         "mean_true_pe", "product_iou_median"])]
    table = per.pivot_table(index="scope", columns="metric", values="value") if len(per) else pd.DataFrame()
    return {"run": str(ev["run"].iloc[0]), "model_version": str(ev["model_version"].iloc[0]), "overall": overall,
            "scenario_columns": list(table.columns),
            "scenarios": [{"scope": k, "cells": [_fmt(v) for v in row]} for k, row in table.iterrows()]}


def _as_list(v) -> list[float] | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return [float(x) for x in v]


def _get(row, key):
    return None if row is None else row.get(key)


# ------------------------------------------------------------------------------------------ lake + decode

def _scores_frame(lake, champion: str | None, model_version: str | None):
    """Spark DataFrame of the scores to report: one model version, or the pe_latest view."""
    from pyspark.sql import functions as F

    from jobs.views import register_views

    if not lake.exists("pe_scores"):
        raise ReportError("missing_tables", f"the lake at {lake.root} has no pe_scores table: run pe score first")
    if model_version is not None:
        return lake.read("pe_scores").where(F.col("model_version") == model_version)
    register_views(lake, champion_version=champion)
    return lake.spark.table("pe_latest")


def _decode(cfg, uri: str | None, max_seconds: int | None = None) -> tuple[list[np.ndarray] | None, str | None]:
    """The sampled frames of ``uri`` as shown (S × (h, w, 3), aspect kept, w <= clip.match_max_width), or
    (None, reason) when the video cannot be decoded."""
    from pe_udfs.errors import PEInputError
    from pe_udfs.video import sample_video

    if uri is None:
        return None, "the video has no video_uri in campaign_videos"
    clip = cfg.clip if max_seconds is None else cfg.clip.model_copy(update={"max_seconds": max(1, max_seconds)})
    try:
        sampled = sample_video(uri, clip, allowed_schemes=cfg.io.allowed_schemes, allowed_roots=cfg.allowed_roots,
                               with_match_frames=True)
    except PEInputError as e:
        return None, f"{e.stage}/{e.reason}: {e.message}"
    return sampled.match_frames, None


def write_video_report(cfg, lake, video_id: str, out_dir: str, *, model_version: str | None = None,
                       strip: int = 8) -> VideoReport:
    """Read the video's scores, seconds and campaign from the lake, decode its frames, write its page.
    Returns the page (``.html`` path, images, ``frames_error`` when the video could not be decoded)."""
    from pyspark.sql import functions as F

    from jobs.views import champion_version, current_seconds

    champion = champion_version(cfg) if model_version is None else None
    scores = _scores_frame(lake, champion, model_version)
    own = scores.where(F.col("video_id") == video_id).toPandas()
    if own.empty:
        known = lake.exists("campaign_videos") and \
            lake.read("campaign_videos").where(F.col("video_id") == video_id).limit(1).count() > 0
        if known:
            raise ReportError("not_scored", f"video {video_id} has no scores"
                              + (f" from model version {model_version}" if model_version else "") + ": run pe score")
        raise ReportError("video_not_found", f"no video {video_id} in the lake at {lake.root}")
    score = own.iloc[0]
    version = str(score["model_version"])
    seconds = (current_seconds(lake).where((F.col("video_id") == video_id) & (F.col("model_version") == version))
               .toPandas() if lake.exists("pe_seconds") else pd.DataFrame(columns=["second"]))
    meta_row, campaign_scores = {}, own
    if lake.exists("campaign_videos"):
        videos = lake.read("campaign_videos")
        m = videos.where(F.col("video_id") == video_id).toPandas()
        if len(m):
            meta_row = m.iloc[0].to_dict()
            cid = meta_row.get("campaign_id")
            if cid is not None:
                ids = videos.where(F.col("campaign_id") == cid).select("video_id")
                campaign_scores = scores.join(ids, "video_id").toPandas()
    frames, error = _decode(cfg, meta_row.get("video_uri"))
    meta = {"campaign": meta_row.get("campaign_id"), "product": meta_row.get("product_id"),
            "influencer": meta_row.get("influencer_id"), "published": meta_row.get("published_at"),
            "model version": version, "champion": bool(score.get("is_champion")) if "is_champion" in score else None,
            "seconds scored": score.get("n_seconds"), "scored at": score.get("scored_at")}
    os.makedirs(out_dir, exist_ok=True)
    return render_video_page(out_dir, score, seconds, campaign_scores, frames, quad_size=cfg.clip.size, meta=meta,
                             strip=strip, frames_error=error)


def write_campaign_report(cfg, lake, campaign_id: str | None, out_dir: str, *, model_version: str | None = None,
                          rank_by: str = "pe_share") -> str:
    """Write the campaign's leaderboard with a thumbnail per video (the frame where Σe·p peaks); return the
    page's path. ``campaign_id`` None: the campaign with the most videos."""
    from pyspark.sql import functions as F

    from jobs.views import champion_version, current_seconds

    if not lake.exists("campaign_videos"):
        raise ReportError("missing_tables", f"the lake at {lake.root} has no campaign_videos table")
    if campaign_id is None:
        counts = lake.read("campaign_videos").where(F.col("campaign_id").isNotNull()).groupBy("campaign_id").count()
        top = counts.orderBy(F.desc("count"), "campaign_id").limit(1).collect()
        if not top:
            raise ReportError("campaign_not_found", "campaign_videos has no campaign_id")
        campaign_id = str(top[0]["campaign_id"])
    videos = lake.read("campaign_videos").where(F.col("campaign_id") == campaign_id)
    meta_rows = videos.toPandas()
    if meta_rows.empty:
        raise ReportError("campaign_not_found", f"no campaign {campaign_id} in campaign_videos")
    champion = champion_version(cfg) if model_version is None else None
    scores = _scores_frame(lake, champion, model_version)
    board = scores.join(videos.select("video_id", "influencer_id", "video_uri"), "video_id").toPandas()
    if board.empty:
        raise ReportError("not_scored", f"none of the {len(meta_rows)} videos of campaign {campaign_id} is scored")
    if rank_by not in board:
        raise ReportError("bad_rank_by", f"cannot rank by {rank_by!r}: not a score column")
    keys = board[["video_id", "model_version"]].astype(str)
    seconds = pd.DataFrame()
    if lake.exists("pe_seconds"):
        wanted = lake.spark.createDataFrame(keys)
        seconds = current_seconds(lake).join(wanted, ["video_id", "model_version"]).toPandas()
    os.makedirs(os.path.join(out_dir, f"campaign-{_slug(campaign_id)}_files"), exist_ok=True)
    thumbs: dict[str, str | None] = {}
    notes = []
    for _, r in board.iterrows():
        vid = str(r["video_id"])
        sec_rows = seconds[(seconds["video_id"] == vid)] if len(seconds) else seconds
        best = _peak_second(sec_rows)
        frames, error = _decode(cfg, r.get("video_uri"), max_seconds=best + 1)
        if frames is None or best >= len(frames):
            thumbs[vid] = None
            notes.append(error or f"frame {best} not decoded")
            continue
        row = sec_rows[sec_rows["second"] == best].iloc[0] if len(sec_rows) else None
        img = overlay_frame(frames[best], _as_list(row["e_grid"]) if row is not None else None,
                            _as_list(row["quad_224"]) if row is not None else None, quad_size=cfg.clip.size,
                            vmax=heat_vmax([_as_list(g) for g in sec_rows["e_grid"]]) if len(sec_rows) else None)
        rel = f"campaign-{_slug(campaign_id)}_files/thumb-{_slug(vid)}.png"
        _save_png(img, os.path.join(out_dir, rel))
        thumbs[vid] = rel
        notes.append(None)
    board["thumb_note"] = notes
    meta = {"videos": len(meta_rows), "scored": len(board), "ranked by": rank_by,
            "model versions": ", ".join(sorted(board["model_version"].astype(str).unique()))}
    return render_campaign_page(out_dir, campaign_id, board, thumbs, rank_by=rank_by, meta=meta,
                                evaluation=latest_evaluation(lake, board["model_version"].unique()))


def best_video_id(lake, champion_version: str | None = None, by: str = "pe_share") -> str:
    """The video with the highest ``by`` score in ``pe_latest`` (for demos and smoke tests)."""
    from jobs.views import register_views

    if "pe_latest" not in register_views(lake, champion_version=champion_version):
        raise ReportError("missing_tables", f"the lake at {lake.root} has no pe_scores table")
    latest = lake.spark.table("pe_latest")
    row = latest.orderBy(latest[by].desc_nulls_last()).limit(1).collect()
    if not row:
        raise ReportError("not_scored", "pe_scores has no rows")
    return str(row[0]["video_id"])


def _peak_second(seconds: pd.DataFrame) -> int:
    """The second where the most engagement falls on the product (Σe·p), else the most engaging second,
    else the middle of the scored seconds, else 0."""
    if seconds is None or seconds.empty:
        return 0
    for col in ("pe_mass", "e_mass"):
        if col in seconds:
            v = pd.to_numeric(seconds[col], errors="coerce")
            if v.notna().any() and v.max() > 0:
                return int(seconds.loc[v.idxmax(), "second"])
    return int(seconds["second"].median())
