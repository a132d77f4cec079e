"""A whole sample campaign: catalogue, influencers, storyboards, rendered videos, truth, labels, sales.

:func:`generate_campaign` is pure apart from writing media files (MP4s and listing JPEGs) under a folder:
it returns the four tables as pandas frames (``campaign_videos``, ``engagement_labels``,
``taobao_sales``, ``sample_truth``) for the job (:mod:`jobs.synth.sample`) to write to the lake. Every random
draw comes from ``numpy.random.default_rng([seed, stream, index])``, so the same spec gives the same
tables and byte-identical files, whatever the number of worker processes.
"""
from __future__ import annotations

import datetime as dt
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import pandas as pd

from jobs.synth.casting import HoldOut, ProductTurns, cast_influencers, default_hold_out, people_of
from jobs.synth.engagement import draw_influencers, engagement_counts
from jobs.synth.products import PRODUCT_KEYS, product_asset, product_side
from jobs.synth.sales import sales_panel, true_lift
from jobs.synth.storyboard import OPT_IN_SCENARIOS, SCENARIOS, VideoPlan, plan_video
from jobs.synth.truth import VideoTruth
from pe_udfs.errors import PEError

#: scenario mix of a campaign (each scenario at least once from 4 videos on; see :func:`_scenarios`)
SCENARIO_WEIGHTS = {"hero": 0.22, "prop": 0.17, "held": 0.17, "wrong_reason": 0.14, "occluded": 0.1, "mixed": 0.12,
                    "no_product": 0.08}

# random streams
_S_CATALOGUE, _S_PLAN, _S_LABELS, _S_SALES = 1, 2, 3, 4


class SampleError(PEError):
    """The sample campaign cannot be made as asked. ``reason`` is a short code (e.g. ``bad_duration``)."""

    stage = "sample"
    exit_code = 2


@dataclass(frozen=True)
class CampaignSpec:
    """What to generate. Sizes in pixels; durations in seconds (videos last a whole number of seconds)."""

    n_videos: int
    seed: int
    width: int = 360
    height: int = 640
    fps: int = 30
    min_seconds: float = 15.0
    max_seconds: float = 60.0
    controls: int = 0  # never-advertised products; 0 → as many as videos
    audio: bool = True
    start_date: dt.date = dt.date(2024, 3, 1)
    panel_days: int = 100
    scenario: str | None = None  # every video in this scenario (e.g. the opt-in 'turning'); None: the mix
    # the training split whose test influencers are cast from held-out material (jobs.synth.casting; default: the
    # split of pe train's default config); None: every influencer from all the material
    hold_out: HoldOut | None = field(default_factory=default_hold_out)

    def check(self) -> None:
        """Raise :class:`SampleError` (with a reason code) for a spec that cannot be generated."""
        if self.n_videos < 1:
            raise SampleError("bad_count", f"--videos must be at least 1, got {self.n_videos}")
        if self.width % 2 or self.height % 2 or self.width < 64 or self.height < 64:
            raise SampleError("bad_size", f"width and height must be even and >= 64 (H.264 4:2:0), got {self.width}x{self.height}")
        if self.fps < 1:
            raise SampleError("bad_fps", f"fps must be >= 1, got {self.fps}")
        lo, hi = self.seconds_range
        if lo > hi or lo < 1:
            raise SampleError("bad_duration", f"no whole number of seconds >= 1 between min_seconds={self.min_seconds} "
                              f"and max_seconds={self.max_seconds}")
        if self.scenario is not None and self.scenario not in SCENARIOS + OPT_IN_SCENARIOS:
            raise SampleError("bad_scenario", f"unknown scenario {self.scenario!r}; known: "
                              f"{', '.join(SCENARIOS + OPT_IN_SCENARIOS)}")
        if self.panel_days < 62:
            raise SampleError("bad_panel", f"panel_days must be >= 62 (30 days before and after a post), got {self.panel_days}")

    @property
    def seconds_range(self) -> tuple[int, int]:
        return math.ceil(self.min_seconds - 1e-9), math.floor(self.max_seconds + 1e-9)


@dataclass
class VideoJob:
    """Everything a worker needs to render one video (picklable)."""

    index: int
    plan: VideoPlan
    listing: np.ndarray
    alpha: np.ndarray
    path: str
    side: tuple[np.ndarray, np.ndarray] | None = None  # the side panel (listing, alpha): turning scenario


