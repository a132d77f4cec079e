"""``pe sample``: generate the sample campaign and write its four tables to the lake.

generate (jobs.synth: media files under ``<lake>/media``) → write ``campaign_videos``,
``engagement_labels``, ``taobao_sales``, ``sample_truth`` (overwrite, one Delta commit each) → summary.
A campaign with turning products (``--scenario turning``) also writes ``product_images`` (front and side
view of each product); a later campaign without them empties that table if it exists.

Media: ``<lake>/media/videos/<video_id>.mp4`` and ``<lake>/media/products/<product_id>.jpg``. Files left by
an earlier ``pe sample`` run that the new campaign does not have are removed (only the generator's own
``sv-*.mp4`` / ``sp-*.jpg`` names), with the ``.*.partial`` files of a render that was killed. Same seed and
settings → the same tables and byte-identical files.

The four tables are overwritten one commit each, so a run killed between commits leaves them from two
campaigns; ``<lake>/_pe_sample_incomplete.json`` marks that window (written before the first commit, removed
after the last): the next ``pe sample`` says so and rewrites all four.
"""
from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Union

from jobs.config import PEConfig
from jobs.storage import contracts
from jobs.synth.campaign import Campaign, CampaignSpec, SampleError, generate_campaign
from jobs.synth.casting import HoldOut

if TYPE_CHECKING:
    from jobs.storage.lake import Lake

log = logging.getLogger(__name__)

TABLES = ("campaign_videos", "engagement_labels", "taobao_sales", "sample_truth")
APP_ID = "pe-sample"

__all__ = ["SampleError", "SampleSummary", "TABLES", "campaign_spec", "run_sample"]


@dataclass(frozen=True)
class SampleSummary:
    videos: int
    seconds: int
    frames: int
    products: int
    controls: int
    influencers: int
    sales_rows: int
    truth_rows: int
    media_root: str
    table_versions: dict[str, int]
    scenarios: dict[str, int]
    render_s: float
    render_cpu_s: float  # CPU seconds of the render processes, all together
    encode_cpu_s: float  # of which H.264/MP4 writing
    total_s: float
    recovered: dict | None = None  # the interrupted earlier run this one completed (its marker), if any
    material: dict[str, int] | None = None  # influencers per cast (jobs.synth.casting): held_out, seen | any

    def lines(self) -> list[str]:
        mix = ", ".join(f"{k} {v}" for k, v in sorted(self.scenarios.items()))
        versions = ", ".join(f"{t} v{v}" for t, v in self.table_versions.items())
        return [
            f"sample campaign: {self.videos} videos, {self.seconds} s ({self.frames} frames), {self.products} products "
            f"({self.controls} never advertised), {self.influencers} influencers",
            f"scenarios: {mix}",
        ] + ([f"cast: {self.material.get('held_out', 0)} influencers (pe train's test split) on held-out people, "
              f"backgrounds and products; {self.material.get('seen', 0)} on the rest"]
             if self.material and "any" not in self.material else []) + [
            f"media: {self.media_root}/videos, {self.media_root}/products",
            f"tables: {versions} ({self.sales_rows} sales rows, {self.truth_rows} truth rows)",
            f"time: render {self.render_s:.1f} s ({self.frames / max(self.render_s, 1e-9):.0f} frames/s, "
            f"{self.render_cpu_s:.1f} CPU s), total {self.total_s:.1f} s",
        ] + ([f"recovered: an earlier pe sample (seed {self.recovered.get('seed')}) was interrupted between its "
              "table commits; all four tables are rewritten"] if self.recovered else [])


def _marker(lake_path: str) -> Path:
    return Path(lake_path) / "_pe_sample_incomplete.json"


