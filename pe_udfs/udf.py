"""Thin pandas-UDF adapter used by the nightly scoring job (``mapInPandas``): campaign rows in, result rows out.

    campaign rows (video_id, video_uri, product_id, product_image_uri, view_names, view_uris: the product's
        │  product_images views, joined by the job)
        │  per Python worker: model loaded once by the task's loader (the job binds it to one registered
        │  version; no import of models here: this layer is below it), listing features once per
        │  product image (pe_udfs.product_views.ListingCache), torch and OpenCV threads = cores per task; clips
        │  sampled as the run's ScoringPlan says (the model's fps and size over the scoring window)
        ▼
    decode thread: listing + sample_video of the next ``prefetch`` rows ──┐   (overlaps the model's work: on a
    score_video(sampled, ...) of the current row ◄────────────────────────┘    GPU, decoding and SIFT run on
        │                                                                        the CPU meanwhile)
        ▼
    one 'video' row + S 'second' rows      (or one 'error' row for a rejected input)

Every row carries ``kind`` ('video' | 'second' | 'error'); the job splits them into ``pe_scores``,
``pe_seconds`` and ``scoring_errors``. No Spark import here: the function is testable on plain pandas.
"""
from __future__ import annotations

import os
import traceback
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterable, Iterator

import pandas as pd

from pe_udfs.crash_journal import CrashJournal
from pe_udfs.errors import PEInputError, ProductImageError, WorkerCrashed
from pe_udfs.product_views import DEFAULT_VIEW, ListingCache, row_views
from pe_udfs.settings import ScoringPlan

#: Schema of the rows :func:`score_partition` yields (Spark DDL); one flat schema for the three kinds.
RESULT_DDL = (
    "kind STRING, video_id STRING, second INT, "
    # video-level
    "pe_raw DOUBLE, pe_share DOUBLE, pe_lift DOUBLE, e_score DOUBLE, p_score DOUBLE, pe_raw_6s DOUBLE, "
    "pe_share_6s DOUBLE, pe_lift_6s DOUBLE, e_score_6s DOUBLE, p_score_6s DOUBLE, predicted_engagement DOUBLE, "
    "n_seconds INT, product_found_seconds INT, seconds_taken DOUBLE, input_truncated BOOLEAN, input_warnings STRING, "
    # second-level
    "e_mass DOUBLE, pe_mass DOUBLE, p_mass DOUBLE, product_found BOOLEAN, inliers INT, quad_224 ARRAY<DOUBLE>, "
    "e_grid ARRAY<FLOAT>, matched_view STRING, "
    # errors
    "stage STRING, error_class STRING, reason STRING, message STRING"
)
ARRAY_COLUMNS = ("quad_224", "e_grid")
SCORE_COLUMNS = ("pe_raw", "pe_share", "pe_lift", "e_score", "p_score", "pe_raw_6s", "pe_share_6s", "pe_lift_6s",
                 "e_score_6s", "p_score_6s")


@dataclass(frozen=True)
class ScoringTask:
    """Everything a worker needs to score (plain, picklable data; shipped to executors in the closure)."""

    # device → the engagement model (``.module``: torch module, ``.device``: where it runs), called once per
    # worker as load_model(device=...); picklable, bound to a fixed version, never an alias (the alias may move
    # during the run): the job passes functools.partial(ModelRegistry.load_version, "N") of the run's registry
    load_model: Callable[..., Any]
    plan: ScoringPlan  # the run's sampling, window, product and saliency settings, resolved on the driver
    device: str = "auto"
    cores: int = 1  # CPU cores this task may use: torch's threads and OpenCV's (Spark runs tasks side by side)
    allowed_schemes: tuple[str, ...] = ("file",)
    allowed_roots: tuple[str, ...] = field(default_factory=tuple)
    listing_cache_size: int = 256
    prefetch: int = 1  # videos decoded ahead in a thread while the current one is scored (0 = none)
    gpu_share: float = 1.0  # share of a GPU one task may use (spark.task.resource.gpu.amount)
    crash_journal: str | None = None  # folder every attempt of the run sees (pe_udfs.crash_journal); None = off
    max_crashes: int = 2  # a video whose worker died this often becomes one 'worker_crashed' error row


_LISTINGS = ListingCache()


