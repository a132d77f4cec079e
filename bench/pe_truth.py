"""Spearman of each ablation setting's PE score with the sample campaign's true product engagement.

    python bench/pe_truth.py --lake DIR [--limit 40] [--workers N] [--boot 2000]

For every video of the lake's sample campaign (``pe sample``): decode once, then score it with each product
setting of ``bench/product_accuracy.ABLATION`` (the paper's orb_hull, each fix alone, both, ours) through
``pe_udfs.score.score_video`` — so dropped seconds are handled exactly as in scoring. The engagement map is
the same for every setting: OpenCV's spectral-residual saliency (the paper's unsupervised baseline; no trained
model is needed), so the rows differ only by their product maps. Truth: ``sample_truth.true_product_engagement``
(the share of the video's engagement drive that falls on the product), compared with ``pe_share`` and with
the paper's ``pe_raw``. 95 % intervals: bootstrap over videos. Negative control: the same Spearman against the
truth permuted across videos (should be near 0).
"""
from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from bench.product_accuracy import ABLATION


def score_settings(args) -> dict:
    """{setting name: (pe_share, pe_raw)} of one video (run in a worker process)."""
    video_id, video_uri, image_uri, clip_settings, product_settings, allowed = args
    from pe_udfs.listing import load_image
    from pe_udfs.product import listing_features
    from pe_udfs.score import score_video
    from pe_udfs.settings import ClipSettings, ProductSettings, SaliencySettings
    from pe_udfs.video import sample_video

    clip = ClipSettings(**clip_settings)
    sampled = sample_video(video_uri, clip, allowed_schemes=allowed)
    image = load_image(image_uri, allowed_schemes=allowed)
    out = {"video_id": video_id}
    for name, extra in ABLATION.items():
        ps = ProductSettings(**{**product_settings, **extra, "match_workers": 1})
        r = score_video(sampled, listing_features(image, ps, name=image_uri), clip=clip, product=ps,
                        saliency=SaliencySettings(method="spectral_residual"), device="cpu")
        out[name] = (r.scores["pe_share"], r.scores["pe_raw"])
    return out


def spearman_ci(x: np.ndarray, y: np.ndarray, boot: int, rng: np.random.Generator) -> tuple[float, float, float]:
    """Spearman's ρ with a percentile bootstrap 95 % interval (videos resampled)."""
    from scipy.stats import spearmanr

    rho = float(spearmanr(x, y).statistic)
    draws = []
    for _ in range(boot):
        i = rng.integers(0, len(x), len(x))
        if np.ptp(x[i]) > 0 and np.ptp(y[i]) > 0:
            draws.append(spearmanr(x[i], y[i]).statistic)
    lo, hi = np.nanpercentile(draws, [2.5, 97.5])
    return rho, float(lo), float(hi)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lake", required=True)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--boot", type=int, default=2000)
    args = ap.parse_args()

    from jobs.config import load_config
    from jobs.spark import get_spark
    from jobs.storage.lake import Lake

    cfg = load_config(lake=args.lake, overrides={"spark": {"master": "local[1]", "show_progress": False}})
    lake = Lake.from_config(cfg, get_spark(cfg))
    videos = lake.read_pandas("campaign_videos").sort_values("video_id").head(args.limit)
    truth = lake.read_pandas("sample_truth").groupby("video_id")["true_product_engagement"].first()
    tasks = [(v.video_id, v.video_uri, v.product_image_uri, cfg.clip.model_dump(), cfg.product.model_dump(),
              list(cfg.io.allowed_schemes)) for v in videos.itertuples()]
    with ProcessPoolExecutor(max_workers=args.workers or os.cpu_count() or 1) as pool:
        rows = list(pool.map(score_settings, tasks))
    y = truth.reindex([r["video_id"] for r in rows]).to_numpy(np.float64)
    rng = np.random.default_rng(0)
    print(f"{len(rows)} videos; engagement map: spectral residual (same for every row)")
    print("| setting | Spearman pe_share vs truth [95 % CI] | Spearman pe_raw vs truth [95 % CI] |")
    print("|---|---|---|")
    for name in ABLATION:
        share = np.array([r[name][0] for r in rows])
        raw = np.array([r[name][1] for r in rows])
        cells = [spearman_ci(x, y, args.boot, rng) for x in (share, raw)]
        print(f"| {name} | " + " | ".join(f"{c[0]:.2f} [{c[1]:.2f}, {c[2]:.2f}]" for c in cells) + " |")
    ours = np.array([r[list(ABLATION)[-1]][0] for r in rows])
    control = spearman_ci(ours, rng.permutation(y), args.boot, rng)
    print(f"negative control (ours, truth permuted across videos): {control[0]:.2f} [{control[1]:.2f}, "
          f"{control[2]:.2f}]")


if __name__ == "__main__":
    main()
