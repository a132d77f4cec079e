"""The sample world without any model: does product area tell the true product engagement, are the labels
learnable, does the sales panel carry the lift?

    python bench/world.py [--videos 200] [--seed 7] [--workers 2] [--no-sales]

Generates the campaign's tables (``generate_campaign(..., write_videos=False)``: only the sampled frames are
composited, no video file is written; the tables are those ``pe sample`` writes for the same spec) and
measures on the truth alone:

- Spearman(product area share, true product engagement) over the videos, area share = the mean over the
  video's seconds of the silhouette's share of the frame (what an area-only PE sees); goal <= 0.4;
- per scenario and per cast (held-out material for pe train's test influencers, seen for the rest): videos,
  mean area share, mean true product engagement;
- the label signal-to-noise ratio: log1p(shares) regressed on influencer fixed effects, then the share of
  the remaining variance explained by the true engagement (partial R^2) and SNR = R^2 / (1 - R^2);
- the first stage (jobs.analysis, local engine) on ``taobao_sales``: Pearson correlation of estimated and
  true sales lifts, median first-stage SE and the SD of the true lifts; goal >= 0.8.

Last lines: ``world spearman_area_pe=… label_partial_r2=… label_snr=… lift_corr=… videos=…``, seed, commit and date.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pandas as pd

from bench.stamp import commit


def per_video(truth: pd.DataFrame) -> pd.DataFrame:
    """One row per video: scenario, area share (mean silhouette share of the frame), true (product) engagement,
    true sales lift."""
    g = truth.groupby("video_id", sort=True)
    return pd.DataFrame({
        "scenario": g["scenario"].first(), "area_share": g["product_area_share"].mean(),
        "quad_area_share": g["quad_area_share"].mean(), "true_engagement": g["true_engagement"].first(),
        "true_pe": g["true_product_engagement"].first(), "true_sales_lift": g["true_sales_lift"].first(),
        "material": g["material"].first(),
    })


def label_fit(labels: pd.DataFrame, videos: pd.DataFrame) -> tuple[float, float]:
    """(partial R^2, SNR) of true_engagement for log1p(shares) after influencer fixed effects."""
    df = labels.set_index("video_id").join(videos[["true_engagement"]])
    y = np.log1p(df["shares"].to_numpy(np.float64))
    x = df["true_engagement"].to_numpy(np.float64)
    groups = df["influencer_id"].to_numpy()
    demean = lambda v: v - pd.Series(v).groupby(groups).transform("mean").to_numpy()
    y, x = demean(y), demean(x)
    r2 = float(np.corrcoef(x, y)[0, 1] ** 2)
    return r2, r2 / max(1e-12, 1 - r2)


def first_stage(campaign) -> tuple[pd.DataFrame, float]:
    """Estimated lifts (local engine) joined to the true ones; (frame, Pearson r)."""
    from jobs.analysis.first_stage import estimate_lifts, ok_lifts
    from jobs.analysis.panel import panel_from_lake_frames

    truth = per_video(campaign.truth)
    scores = pd.DataFrame({"video_id": truth.index, "pe_raw": truth["true_pe"].to_numpy(),
                           "e_score": truth["true_engagement"].to_numpy(), "p_score": truth["area_share"].to_numpy()})
    panel = panel_from_lake_frames(campaign.sales, campaign.videos, scores, source="world bench")
    lifts = ok_lifts(estimate_lifts(panel))
    true = campaign.videos.set_index("product_id")["video_id"].map(truth["true_sales_lift"])
    joined = lifts.join(true.rename("true_lift"), how="inner")
    return joined, float(np.corrcoef(joined["lift"], joined["true_lift"])[0, 1])


def main() -> None:
    from scipy.stats import spearmanr

    from jobs.synth.campaign import CampaignSpec, generate_campaign

    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-sales", action="store_true", help="skip the first stage (the slowest part)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="pe-bench-world-") as root:
        c = generate_campaign(CampaignSpec(n_videos=args.videos, seed=args.seed), root, workers=args.workers,
                              write_videos=False)
    videos = per_video(c.truth)
    rho = float(spearmanr(videos["area_share"], videos["true_pe"]).statistic)
    rho_quad = float(spearmanr(videos["quad_area_share"], videos["true_pe"]).statistic)
    with pd.option_context("display.width", 160, "display.precision", 3):
        print(videos.groupby("scenario").agg(videos=("true_pe", "size"), area_share=("area_share", "mean"),
                                             true_pe=("true_pe", "mean"), true_pe_sd=("true_pe", "std"),
                                             true_engagement=("true_engagement", "mean")))
        # the held-out cast (pe train's test influencers) must not be an easier or harder kind of video
        print(videos.groupby("material").agg(videos=("true_pe", "size"), area_share=("area_share", "mean"),
                                             true_pe=("true_pe", "mean"), true_pe_sd=("true_pe", "std"),
                                             true_engagement=("true_engagement", "mean")))
    print(f"Spearman(area share, true PE) = {rho:.3f} (listing rectangle: {rho_quad:.3f}); "
          f"true PE sd {videos['true_pe'].std():.3f}, true engagement sd {videos['true_engagement'].std():.3f}")
    r2, snr = label_fit(c.labels, videos)
    print(f"labels: log1p(shares) ~ influencer FE + true_engagement: partial R^2 = {r2:.3f}, SNR = {snr:.2f}")
    corr = float("nan")
    if not args.no_sales:
        joined, corr = first_stage(c)
        print(f"first stage: {len(joined)} lifts, corr(estimated, true) = {corr:.3f}; median SE "
              f"{joined['se'].median():.1f}, SD of true lifts {joined['true_lift'].std():.1f} (CNY/day)")
    print(f"world spearman_area_pe={rho:.3f} label_partial_r2={r2:.3f} label_snr={snr:.2f} lift_corr={corr:.3f} "
          f"videos={len(videos)}")
    print(f"seed {args.seed} commit {commit()} date {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