def listing_for(uri: str | None, task: ScoringTask):
    """Listing features of one product image, computed once per worker process (the worker's ListingCache)."""
    return product_views_for([(DEFAULT_VIEW, uri)] if uri else [], task)[0].features


def product_views_for(views: list[tuple[str, str]], task: ScoringTask):
    """:class:`~pe_udfs.product_views.ListingView` per (view name, image URI), features cached per worker
    (an image's error is cached too, and re-raised for every video that uses it)."""
    if not views:
        raise ProductImageError("not_found", "the campaign row has no product_image_uri and its product no "
                                "product_images rows")
    _LISTINGS.max_size = task.listing_cache_size
    return _LISTINGS.views(views, task.plan.product, allowed_schemes=task.allowed_schemes,
                           allowed_roots=task.allowed_roots or None)


def _error_row(video_id: str, stage: str, error_class: str, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "error", "video_id": video_id, "stage": stage, "error_class": error_class, "reason": reason,
            "message": message[:4000]}


def score_rows(rows: Iterable[dict[str, Any]], task: ScoringTask) -> Iterator[dict[str, Any]]:
    """Score campaign rows one by one; yield result dicts (see :data:`RESULT_DDL`). Never raises for a bad
    video: each rejected input becomes one 'error' row. A model that cannot load raises (the job checked it
    on the driver before touching any table, so this means the executor's environment is broken). The next
    ``task.prefetch`` rows are decoded in a thread while the current one is scored."""
    import time

    import cv2
    import torch

    from pe_udfs.score import score_video

    # Threads = the task's cores for both libraries: with their defaults (every core of the machine) the tasks
    # side by side on an executor oversubscribe its cores.
    torch.set_num_threads(max(1, task.cores))
    cv2.setNumThreads(max(1, task.cores))
    loaded = task.load_model(device=task_device(task.device))
    clip, product = task.plan.clip, task.plan.product
    saliency = _fixed_chunk(task.plan, loaded, task.gpu_share)
    journal = CrashJournal(task.crash_journal, task.max_crashes) if task.crash_journal else None
    # A retried task decodes one video at a time, so a crash is blamed on exactly the video being worked on.
    prefetch = task.prefetch if _attempt_number() == 0 else 0
    for row, decoded in prefetched(rows, partial(_decode, task=task, clip=clip, journal=journal), prefetch):
        vid = str(row["video_id"])
        t0 = time.perf_counter()
        mark = None
        try:
            listing, sampled, mark = decoded.result()
            vs = score_video(sampled, listing, model=loaded.module, clip=clip, product=product,
                             saliency=saliency, device=loaded.device)
        except PEInputError as e:
            _forget(journal, mark or getattr(e, "mark", None))
            yield _error_row(vid, e.stage, type(e).__name__, e.reason, str(e))
            continue
        except Exception as e:  # a bug or resource problem with this one video: record it, keep going
            _forget(journal, mark)
            tb = traceback.format_exc(limit=3)
            yield _error_row(vid, "score", type(e).__name__, "unexpected_error", f"{e}\n{tb}")
            continue
        _forget(journal, mark)
        out = {"kind": "video", "video_id": vid, "predicted_engagement": vs.predicted_engagement,
               "n_seconds": vs.n_seconds, "product_found_seconds": vs.product_found_seconds,
               "seconds_taken": time.perf_counter() - t0, "input_truncated": bool(vs.video["truncated"]),
               "input_warnings": "; ".join(vs.video["warnings"])[:4000] or None}
        out.update({k: float(vs.scores[k]) for k in SCORE_COLUMNS})
        yield out
        for s in vs.seconds:
            yield {"kind": "second", "video_id": vid, "second": int(s["second"]), "e_mass": s["e_mass"],
                   "pe_mass": s["pe_mass"], "p_mass": s["p_mass"], "product_found": s["product_found"],
                   "inliers": s["inliers"], "quad_224": s["quad_224"], "e_grid": s["e_grid"],
                   "matched_view": s["matched_view"]}


def task_device(device: str) -> str:
    """'auto' / 'cuda' → the GPU Spark assigned to this task (``cuda:<address>``) when it assigned one and CUDA
    is available; otherwise ``device`` unchanged ('auto' then resolves to cuda:0 or the CPU)."""
    if device not in ("auto", "cuda"):
        return device
    try:
        import torch
        from pyspark import TaskContext  # only inside a Spark task; plain pandas callers have no context
    except ImportError:
        return device
    ctx = TaskContext.get()
    gpus = ctx.resources().get("gpu") if ctx is not None else None
    if gpus is not None and gpus.addresses and torch.cuda.is_available():
        return f"cuda:{gpus.addresses[0]}"
    return device