def interrupted_sample(lake_path: str) -> dict | None:
    """The marker of a ``pe sample`` killed between its table commits (the sample tables are then from two
    campaigns), or None."""
    try:
        return json.loads(_marker(lake_path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"seed": None}


def campaign_spec(cfg: PEConfig, **overrides) -> CampaignSpec:
    """The campaign asked for by ``cfg.sample`` with command-line ``overrides`` (None values ignored)."""
    s = cfg.sample
    values: dict[str, Any] = dict(n_videos=s.videos, seed=s.seed, width=s.width, height=s.height, fps=s.fps,
                  min_seconds=s.min_seconds, max_seconds=s.max_seconds, controls=s.controls, audio=s.audio,
                  start_date=s.start_date, panel_days=s.panel_days,
                  hold_out=HoldOut.of(cfg.train))
    values.update({k: v for k, v in overrides.items() if v is not None})
    spec = CampaignSpec(**values)
    spec.check()
    return spec


def _workers(cfg: PEConfig, workers: int | None, n_videos: int) -> int:
    w = workers if workers is not None else cfg.sample.workers
    return max(1, min(w or os.cpu_count() or 1, n_videos))


def _remove_stale_media(media_root: str, campaign: Campaign) -> int:
    keep = {os.path.abspath(p) for p in campaign.video_paths + campaign.listing_paths}
    removed = 0
    for sub, prefix, ext in (("videos", "sv-", ".mp4"), ("products", "sp-", ".jpg")):
        folder = Path(media_root) / sub
        for f in [*folder.glob(f"{prefix}*{ext}"), *folder.glob(f".{prefix}*{ext}.partial")]:
            if os.path.abspath(f) not in keep:
                f.unlink(missing_ok=True)
                removed += 1
    return removed


def run_sample(cfg: PEConfig, lake: Union["Lake", Callable[[], "Lake"]], *, n_videos: int | None = None,
               seed: int | None = None, min_seconds: float | None = None, max_seconds: float | None = None,
               width: int | None = None, height: int | None = None, workers: int | None = None,
               audio: bool | None = None, scenario: str | None = None, progress: Callable[[str], None] | None = None) -> SampleSummary:
    """Generate the campaign and overwrite the four tables (one commit each).

    ``lake`` is a :class:`jobs.storage.lake.Lake` or a function returning one — called in a background thread
    at once, so the Spark session starts while the campaign is planned and rendered (the render processes
    are spawned, not forked, so a JVM in this process is safe). Raises :class:`SampleError` (with a
    ``reason``) for impossible settings. ``progress`` gets a rendering progress line every few seconds.
    """
    t0 = time.perf_counter()
    if "://" in cfg.lake_path:  # file:// lakes are already plain paths here
        raise SampleError("remote_lake", f"pe sample writes media files and needs a local lake folder, not {cfg.lake_path}")
    spec = campaign_spec(cfg, n_videos=n_videos, seed=seed, min_seconds=min_seconds, max_seconds=max_seconds,
                         width=width, height=height, audio=audio, scenario=scenario)
    media_root = cfg.media_root
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pe-sample-lake") as opener:
        opening = opener.submit(lake) if callable(lake) else None
        campaign = generate_campaign(spec, media_root, workers=_workers(cfg, workers, spec.n_videos), progress=progress)
        lake = opening.result() if opening is not None else lake
    from jobs.storage.lake import Lake

    assert isinstance(lake, Lake)  # the function's result, or the Lake given
    removed = _remove_stale_media(media_root, campaign)
    if removed:
        log.info("removed %d media files of an earlier sample campaign", removed)

    frames = {"campaign_videos": campaign.videos, "engagement_labels": campaign.labels,
              "taobao_sales": campaign.sales, "sample_truth": campaign.truth}
    meta = {"seed": spec.seed, "videos": spec.n_videos, "generator": "jobs.synth"}
    versions = {}
    recovered = interrupted_sample(cfg.lake_path)
    if recovered:
        log.warning("an earlier pe sample was interrupted between its table commits; rewriting all four tables")
    marker = _marker(cfg.lake_path)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"seed": spec.seed, "videos": spec.n_videos, "pid": os.getpid()}))
    for name in TABLES:
        columns = contracts.spark_schema(name).fieldNames()  # Spark matches pandas columns by position
        result = lake.write_arrow(name, frames[name][columns], mode="overwrite", metadata=meta)
        versions[name] = result.version
    images = campaign.product_images
    if len(images) or lake.exists("product_images"):  # never leave an earlier campaign's views behind
        columns = contracts.spark_schema("product_images").fieldNames()
        versions["product_images"] = lake.write_arrow("product_images", images[columns], mode="overwrite",
                                                      metadata=meta).version
    marker.unlink(missing_ok=True)
    return SampleSummary(
        videos=spec.n_videos, seconds=int(campaign.truth.shape[0]), frames=campaign.n_frames,
        products=campaign.extras["products"], controls=campaign.extras["controls"],
        influencers=campaign.extras["influencers"], sales_rows=len(campaign.sales), truth_rows=len(campaign.truth),
        media_root=media_root, table_versions=versions, scenarios=campaign.extras["scenarios"],
        render_s=campaign.render_wall_s, render_cpu_s=campaign.render_cpu_s,
        encode_cpu_s=campaign.extras["encode_cpu_s"], total_s=time.perf_counter() - t0, recovered=recovered,
        material=campaign.extras.get("material"),
    )