@dataclass
class Campaign:
    videos: pd.DataFrame  # campaign_videos
    labels: pd.DataFrame  # engagement_labels
    sales: pd.DataFrame  # taobao_sales
    truth: pd.DataFrame  # sample_truth
    product_images: pd.DataFrame  # product_images: front and side views of turning products (else empty)
    video_paths: list[str]
    listing_paths: list[str]
    n_frames: int
    render_wall_s: float
    render_cpu_s: float  # CPU seconds of rendering and encoding, all workers together
    extras: dict = field(default_factory=dict)


def _ids(seed: int) -> dict[str, str]:
    return {"video": f"sv-{seed}-", "product": f"sp-{seed}-", "control": f"sc-{seed}-", "influencer": f"inf-{seed}-"}


def _scenarios(rng: np.random.Generator, n: int) -> list[str]:
    """Scenario per video: each scenario at least once (n >= 4), then the mix of :data:`SCENARIO_WEIGHTS`
    (largest remainders), in random order."""
    names = list(SCENARIO_WEIGHTS)
    if n < len(names):
        return [str(s) for s in rng.permutation(names)[:n]]
    extra = np.maximum(np.array([SCENARIO_WEIGHTS[k] for k in names]) * n - 1, 0.0)
    counts = np.floor(extra).astype(int) + 1
    for k in np.argsort(-(extra - np.floor(extra)), kind="stable")[: n - counts.sum()]:
        counts[k] += 1
    return [str(s) for s in rng.permutation(np.repeat(names, counts))]


def _price(rng: np.random.Generator, base: float) -> float:
    return float(max(9.9, round(base * rng.uniform(0.8, 1.25)) - 0.1))


def plan_campaign(spec: CampaignSpec, media_root: str | os.PathLike) -> tuple[list[VideoJob], pd.DataFrame, list, pd.DataFrame]:
    """Catalogue, influencers and storyboards; writes the listing photos. Returns (jobs, per-video
    metadata frame, influencers per video, products frame)."""
    spec.check()
    ids = _ids(spec.seed)
    rng = np.random.default_rng([spec.seed, _S_CATALOGUE])
    n = spec.n_videos
    media = Path(media_root)
    (media / "videos").mkdir(parents=True, exist_ok=True)
    (media / "products").mkdir(parents=True, exist_ok=True)

    scenarios = _scenarios(rng, n)
    if spec.scenario is not None:  # drawn all the same, so every other draw of the campaign stays put
        scenarios = [spec.scenario] * n
    lo, hi = spec.seconds_range
    durations = rng.integers(lo, hi + 1, size=n)
    n_inf = max(1, math.ceil(n / 3))
    inf_ids = [f"{ids['influencer']}{k:03d}" for k in range(n_inf)]
    who = np.resize(np.arange(n_inf), n)
    rng.shuffle(who)
    casts = cast_influencers([f"{ids['video']}{i:04d}" for i in range(n)], [inf_ids[int(w)] for w in who], spec.hold_out)
    influencers = draw_influencers(rng, inf_ids, tuple(people_of(rng, inf_ids, casts)))
    turns = ProductTurns(rng)
    adv_day = rng.integers(30, spec.panel_days - 30 + 1, size=n)
    post_second = rng.integers(8 * 3600, 22 * 3600, size=n)
    own = rng.uniform(size=n) < 0.2
    prices = []

    jobs, rows, listing_paths = [], [], []
    for i in range(n):
        inf = influencers[int(who[i])]
        cast = casts[inf.influencer_id]
        key, variant = turns.next(cast)
        asset = product_asset(key, variant)
        listing, alpha, title = asset.listing, asset.alpha, asset.title
        video_id, product_id = f"{ids['video']}{i:04d}", f"{ids['product']}{i:04d}"
        listing_path = media / "products" / f"{product_id}.jpg"
        _write_jpeg(listing_path, listing)
        listing_paths.append(str(listing_path))
        side = side_path = None
        if scenarios[i] == "turning":
            side = product_side(key, variant)
            side_path = media / "products" / f"{product_id}-side.jpg"
            _write_jpeg(side_path, side[0])
        prices.append(_price(rng, asset.base_price))
        plan = plan_video(np.random.default_rng([spec.seed, _S_PLAN, i]), video_id=video_id, scenario=scenarios[i],
                          person=inf.person, n_seconds=int(durations[i]), width=spec.width, height=spec.height,
                          fps=spec.fps, product_aspect=alpha.shape[0] / alpha.shape[1], audio=spec.audio,
                          side_aspect=None if side is None else side[1].shape[0] / side[1].shape[1],
                          backgrounds=cast.backgrounds)
        path = media / "videos" / f"{video_id}.mp4"
        jobs.append(VideoJob(i, plan, listing, alpha, str(path), side))
        published = dt.datetime.combine(spec.start_date, dt.time(), dt.timezone.utc) + dt.timedelta(
            days=int(adv_day[i]), seconds=int(post_second[i]))
        rows.append({
            "video_id": video_id, "video_uri": path.resolve().as_uri(), "product_id": product_id,
            "product_image_uri": listing_path.resolve().as_uri(), "influencer_id": inf.influencer_id,
            "campaign_id": f"camp-{spec.seed}-{key}", "own_product": bool(own[i]), "published_at": published,
            "scenario": scenarios[i], "n_seconds": int(durations[i]), "advertised_day": int(adv_day[i]),
            "product_key": key, "title": title, "listing_path": str(listing_path), "material": cast.name,
            "side_image_uri": None if side_path is None else side_path.resolve().as_uri(),
            "side_path": None if side_path is None else str(side_path),
        })
    meta = pd.DataFrame(rows)
    n_controls = spec.controls or n
    products = pd.DataFrame({
        "product_id": list(meta["product_id"]) + [f"{ids['control']}{k:04d}" for k in range(n_controls)],
        "price": prices + [_price(rng, product_asset(PRODUCT_KEYS[k % len(PRODUCT_KEYS)]).base_price) for k in range(n_controls)],
        "advertised_day": list(meta["advertised_day"]) + [-1] * n_controls,
    })
    return jobs, meta, [influencers[int(who[i])] for i in range(n)], products