def _fixed_chunk(plan: ScoringPlan, loaded, gpu_share: float):
    """The plan's saliency settings; on CUDA with an automatic frame chunk, the chunk fixed once per worker to
    what fits this task's share of the GPU for the plan's longest clip (the scoring window), so tasks sharing a
    GPU never size themselves on the same free memory."""
    import torch

    from pe_udfs.saliency import frame_chunk_for

    saliency = plan.saliency
    device = torch.device(loaded.device)
    if saliency.frame_chunk or device.type != "cuda":
        return saliency
    size = plan.clip.size
    chunk = frame_chunk_for(loaded.module, plan.frames, saliency, device, size=(size, size), memory_share=gpu_share)
    return saliency.model_copy(update={"frame_chunk": chunk})


def _decode(row: dict[str, Any], task: ScoringTask, clip, journal: CrashJournal | None = None):
    """(listing views, SampledVideo, crash-journal mark) of one campaign row; raises the row's PEInputError.

    With a journal, a video whose worker already died ``max_crashes`` times is given up (WorkerCrashed), and
    every other video is marked before any work on it starts (the mark is removed once its rows are out)."""
    from pe_udfs.video import sample_video

    vid = str(row["video_id"])
    mark = None
    if journal is not None:
        crashes = journal.crashes(vid)
        if crashes >= journal.max_crashes:
            raise WorkerCrashed("worker_crashed", f"video {vid}: its worker process died on {crashes} attempts "
                                f"(killed, out of memory or a native crash); not tried again this run",
                                uri=row.get("video_uri"))
        mark = journal.begin(vid)
    try:
        listing = product_views_for(row_views(row.get("product_image_uri"), _listed(row.get("view_names")),
                                              _listed(row.get("view_uris"))), task)
        sampled = sample_video(row["video_uri"], clip, allowed_schemes=task.allowed_schemes,
                               allowed_roots=task.allowed_roots or None, with_match_frames=True,
                               decode=task.plan.decode)
    except PEInputError as e:
        e.mark = mark  # the caller forgets it once the error row is out
        raise
    return listing, sampled, mark


def _listed(value) -> list | None:
    """An array cell of a pandas row (list, numpy array, None or NaN) → list or None."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return list(value)


def _forget(journal: CrashJournal | None, mark) -> None:
    if journal is not None and mark is not None:
        journal.end(mark)


def _attempt_number() -> int:
    """This Spark task's attempt (0 the first time; 0 outside Spark)."""
    try:
        from pyspark import TaskContext
    except ImportError:
        return 0
    ctx = TaskContext.get()
    return ctx.attemptNumber() if ctx is not None else 0


def prefetched(items: Iterable[Any], fn: Callable[[Any], Any], depth: int) -> Iterator[tuple[Any, Future]]:
    """(item, future of ``fn(item)``) in order, with up to ``depth`` items after the one yielded already running
    in one worker thread (depth 0: each starts when the previous one is yielded). A future holds fn's error."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pe-decode") as pool:
        queue: deque[tuple[Any, Future]] = deque()
        for item in items:
            queue.append((item, pool.submit(fn, item)))
            if len(queue) > depth:
                yield queue.popleft()
        while queue:
            yield queue.popleft()


def score_partition(batches: Iterator[pd.DataFrame], task: ScoringTask, columns: list[str]) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body: batches of campaign rows → batches of result rows with ``columns`` in order."""
    for batch in batches:
        rows = list(score_rows(batch.to_dict("records"), task))
        out = pd.DataFrame(rows, columns=columns)
        for col in ARRAY_COLUMNS:  # rows without the array hold NaN after DataFrame(); Arrow needs None
            out[col] = out[col].astype(object).where(out[col].notna(), None)
        yield out


def cores_per_task(total_cores: int, parallel_tasks: int) -> int:
    """Torch threads per scoring task so that concurrent tasks do not oversubscribe the cores."""
    return max(1, total_cores // max(1, parallel_tasks))


def default_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
