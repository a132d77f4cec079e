"""Does the edit advice work? Re-render held-out sample videos with the advised edit and with a random one.

    python bench/advice.py --lake DIR [--workers 2] [--boot 2000] [--limit N]

For the videos of the scoring model's TEST influencers (the ``training_clips`` split its MLflow run logged, as
``pe evaluate`` reads it) of a ``pe sample`` lake scored by the champion:

1. re-plan the campaign from its spec (``jobs.synth.campaign.plan_campaign``; seed from the video ids, size and
   fps from ``sample_truth``) and re-render each video unedited: its true product engagement must equal the
   lake's ``sample_truth`` (asserted), so the plans are the lake's;
2. advise it (``pe_udfs.advice.advise_video`` on its ``pe_seconds`` rows, the config's ``advice:`` settings) and
   take the best suggestion the world can re-render (showing the product: ``show_product``, ``show_earlier``;
   a cut would shift every later frame), then re-render it twice: with the product shown, held and moving
   (``jobs.synth.edit.show_product``) in the advised seconds, and in a random run of as many seconds
   (same edit, random start; seeded per video), and — a stricter control — in a random run of as many seconds
   in which the unedited video does not show the product (when it has such a run);
3. measure both edits' TRUE gain in product engagement from the world's truth (``jobs.synth.truth``, unchanged).

Prints the mean true gain of advised and random edits and their paired difference with 95 % intervals that
resample influencers (``models.agreement.bootstrap``), Spearman of the predicted gain with the true gain, the
commit and the date. Read-only: the lake is not written (the re-planned listing photos go to a temporary folder).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pandas as pd

#: the edit kinds the sample world can re-render (a cut would move every later frame)
RERENDERABLE = ("show_product", "show_earlier")
_S_RANDOM, _S_TRACK, _S_ABSENT = 11, 12, 13  # random streams of this bench (the campaign's own are 1-4)


def _render(job) -> float:
    """True product engagement of one (possibly edited) video job, rendered without writing a file."""
    from jobs.synth.campaign import render_job

    return float(render_job(job)[1].true_product_engagement)


def _init() -> None:
    from jobs.synth.campaign import _worker_init

    _worker_init()


def load(lake_path: str) -> tuple[object, str, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.Series]:
    """(cfg, model version, scores, seconds, truth, videos, split) read through the Lake facade (Spark)."""
    from jobs.config import load_config
    from jobs.evaluation.against_truth import _model_split
    from jobs.report.advice import advice_inputs
    from jobs.spark import get_spark
    from jobs.storage.lake import Lake

    cfg = load_config(lake=lake_path, overrides={"spark": {"master": "local[1]", "show_progress": False}})
    lake = Lake.from_config(cfg, get_spark(cfg))
    version, scores, seconds = advice_inputs(cfg, lake)
    truth = lake.read_pandas("sample_truth")
    videos = lake.read_pandas("campaign_videos")
    split = _model_split(cfg, lake, scores)
    if split is None:
        raise SystemExit("the scoring model's test influencers are unknown (no training_clips version in its run)")
    lake.spark.stop()
    return cfg, version, scores, seconds, truth, videos, split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lake", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--limit", type=int, default=None, help="at most this many test videos (default: all)")
    args = ap.parse_args()

    from jobs.synth.campaign import CampaignSpec, plan_campaign
    from jobs.synth.edit import show_product
    from models.agreement import bootstrap, spearman
    from pe_udfs.advice import advise_video

    cfg, version, scores, seconds, truth, videos, split = load(args.lake)
    per_video = truth.groupby("video_id").first()
    test = sorted(v for v in scores["video_id"] if split.get(v) == "test" and v in per_video.index)
    if args.limit:
        test = test[: args.limit]
    seed = int(test[0].split("-")[1])
    first = per_video.loc[test[0]]
    spec = CampaignSpec(n_videos=len(videos), seed=seed, width=int(first["width"]), height=int(first["height"]),
                        fps=int(round(first["fps"])))
    with tempfile.TemporaryDirectory(prefix="pe-bench-advice-") as media:
        jobs, meta, _, _ = plan_campaign(spec, media)
    index = {vid: i for i, vid in enumerate(meta["video_id"])}
    by_video = dict(tuple(seconds.groupby("video_id")))

    tasks, rows, skipped, not_first = [], [], [], 0
    for vid in test:
        job = dataclasses.replace(jobs[index[vid]], path="")
        advice = advise_video(by_video[vid], cfg.advice, first_seconds=cfg.saliency.first_seconds)
        usable = [s for s in advice.suggestions if s.kind in RERENDERABLE]
        if not usable:
            skipped.append(vid)
            tasks.append(job)
            rows.append(None)
            continue
        not_first += advice.suggestions[0].kind not in RERENDERABLE
        top = usable[0]
        k = len(top.seconds)
        n_seconds = job.plan.n_seconds
        i = index[vid]
        start = int(np.random.default_rng([seed, _S_RANDOM, i]).integers(0, n_seconds - k + 1))
        aspect = job.alpha.shape[0] / job.alpha.shape[1]
        advised = show_product(job.plan, top.seconds, np.random.default_rng([seed, _S_TRACK, i]), aspect)
        random = show_product(job.plan, range(start, start + k), np.random.default_rng([seed, _S_TRACK, i]), aspect)
        tasks += [job, dataclasses.replace(job, plan=advised), dataclasses.replace(job, plan=random)]
        # the stricter control: k consecutive seconds none of which shows the product in the unedited video
        drawn = truth[truth["video_id"] == vid].set_index("second")["quad_224"].notna().reindex(
            range(n_seconds), fill_value=False).to_numpy()
        starts = [a for a in range(n_seconds - k + 1) if not drawn[a:a + k].any()]
        if starts:
            a = starts[int(np.random.default_rng([seed, _S_ABSENT, i]).integers(0, len(starts)))]
            tasks.append(dataclasses.replace(job, plan=show_product(
                job.plan, range(a, a + k), np.random.default_rng([seed, _S_TRACK, i]), aspect)))
        rows.append({"video_id": vid, "kind": top.kind, "seconds": k, "predicted_gain": top.pe_share_after -
                     top.pe_share_now, "influencer_id": videos.set_index("video_id").loc[vid, "influencer_id"],
                     "absent_control": bool(starts)})

    import multiprocessing

    with ProcessPoolExecutor(max_workers=args.workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init) as pool:
        results = list(pool.map(_render, tasks, chunksize=1))

    out, k = [], 0
    replanned = []
    for vid, row in zip(test, rows):
        base = results[k]
        replanned.append(abs(base - float(per_video.loc[vid, "true_product_engagement"])))
        if row is None:
            k += 1
            continue
        absent = results[k + 3] - base if row["absent_control"] else np.nan
        out.append({**row, "true_pe": base, "gain_advised": results[k + 1] - base, "gain_random": results[k + 2] - base,
                    "gain_random_absent": absent})
        k += 4 if row["absent_control"] else 3
    worst = max(replanned)
    assert worst < 1e-9, f"re-planning does not reproduce the lake's truth (max |Δ true PE| = {worst:.3g})"
    frame = pd.DataFrame(out)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()

    def mean(x: np.ndarray, groups=None):
        return bootstrap(x, x, stat=lambda a, _: np.mean(a, axis=-1), n_boot=args.boot, seed=0,
                         groups=frame["influencer_id"].to_numpy() if groups is None else groups)

    ga, gr = frame["gain_advised"].to_numpy(), frame["gain_random"].to_numpy()
    pred = frame["predicted_gain"].to_numpy()
    d, a, r = mean(ga - gr), mean(ga), mean(gr)
    rho = bootstrap(pred, ga, stat=spearman, n_boot=args.boot, seed=0, groups=frame["influencer_id"].to_numpy())
    kinds = ", ".join(f"{k} {n}" for k, n in frame["kind"].value_counts().items())
    print(f"bench/advice.py  lake {args.lake}  model v{version}  commit {commit}  {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"re-planned {len(test)} test-influencer videos: true PE reproduced (max |Δ| = {worst:.1e})")
    print(f"advised {len(frame)} videos ({frame['influencer_id'].nunique()} influencers; top edit {kinds}; "
          f"median {int(frame['seconds'].median())} s changed); no re-renderable suggestion: {len(skipped)}; "
          f"a cut ranked first (next suggestion used): {not_first}")
    print(f"mean true PE of the unedited videos: {frame['true_pe'].mean():.4f}")
    print(f"true gain, advised edit : {a.value:+.4f} [{a.ci_low:+.4f}, {a.ci_high:+.4f}]")
    print(f"true gain, random edit  : {r.value:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}]")
    print(f"advised - random (paired): {d.value:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}]  "
          f"(advised better in {(ga > gr).sum()}/{len(frame)} videos)")
    sub = frame[frame["absent_control"]]
    if len(sub) >= 3:
        da = mean((sub["gain_advised"] - sub["gain_random_absent"]).to_numpy(), sub["influencer_id"].to_numpy())
        print(f"advised - random among seconds without the product (paired, {len(sub)} videos with such a run): "
              f"{da.value:+.4f} [{da.ci_low:+.4f}, {da.ci_high:+.4f}]  (random-absent gain "
              f"{sub['gain_random_absent'].mean():+.4f})")
    print(f"Spearman predicted vs true gain (advised): {rho.value:.2f} [{rho.ci_low:.2f}, {rho.ci_high:.2f}]")
    print("95 % intervals: bootstrap resampling influencers")


if __name__ == "__main__":
    main()