def _write_jpeg(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise SampleError("write_failed", f"could not encode listing image {path}")
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, path)


def render_job(job: VideoJob) -> tuple[int, VideoTruth, int, float, float]:
    """Worker: render one video to its file and compute its truth.

    Returns (index, truth, frames, CPU s, of which encoding CPU s); the first job of a worker process also
    pays for loading the bundled clips and photos."""
    from jobs.synth.render import render_video
    from jobs.synth.truth import video_truth

    t0 = time.process_time()
    rendered = render_video(job.plan, job.listing, job.alpha, job.path or None, side=job.side)
    truth = video_truth(rendered.seconds, job.plan.width, job.plan.height, job.alpha,
                        None if job.side is None else job.side[1])
    return job.index, truth, rendered.n_frames, time.process_time() - t0, rendered.encode_cpu_s


def _worker_init() -> None:
    cv2.setNumThreads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


#: seconds between two progress lines while rendering
PROGRESS_EVERY_S = 10.0


def render_all(jobs: list[VideoJob], workers: int, progress: Callable[[str], None] | None = None
               ) -> tuple[dict[int, tuple[VideoTruth, int]], float, float]:
    """Render ``jobs`` (longest first) in ``workers`` spawned processes (in this process when 1).
    Returns ({index: (truth, frames)}, CPU seconds of rendering, of which encoding). ``progress`` gets a
    line (videos and frames done, time left) every :data:`PROGRESS_EVERY_S` seconds and at the end."""
    ordered = sorted(jobs, key=lambda j: -j.plan.n_frames)
    results: dict[int, tuple[VideoTruth, int]] = {}
    cpu = encode = 0.0
    total_frames = sum(j.plan.n_frames for j in jobs)
    done_frames = 0
    t0 = last = time.perf_counter()
    if workers <= 1 or len(jobs) == 1:
        _worker_init()
        outputs: Iterator[tuple[int, VideoTruth, int, float, float]] = map(render_job, ordered)
    else:
        ctx = multiprocessing.get_context("spawn")  # safe with a running JVM/threads in the parent
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init)
        outputs = pool.map(render_job, ordered, chunksize=1)
    try:
        for i, truth, frames, c, e in outputs:
            results[i] = (truth, frames)
            cpu += c
            encode += e
            done_frames += frames
            now = time.perf_counter()
            if progress is not None and (now - last >= PROGRESS_EVERY_S or len(results) == len(jobs)):
                last = now
                progress(_progress_line(len(results), len(jobs), done_frames, total_frames, now - t0))
    finally:
        if workers > 1 and len(jobs) > 1:
            pool.shutdown(cancel_futures=True)
    return results, cpu, encode


