"""``pe advise``: edit advice per scored video, written to ``edit_advice``.

    pe_scores (one model version) + pe_seconds_current ─► pe_udfs.advice.advise_video per video (driver: a
    few floats per second) ─► edit_advice rows (video × rank) ─► merge on (video_id, model_version, rank)

Every advised video gets ``advice.max_suggestions`` rows: ranks without a suggestion have ``kind`` NULL, so a
re-run that finds fewer suggestions replaces the older ones instead of leaving them behind. No truth is needed:
this runs on ingested real clips as on the sample campaign.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from jobs.config import PEConfig
from pe_udfs.advice import VideoAdvice, advise_video
from pe_udfs.errors import PEError

if TYPE_CHECKING:
    from jobs.storage.lake import Lake

__all__ = ["AdviseError", "AdviseSummary", "advice_inputs", "advice_rows", "run_advise"]


class AdviseError(PEError):
    """Advice cannot be given as asked (no scores, unknown video or campaign)."""

    stage = "advise"
    exit_code = 2


@dataclass
class AdviseSummary:
    model_version: str
    videos: int
    with_suggestions: int
    rows: pd.DataFrame
    skipped: list[str] = field(default_factory=list)
    table_version: int | None = None

    def lines(self) -> list[str]:
        out = [f"advice for {self.videos:,} videos of model v{self.model_version}: {self.with_suggestions:,} with "
               f"suggestions"]
        # each video's best edit, the five largest gains (a video's later ranks would repeat it)
        best = self.rows[(self.rows["rank"] == 1) & self.rows["kind"].notna()].sort_values("gain", ascending=False)
        for r in best.head(5).itertuples():
            out.append(f"  {r.video_id}: {r.text} (PE {100 * r.pe_share_now:.1f} % → {100 * r.pe_share_after:.1f} %)")
        out += [f"skipped {s}" for s in self.skipped]
        return out


def advice_inputs(cfg: PEConfig, lake: "Lake", *, model_version: str | None = None, video_ids: list[str] | None = None,
                  campaign: str | None = None) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """(model version, its pe_scores rows, their current pe_seconds rows) for the asked videos (all scored videos
    by default; ``campaign`` narrows to a campaign_id of campaign_videos). Raises AdviseError when nothing is left."""
    from pyspark.sql import functions as F

    from jobs.analysis.analyze import choose_model_version
    from jobs.storage.views import champion_version, current_seconds

    if not lake.exists("pe_scores"):
        raise AdviseError("no_scores", f"the lake at {lake.root} has no pe_scores table: run `pe score` first")
    scores = lake.read_pandas("pe_scores")
    version, _ = choose_model_version(scores, model_version, champion_version(cfg))
    scores = scores[scores["model_version"].astype(str) == version]
    if campaign is not None:
        videos = lake.read_pandas("campaign_videos", columns=["video_id", "campaign_id"]) \
            if lake.exists("campaign_videos") else pd.DataFrame(columns=["video_id", "campaign_id"])
        in_campaign = set(videos.loc[videos["campaign_id"] == campaign, "video_id"])
        if not in_campaign:
            raise AdviseError("unknown_campaign", f"no campaign_videos row has campaign_id {campaign!r}")
        scores = scores[scores["video_id"].isin(in_campaign)]
    if video_ids:
        unknown = sorted(set(video_ids) - set(scores["video_id"]))
        if unknown:
            raise AdviseError("not_scored", f"model v{version} has not scored {', '.join(unknown)}")
        scores = scores[scores["video_id"].isin(set(video_ids))]
    if scores.empty:
        raise AdviseError("no_scores", f"model v{version} has scored none of the asked videos")
    ids = sorted(scores["video_id"])
    seconds = (current_seconds(lake).where((F.col("model_version") == version) & F.col("video_id").isin(ids))
               .select("video_id", "second", "e_mass", "pe_mass", "p_mass", "product_found", "quad_224", "e_grid")
               .toPandas())
    return version, scores, seconds


def advice_rows(advice: VideoAdvice, *, video_id: str, model_version: str, scoring_config: str | None,
                max_suggestions: int, run_id: str, at: dt.datetime) -> list[dict]:
    """``edit_advice`` rows of one video: ranks 1..max_suggestions (kind NULL where there is no suggestion)."""
    moments = json.dumps([{"start_s": m.start_s, "end_s": m.end_s, "e_share": round(m.e_share, 4),
                           "product_shown": m.product_shown, "region": m.region, "on_face": m.on_face}
                          for m in advice.moments])
    rows = []
    for rank in range(1, max_suggestions + 1):
        s = advice.suggestions[rank - 1] if rank <= len(advice.suggestions) else None
        m = advice.moments[s.moment] if s is not None and s.moment is not None else None
        rows.append({
            "video_id": video_id, "model_version": model_version, "rank": rank, "scoring_config": scoring_config,
            "kind": s.kind if s else None, "text": s.text if s else None,
            "start_s": s.start_s if s else None, "end_s": s.end_s if s else None,
            "seconds": list(s.seconds) if s else None, "region": m.region if m else None,
            "on_face": m.on_face if m else None,
            "pe_share_now": advice.pe_share, "pe_share_after": s.pe_share_after if s else None,
            "pe_share_6s_now": advice.pe_share_6s, "pe_share_6s_after": s.pe_share_6s_after if s else None,
            "gain": s.gain if s else None, "missed_moments": moments, "run_id": run_id, "advised_at": at,
        })
    return rows


def run_advise(cfg: PEConfig, lake: "Lake", *, video_ids: list[str] | None = None, campaign: str | None = None,
               model_version: str | None = None, run_id: str | None = None) -> AdviseSummary:
    """Advise every asked scored video (default: all of the model version's) and merge the rows into
    ``edit_advice``."""
    from jobs.storage.contracts import spark_schema

    version, scores, seconds = advice_inputs(cfg, lake, model_version=model_version, video_ids=video_ids,
                                             campaign=campaign)
    at = dt.datetime.now(dt.timezone.utc)
    run_id = run_id or f"advise-{at:%Y%m%dT%H%M%S}-v{version}"
    by_video = dict(tuple(seconds.groupby("video_id")))
    rows, skipped, with_suggestions = [], [], 0
    for r in scores.sort_values("video_id").itertuples():
        per = by_video.get(r.video_id)
        if per is None or per.empty:
            skipped.append(f"{r.video_id}: no per-second rows")
            continue
        try:
            advice = advise_video(per, cfg.advice, first_seconds=cfg.saliency.first_seconds)
        except PEError as e:  # a product-only score has no engagement to advise from: say so, go on
            skipped.append(f"{r.video_id}: {e}")
            continue
        with_suggestions += bool(advice.suggestions)
        rows += advice_rows(advice, video_id=r.video_id, model_version=version,
                            scoring_config=getattr(r, "scoring_config", None),
                            max_suggestions=cfg.advice.max_suggestions, run_id=run_id, at=at)
    frame = pd.DataFrame(rows, columns=spark_schema("edit_advice").fieldNames())
    summary = AdviseSummary(version, len(rows) // cfg.advice.max_suggestions, with_suggestions, frame, skipped)
    if rows:
        schema = spark_schema("edit_advice")
        df = lake.spark.createDataFrame(frame.astype(object).where(frame.notna(), None), schema=schema)
        lake.merge("edit_advice", df, metadata={"pe.job": "advise", "pe.run": run_id, "pe.model_version": version})
        summary.table_version = lake.version("edit_advice")
    return summary
