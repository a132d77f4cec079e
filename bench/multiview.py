"""Multi-view products: product-map recall with the front listing image alone vs every listing view.

    python bench/multiview.py [--videos 16] [--seed 7] [--min-seconds 10] [--max-seconds 20] [--workers 2]

Generates a sample campaign in the opt-in ``turning`` scenario (``generate_campaign``, every video: the product
turns so its printed side panel faces the camera for part of each appearance; the listing images are its front
photo and that side panel) into a temporary folder, then maps every video's product with the scoring code
(``sample_video`` + ``views_product_map``, the configured product settings) three ways:

- ``one``: the front view alone (what a single ``campaign_videos.product_image_uri`` gives);
- ``all``: front and side views (what ``product_images`` gives);
- ``control`` (negative control): every view of ANOTHER video's product (a different product): it must not be
  found, so a high found rate here would mean the matcher finds anything.

Per second, against the truth (``sample_truth``): recall = share of the seconds where the product is truly
visible (drawn, at least half of it on screen and unoccluded) in which it is found; false found = share of the
seconds where it is not drawn at all in which it is found; recall is also split by the face truly shown
(front / side), and the share of found visible seconds whose matched view is the face truly shown. 95 %
intervals: bootstrap over videos (2,000 resamples, videos are the independent units), the difference
all - one paired on the same resamples.

Last line: ``multiview recall_one=… recall_all=… false_found_one=… false_found_all=…``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pandas as pd

from bench.stamp import commit

WAYS = ("one", "all", "control")


def map_video(args) -> list[dict]:
    """Per-second rows (video_id, second, found_<way>, view_<way>) of one video (runs in a worker process)."""
    video_id, video_uri, views, control, product, clip = args
    from pe_udfs.product_views import ListingCache, views_product_map
    from pe_udfs.settings import ClipSettings, ProductSettings
    from pe_udfs.video import sample_video

    ps, clip = ProductSettings(**product), ClipSettings(**clip)
    cache = ListingCache()
    sampled = sample_video(video_uri, clip, with_match_frames=True)
    asked = {"one": views[:1], "all": views, "control": control}
    maps = {way: views_product_map(sampled.match_frames, cache.views(v, ps), ps, clip.size) for way, v in asked.items()}
    return [{"video_id": video_id, "second": s,
             **{f"found_{w}": bool(m.found[s]) for w, m in maps.items()},
             **{f"view_{w}": m.matched_view[s] for w, m in maps.items()}} for s in range(sampled.n_seconds)]


def shares(rows: pd.DataFrame) -> dict[str, float]:
    """The bench's rates on per-second rows joined to the truth (NaN where a rate has no seconds)."""
    visible, absent = rows[rows["product_visible"]], rows[rows["product_view"].isna()]
    out = {f"recall_{w}": visible[f"found_{w}"].mean() for w in WAYS}
    out.update({f"false_found_{w}": absent[f"found_{w}"].mean() for w in WAYS})
    for face in ("front", "side"):
        on = visible[visible["product_view"] == face]
        out.update({f"recall_{w}_{face}": on[f"found_{w}"].mean() for w in ("one", "all")})
    found = visible[visible["found_all"]]
    out["right_view_all"] = (found["view_all"] == found["product_view"]).mean()
    out["control_found"] = rows["found_control"].mean()
    out["recall_gain"] = out["recall_all"] - out["recall_one"]
    return out


def bootstrap(rows: pd.DataFrame, n: int = 2000, seed: int = 0) -> dict[str, tuple[float, float]]:
    """95 % percentile intervals of :func:`shares`, resampling videos with replacement."""
    rng = np.random.default_rng(seed)
    groups = {v: g for v, g in rows.groupby("video_id")}
    ids = np.array(sorted(groups))
    draws = [shares(pd.concat([groups[v] for v in rng.choice(ids, len(ids))], ignore_index=True)) for _ in range(n)]
    frame = pd.DataFrame(draws)
    return {k: (float(frame[k].quantile(0.025)), float(frame[k].quantile(0.975))) for k in frame.columns}


def run(videos: int, seed: int, min_seconds: float, max_seconds: float, workers: int, folder: str) -> pd.DataFrame:
    """Generate the turning campaign under ``folder`` and map every video three ways; per-second rows with truth."""
    from jobs.config import load_config
    from jobs.synth.campaign import CampaignSpec, generate_campaign

    cfg = load_config()
    spec = CampaignSpec(n_videos=videos, seed=seed, min_seconds=min_seconds, max_seconds=max_seconds,
                        scenario="turning", audio=False)
    t = time.perf_counter()
    campaign = generate_campaign(spec, folder, workers=workers)
    print(f"rendered {videos} turning videos in {time.perf_counter() - t:.0f} s", flush=True)
    images = campaign.product_images.sort_values(["product_id", "view_rank"])
    views = {p: list(zip(g["view"], g["image_uri"])) for p, g in images.groupby("product_id")}
    cv = campaign.videos.reset_index(drop=True)
    product = cfg.product.model_copy(update={"match_workers": 1}).model_dump()
    tasks = [(r.video_id, r.video_uri, views[r.product_id], views[cv.product_id[(i + 1) % len(cv)]], product,
              cfg.clip.model_dump()) for i, r in enumerate(cv.itertuples())]
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        rows = pd.DataFrame([r for video in pool.map(map_video, tasks) for r in video])
    print(f"mapped {len(rows)} seconds three ways in {time.perf_counter() - t:.0f} s", flush=True)
    truth = campaign.truth[["video_id", "second", "product_visible", "product_view"]]
    return rows.merge(truth, on=["video_id", "second"], how="inner", validate="one_to_one")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=16)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--min-seconds", type=float, default=10.0)
    ap.add_argument("--max-seconds", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pe-multiview-") as folder:
        rows = run(args.videos, args.seed, args.min_seconds, args.max_seconds, args.workers, folder)
    point, ci = shares(rows), bootstrap(rows)
    visible = rows["product_visible"]
    print(f"seconds: {len(rows)} ({int(visible.sum())} visible: {int((visible & (rows.product_view == 'front')).sum())} "
          f"front, {int((visible & (rows.product_view == 'side')).sum())} side; "
          f"{int(rows.product_view.isna().sum())} without the product), videos: {rows.video_id.nunique()}")
    for key in ("recall_one", "recall_all", "recall_gain", "recall_one_front", "recall_all_front", "recall_one_side",
                "recall_all_side", "right_view_all", "false_found_one", "false_found_all", "control_found"):
        lo, hi = ci[key]
        print(f"  {key:18s} {point[key]:.3f}  [{lo:.3f}, {hi:.3f}]")
    print(f"multiview recall_one={point['recall_one']:.3f} recall_all={point['recall_all']:.3f} "
          f"false_found_one={point['false_found_one']:.3f} false_found_all={point['false_found_all']:.3f}")
    print(f"seed {args.seed} videos {args.videos} commit {commit()} date {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
