"""``pe report``: HTML pages that show where a video's engagement falls, for brands and influencers.

``pe report --video-id ID --out DIR`` writes ``DIR/video-<ID>.html`` with

* a strip of sampled frames, each with the engagement heatmap overlaid (the coarse per-second grid of
  ``pe_seconds.e_grid``, upsampled) and the matched product quadrilateral drawn (``quad_224``);
* per-second curves of engagement (Σe), product presence (Σp, product found) and PE (Σe·p);
* the scores and their percentile among the campaign's videos;
* "What to change": the edit advice (``pe_udfs.advice``) with the missed moments' frames.

``pe report --campaign ID --out DIR`` writes ``DIR/campaign-<ID>.html``: a leaderboard of the campaign's
videos with a thumbnail each (the frame where the most engagement falls on the product, with the overlay),
opened by a chart of PE against predicted engagement and the videos with the largest achievable gain.

Scores come from the ``pe_latest`` view (the champion's version, else the newest, per video) or from one
``--model-version``. Frames are decoded with ``pe_udfs.video.sample_video`` at the config's clip settings; a
video that cannot be decoded still gets its page (curves and scores) with the reason shown. Images are PNG
files written with matplotlib next to the page, so it opens offline.

This module reads the lake and decodes the frames; the pages are drawn by :mod:`jobs.report.pages` from the
pure pieces in :mod:`jobs.report.figures` (overlays, strips, percentiles, curves).
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from jobs.report.figures import heat_vmax, overlay_frame, save_png
from jobs.report.pages import VideoReport, as_list, render_campaign_page, render_video_page, slug
from pe_udfs.errors import PEError

__all__ = ["ReportError", "write_video_report", "write_campaign_report", "best_video_id", "latest_evaluation"]


class ReportError(PEError):
    """A report cannot be made; ``reason``: video_not_found, not_scored, campaign_not_found, missing_tables,
    bad_rank_by."""

    stage = "report"


def _scores_frame(lake, champion: str | None, model_version: str | None):
    """Spark DataFrame of the scores to report: one model version, or the pe_latest view."""
    from pyspark.sql import functions as F

    from jobs.storage.views import register_views

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

    from jobs.storage.views import champion_version, current_seconds

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
    advice = _advice(cfg, seconds, frames)
    return render_video_page(out_dir, score, seconds, campaign_scores, frames, quad_size=cfg.clip.size, meta=meta,
                             strip=strip, frames_error=error, advice=advice)


def write_campaign_report(cfg, lake, campaign_id: str | None, out_dir: str, *, model_version: str | None = None,
                          rank_by: str = "pe_share") -> str:
    """Write the campaign's leaderboard with a thumbnail per video (the frame where Σe·p peaks); return the
    page's path. ``campaign_id`` None: the campaign with the most videos."""
    from pyspark.sql import functions as F

    from jobs.storage.views import champion_version, current_seconds

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
    os.makedirs(os.path.join(out_dir, f"campaign-{slug(campaign_id)}_files"), exist_ok=True)
    thumbs: dict[str, str | None] = {}
    notes: list[str | None] = []
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
        img = overlay_frame(frames[best], as_list(row["e_grid"]) if row is not None else None,
                            as_list(row["quad_224"]) if row is not None else None, quad_size=cfg.clip.size,
                            vmax=heat_vmax([as_list(g) for g in sec_rows["e_grid"]]) if len(sec_rows) else None)
        rel = f"campaign-{slug(campaign_id)}_files/thumb-{slug(vid)}.png"
        save_png(img, os.path.join(out_dir, rel))
        thumbs[vid] = rel
        notes.append(None)
    board["thumb_note"] = notes
    meta = {"videos": len(meta_rows), "scored": len(board), "ranked by": rank_by,
            "model versions": ", ".join(sorted(board["model_version"].astype(str).unique()))}
    gains = []
    for vid, rows in (seconds.groupby("video_id") if len(seconds) else []):
        advice = _advice(cfg, rows, None)
        if advice is not None and advice.suggestions:
            top = advice.suggestions[0]
            gains.append({"video_id": vid, "gain": top.gain, "text": top.text, "pe_share_now": top.pe_share_now,
                          "pe_share_after": top.pe_share_after})
    return render_campaign_page(out_dir, campaign_id, board, thumbs, rank_by=rank_by, meta=meta,
                                evaluation=latest_evaluation(lake, board["model_version"].unique()),
                                gains=pd.DataFrame(gains, columns=["video_id", "gain", "text", "pe_share_now",
                                                                   "pe_share_after"]))


def _advice(cfg, seconds: pd.DataFrame, frames):
    """The video's edit advice from its pe_seconds rows (frames, when decoded, let it look for faces); None when
    there is nothing to advise from (no rows, or product-only scores)."""
    from pe_udfs.advice import advise_video

    if seconds is None or seconds.empty or "e_mass" not in seconds:
        return None
    try:
        return advise_video(seconds, cfg.advice, first_seconds=cfg.saliency.first_seconds,
                            frames=dict(enumerate(frames)) if frames is not None else None)
    except PEError:
        return None


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


def best_video_id(lake, champion_version: str | None = None, by: str = "pe_share") -> str:
    """The video with the highest ``by`` score in ``pe_latest`` (for demos and smoke tests)."""
    from jobs.storage.views import register_views

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