def _progress_line(videos: int, total_videos: int, frames: int, total_frames: int, elapsed: float) -> str:
    share = frames / max(total_frames, 1)
    # (no estimate before a tenth is done: the first videos also pay for loading the bundled clips)
    left = "" if videos == total_videos or share < 0.1 else f", about {_duration(elapsed * (1 - share) / share)} left"
    return (f"rendered {videos}/{total_videos} videos ({frames:,}/{total_frames:,} frames, {share:.0%}) "
            f"in {_duration(elapsed)}{left}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def generate_campaign(spec: CampaignSpec, media_root: str | os.PathLike, *, workers: int = 1,
                      progress: Callable[[str], None] | None = None, write_videos: bool = True) -> Campaign:
    """Generate the campaign's media under ``media_root`` (``videos/``, ``products/``) and its four tables.

    ``write_videos=False`` renders only the sampled frames the truth needs and writes no video file (the
    tables are the same; ``bench/world.py`` measures the world this way in seconds).

    With ``workers`` > 1 the videos render in spawned processes (safe next to a running JVM), so a script
    that calls this must guard its entry point with ``if __name__ == "__main__":``. ``progress`` receives a
    line now and then while the videos render (see :func:`render_all`).
    """
    try:
        jobs, meta, influencers, products = plan_campaign(spec, media_root)
        if not write_videos:
            for job in jobs:
                job.path = ""
        t0 = time.perf_counter()
        rendered, cpu, encode_cpu = render_all(jobs, max(1, min(workers, len(jobs))), progress)
    except OSError as e:  # media folder not writable, disk full ...: name the folder, not a traceback
        raise SampleError("write_failed", f"cannot write the sample media under {media_root}: {e}") from e
    except BrokenProcessPool as e:
        raise SampleError("render_failed", f"a render process died ({e}); out of memory? try fewer --workers") from e
    wall = time.perf_counter() - t0
    n = len(jobs)
    truths = [rendered[i][0] for i in range(n)]
    true_e = np.array([t.true_engagement for t in truths])
    true_pe = np.array([t.true_product_engagement for t in truths])

    counts = engagement_counts(np.random.default_rng([spec.seed, _S_LABELS]), true_e, influencers)
    srng = np.random.default_rng([spec.seed, _S_SALES])
    lifts = true_lift(srng, true_pe)
    products = products.assign(lift=np.concatenate([lifts, np.zeros(len(products) - n)]))
    sales = sales_panel(srng, products, spec.start_date, spec.panel_days)
    end = dt.datetime.combine(spec.start_date, dt.time(), dt.timezone.utc) + dt.timedelta(days=spec.panel_days)

    videos = meta[["video_id", "video_uri", "product_id", "product_image_uri", "influencer_id", "campaign_id",
                   "own_product", "published_at"]].assign(ingested_at=end)
    labels = pd.concat([meta[["video_id", "video_uri", "influencer_id", "product_id"]], counts], axis=1).assign(collected_at=end)
    truth_rows = []
    for i, t in enumerate(truths):
        per_video = {
            "video_id": meta["video_id"][i], "true_engagement": t.true_engagement,
            "true_product_engagement": t.true_product_engagement, "scenario": meta["scenario"][i],
            "material": meta["material"][i],
            "true_sales_lift": float(lifts[i]), "n_frames": rendered[i][1], "fps": float(spec.fps),
            "width": spec.width, "height": spec.height,
        }
        for s in t.seconds:
            truth_rows.append({**per_video, **asdict(s)})
    truth = pd.DataFrame(truth_rows)
    return Campaign(videos, labels, sales, truth, _product_images(meta, end), [j.path for j in jobs], list(meta["listing_path"]) + list(meta["side_path"].dropna()),
                    int(sum(r[1] for r in rendered.values())), wall, cpu,
                    {"scenarios": meta["scenario"].value_counts().to_dict(), "products": len(products),
                     "encode_cpu_s": encode_cpu,
                     "controls": len(products) - n, "influencers": len(set(meta["influencer_id"])),
                     "material": meta.drop_duplicates("influencer_id")["material"].value_counts().to_dict()})


def _product_images(meta: pd.DataFrame, at: dt.datetime) -> pd.DataFrame:
    """product_images rows of the products that have a side view: 'front' (view_rank 1, the video's
    product_image_uri) and 'side' (rank 2). Empty for a campaign without turning products."""
    sided = meta[meta["side_image_uri"].notna()]
    rows = [{"product_id": r.product_id, "view": view, "image_uri": uri, "view_rank": rank, "ingested_at": at}
            for r in sided.itertuples() for view, uri, rank in (("front", r.product_image_uri, 1),
                                                                ("side", r.side_image_uri, 2))]
    return pd.DataFrame(rows, columns=["product_id", "view", "image_uri", "view_rank", "ingested_at"])
