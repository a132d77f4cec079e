"""Nightly scoring job: score every campaign video the champion model has not scored yet.

    extract   campaign_videos (Delta) + its product's listing views (product_images, joined by product_id;
              none: product_image_uri alone) ─ anti-join pe_scores of the champion's version, the current
              scoring_config (saliency method, product settings, window) and the same listing_views_id (a
              view added, removed or pointed at another image makes the product's videos candidates again)
              and listing_files_id (so does an image file replaced under the same URI)
              ─► candidates (input rows failing the quality suite are rejected here, one scoring_errors row each)
    transform mapInPandas(pe_udfs.udf.score_partition): per worker, the model is loaded once from the MLflow
              registry and each product's listing features once; score_video per video, on the first
              clip.max_seconds (60 s) whatever window the model trained on (the head is length-agnostic)

The run's ScoringPlan (PEConfig.scoring_plan: the champion's saved sampling over the configured window, the
product and saliency settings) is resolved once, after the model loads, and is what the executor memory check
sizes, what scoring_config hashes and what the workers score with. A plan whose id differs from a stored row's
makes that video a candidate again: the next run scores it once more and the merge replaces its pe_scores row
and its pe_seconds rows of the same seconds (keys without scoring_config).
    load      pe_seconds, pe_scores (merge by key: re-runs and concurrent runs never duplicate a key),
              scoring_errors (merge by video_id + run_id) — one Delta commit per table

A missing or broken model, or executors too small for the model's memory per task (jobs/scoring/executor_memory.py),
fail the job before any table is touched; a bad video never fails it.
Runnable as ``pe score`` or ``spark-submit jobs/submit.py score --config conf/cluster.yaml``.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Sequence

from jobs.config import PEConfig
from jobs.storage.contracts import spark_schema
from jobs.storage.integrity import (
    SCORE_TABLES,
    Disagreement,
    check_score_tables,
    drop_stale_log_files,
    record_run,
)
from jobs.storage.lake import Lake, LakeError
from jobs.storage.listings import FILES_ID, VIEWS_ID, listing_views_id, with_listing_views
from pe_udfs.settings import ScoringPlan

log = logging.getLogger(__name__)

CANDIDATE_COLUMNS = ["video_id", "video_uri", "product_id", "product_image_uri", "view_names", "view_uris"]
#: Spark schema of the candidate rows the scoring UDF gets (view_*: the product's product_images, by view_rank)
CANDIDATE_DDL = ("video_id STRING, video_uri STRING, product_id STRING, product_image_uri STRING, "
                 "view_names ARRAY<STRING>, view_uris ARRAY<STRING>")


@dataclass
class ScoreSummary:
    run_id: str
    model_name: str
    model_version: str
    candidates: int = 0
    scored: int = 0
    errors: int = 0
    truncated: int = 0  # scored from the decodable part of a corrupt or cut-off file (flagged in pe_scores)
    seconds: float = 0.0
    error_stages: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # e.g. the lake check's repairs (also printed at once)

    def line(self) -> str:
        stages = ", ".join(f"{k}={v}" for k, v in sorted(self.error_stages.items()))
        return (f"pe score: run {self.run_id} model {self.model_name} v{self.model_version}: "
                f"scored={self.scored}{f' (truncated input={self.truncated})' if self.truncated else ''} "
                f"errors={self.errors}{f' ({stages})' if stages else ''} "
                f"candidates={self.candidates} seconds={self.seconds:.1f}")


def default_run_id(model_version: str, night: dt.date | None = None) -> str:
    """One run id per night and model version, so re-running the same night rewrites nothing."""
    night = night or dt.datetime.now(dt.timezone.utc).date()
    return f"score-{night:%Y%m%d}-v{model_version}"


def run_score(cfg: PEConfig, *, rescore: bool = False, limit: int | None = None, run_id: str | None = None,
              spark=None, validate_outputs: bool = True) -> ScoreSummary:
    """Score the campaign videos without a champion score; write pe_scores, pe_seconds, scoring_errors.

    Raises the registry's NoChampionError (with why there is none and what to do) or ModelLoadError before
    any table is written."""
    from jobs.spark import spark_in_background
    from pe_udfs.udf import SCORE_COLUMNS

    t0 = time.perf_counter()
    # 1. The model first: a missing or broken model fails the job before any table is written. Meanwhile the
    # session starts and reads what needs no model (the campaign's listings): on a lake with nothing to score
    # the JVM's start and first reads are most of the run.
    listing: dict = {}

    def read_listings(started) -> None:
        lake = Lake.from_config(cfg, started)
        if lake.exists("campaign_videos"):
            listing["videos"] = _listed_videos(lake, cfg.io.allowed_schemes, cfg.allowed_roots)

    session = (lambda: spark) if spark is not None else spark_in_background(cfg, then=read_listings)
    from models.promotion_text import champion_explained  # torch and MLflow: imported while the JVM starts

    with champion_explained(cfg.model_registry()):  # no champion: says why (the last gate) and what to do
        champion, plan = champion_and_plan(cfg)
    run_id = run_id or default_run_id(champion.version)
    summary = ScoreSummary(run_id, champion.name, champion.version)
    spark = session()
    _check_executor_memory(spark, plan, champion)
    lake = Lake.from_config(cfg, spark)
    if not lake.exists("campaign_videos"):
        raise LakeError("table_not_found", f"no campaign_videos table in {lake.root}: ingest videos first, or run `pe sample`")

    # 2. Extract: candidates = videos without a score from this model version and scoring config, and those
    # whose pe_scores and pe_seconds rows disagree (a rolled-back table, an interrupted run): scored again.
    config_id = plan.config_id
    found = _lake_check(lake, champion.version, summary)
    repair = found.videos(champion.version)
    candidates = _candidates(lake, champion.version, config_id, rescore=rescore, limit=limit or cfg.score.limit,
                             allowed_schemes=cfg.io.allowed_schemes, allowed_roots=cfg.allowed_roots, also=repair,
                             listed=listing.get("videos"))
    listing_ids = candidates[["video_id", VIEWS_ID, FILES_ID]]
    candidates = candidates.drop(columns=[VIEWS_ID, FILES_ID])
    summary.candidates = len(candidates)
    uri_of = dict(zip(candidates["video_id"], candidates["video_uri"]))  # for the error rows
    rejected, candidates = _reject_invalid_inputs(candidates, cfg)
    log.info("scoring %d videos (%d rejected by input checks)", len(candidates), len(rejected))

    # 3. Transform on Spark.
    results = _score_on_spark(spark, candidates, cfg, plan, champion) if len(candidates) else None

    # 4. Load: one commit per table; seconds before scores, so a pe_scores row implies its seconds exist.
    now = dt.datetime.now(dt.timezone.utc)
    committed = {"pe_seconds": False, "pe_scores": False}
    meta = {"pe.job": "score", "pe.run_id": run_id, "pe.model_version": champion.version}
    if results is not None:
        from pyspark.sql import functions as F

        stamp = [F.lit(champion.version).alias("model_version"), F.lit(run_id).alias("run_id")]
        scoring = F.lit(config_id).alias("scoring_config")
        seconds_df = results.where("kind = 'second'").select("video_id", *stamp[:1], "second", "e_mass", "pe_mass",
                                                              "p_mass", "product_found", "inliers", "quad_224",
                                                              "e_grid", *stamp[1:], scoring, "matched_view")
        committed["pe_seconds"] = lake.merge("pe_seconds", seconds_df, metadata=meta).committed
        scores_df = results.where("kind = 'video'").select(
            "video_id", *stamp[:1], *SCORE_COLUMNS, "predicted_engagement", "n_seconds", "product_found_seconds",
            F.lit(champion.name).alias("model_name"), F.lit(plan.saliency.method).alias("saliency_method"),
            F.lit(plan.product.method).alias("product_method"), F.lit(champion.run_id).alias("model_run_id"),
            *stamp[1:], F.lit(now).alias("scored_at"), F.lit(plan.clip.max_seconds).alias("window_seconds"), scoring,
            "input_truncated", "input_warnings"
        ).join(spark.createDataFrame(listing_ids, schema=f"video_id STRING, {VIEWS_ID} STRING, {FILES_ID} STRING"),
               "video_id", "left")
        committed["pe_scores"] = lake.merge("pe_scores", scores_df, metadata=meta).committed
        failed = results.where("kind = 'error'").select("video_id", "stage", "error_class", "reason", "message").toPandas()
        counts = results.where("kind = 'video'").agg(F.count(F.lit(1)).alias("scored"),
                                                     F.count(F.when(F.col("input_truncated"), 1)).alias("truncated")).first()
        summary.scored, summary.truncated = int(counts["scored"]), int(counts["truncated"])
        results.unpersist()
    else:
        import pandas as pd

        failed = pd.DataFrame(columns=["video_id", "stage", "error_class", "reason", "message"])
    errors = _error_rows(rejected, failed, uri_of=uri_of, run_id=run_id,
                         model_version=champion.version, at=now)
    if len(errors):
        lake.merge("scoring_errors", spark.createDataFrame(errors, schema=spark_schema("scoring_errors")),
                   metadata=meta)
    summary.errors = len(errors)
    summary.error_stages = errors["stage"].value_counts().to_dict() if len(errors) else {}
    summary.versions = {n: lake.version(n) for n in ("pe_scores", "pe_seconds", "scoring_errors")
                        if lake.exists(n)}
    # what `pe validate` and the next run check the tables against
    # the tables agree at the commits this run leaves when they agreed at its check and only this run wrote
    # them since (a concurrent writer's commit shows as a version it did not make)
    agreed = not found and all(t in found.versions and summary.versions.get(t) == found.versions[t] + committed[t]
                               for t in committed)
    record_run(lake, run_id, summary.versions, model_version=champion.version,
               videos=[str(v) for v in candidates["video_id"]], agreed=agreed)
    if validate_outputs and summary.scored:
        _validate_outputs(lake, cfg)
    summary.seconds = time.perf_counter() - t0
    return summary


def champion_and_plan(cfg: PEConfig):
    """(the ``@champion`` model loaded on the CPU, the run's :class:`ScoringPlan` over its saved clip): what a
    run scores with, resolved once; raises the registry's ModelLoadError when there is no usable champion."""
    champion = cfg.model_registry().load(device="cpu")
    return champion, cfg.scoring_plan(champion.clip)


def _check_executor_memory(spark, plan: ScoringPlan, champion) -> None:
    """Raise ExecutorMemoryError (one line) when the executors cannot hold their concurrent scoring tasks."""
    from jobs.scoring.executor_memory import executor_budget, machine_memory, plan_scoring_memory

    sc = spark.sparkContext
    budget = executor_budget(dict(sc.getConf().getAll()), local=sc.master.startswith("local"),
                             parallelism=sc.defaultParallelism, machine_bytes=machine_memory())
    log.info("memory: %s", plan_scoring_memory(plan, champion, budget).line())


# ------------------------------------------------------------------------------------------------ extract
def _lake_check(lake: Lake, model_version: str, summary: "ScoreSummary") -> Disagreement:
    """Where pe_scores and pe_seconds disagree (``found.videos(model_version)``: this model's videos to score
    again); one warning line on stderr when they do."""
    found = check_score_tables(lake)
    if not found:
        return found
    if found.rolled_back:  # a removed commit's checksums would break the repair's own commit of that version
        for table in SCORE_TABLES:
            if lake.exists(table):
                drop_stale_log_files(lake, table)
    mine = found.videos(model_version)
    what = f"; scoring {len(mine)} of them again" if mine else ""
    line = f"lake check: {found.line()}{what}"
    summary.warnings.append(line)
    print(f"warning: {line}", file=sys.stderr, flush=True)
    return found


def _listed_videos(lake: Lake, allowed_schemes: Sequence[str] | None, allowed_roots: Sequence[str] | None):
    """Every campaign row with its listing views and the ids of those views and files (Spark; the image files
    are looked up once, on the driver): the half of the candidate selection that needs no model."""
    videos = with_listing_views(lake, lake.read("campaign_videos").select(*CANDIDATE_COLUMNS[:4]))
    videos = videos.withColumn(VIEWS_ID, listing_views_id("product_image_uri", "view_names", "view_uris"))
    return _with_files_id(videos, allowed_schemes, allowed_roots)


def _candidates(lake: Lake, model_version: str, scoring_config: str, *, rescore: bool, limit: int | None,
                allowed_schemes: Sequence[str] | None = None, allowed_roots: Sequence[str] | None = None,
                also: Sequence[str] = (), listed=None):
    """Campaign rows to score (pandas: CANDIDATE_COLUMNS + listing_views_id + listing_files_id), by video_id:
    those without a pe_scores row of this model version and scoring config whose listing_views_id and
    listing_files_id are the current ones (an id written as NULL, before it existed, counts as current: an
    upgrade re-scores nothing), and the videos ``also`` names whatever their scores say (repairs).
    ``allowed_*``: the URI policy the listing files are looked up under; ``listed``: :func:`_listed_videos`,
    when already made."""
    from pyspark.sql import functions as F

    videos = listed if listed is not None else _listed_videos(lake, allowed_schemes, allowed_roots)
    if not rescore and lake.exists("pe_scores"):
        done = (lake.read("pe_scores").where((F.col("model_version") == model_version)
                                             & (F.col("scoring_config") == scoring_config))
                .select("video_id", F.col(VIEWS_ID).alias("_done_views"), F.col(FILES_ID).alias("_done_files")))
        if also:
            done = done.where(~F.col("video_id").isin(list(also)))
        current = ((videos["video_id"] == done["video_id"])
                   & (done["_done_views"].isNull() | (done["_done_views"] == videos[VIEWS_ID]))
                   & (done["_done_files"].isNull() | (done["_done_files"] == videos[FILES_ID])))
        videos = videos.join(done, current, "left_anti")
    videos = videos.orderBy("video_id")
    if limit:
        videos = videos.limit(limit)
    return videos.toPandas()


def _with_files_id(videos, allowed_schemes: Sequence[str] | None, allowed_roots: Sequence[str] | None):
    """``videos`` (with product_image_uri, view_uris) + listing_files_id: a 16-hex id of the size and
    modification time of every listing image file of the row, so an image replaced under the same URI makes
    the row a candidate again. Each distinct image is looked up once, on the driver (a local file's stat; a
    remote image, or one that cannot be read, counts as unchanged: NULL in the id)."""
    from pyspark.sql import functions as F

    from pe_udfs.product_views import file_stamp

    images = F.concat(F.array("product_image_uri"), F.coalesce("view_uris", F.array().cast("array<string>")))
    uris = [r["uri"] for r in videos.select(F.explode(images).alias("uri")).where("uri IS NOT NULL").distinct()
            .collect()]
    stamps = {u: None if (st := file_stamp(u, allowed_schemes, allowed_roots)) is None else f"{st[1]}@{st[0]}"
              for u in uris}
    table = videos.sparkSession.createDataFrame([(stamps,)], "_stamps MAP<STRING, STRING>")
    files = F.transform(images, lambda u: F.try_element_at(F.col("_stamps"), u))
    return (videos.crossJoin(F.broadcast(table))
            .withColumn(FILES_ID, F.substring(F.sha2(F.to_json(files), 256), 1, 16)).drop("_stamps"))


def _reject_invalid_inputs(candidates, cfg: PEConfig):
    """Split candidates into (rejected rows with stage 'validate', accepted rows) by the input quality suite."""
    import pandas as pd

    from jobs.quality.validate import rejected_inputs

    if not len(candidates):
        return pd.DataFrame(columns=["video_id", "expectation", "message"]), candidates
    # A row without a usable id can never be matched to its score: it is rejected here, never scored, and
    # recorded under a label that names its file (the error table's key cannot be NULL).
    ids = candidates["video_id"]
    no_id = ids.isna() | ids.astype(str).str.strip().eq("")
    id_rows = pd.DataFrame({
        "video_id": [f"<{'null' if pd.isna(v) else 'blank'} video_id: {u}>"
                     for v, u in zip(ids[no_id], candidates.loc[no_id, "video_uri"])],
        "expectation": "video_id_present", "message": "video_id is missing or blank; the row is not scored"})
    with_id = candidates[~no_id]
    rejected = rejected_inputs(with_id, cfg) if len(with_id) else id_rows.iloc[:0]
    accepted = with_id[~with_id["video_id"].isin(set(rejected["video_id"]))]
    rejected = pd.concat([id_rows, rejected], ignore_index=True).drop_duplicates("video_id")
    return rejected, accepted.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- transform
def _score_on_spark(spark, candidates, cfg: PEConfig, plan: ScoringPlan, champion):
    from pyspark import StorageLevel

    from pe_udfs.udf import RESULT_DDL, ScoringTask, cores_per_task, default_cores, score_partition

    parallelism = spark.sparkContext.defaultParallelism
    local = spark.sparkContext.master.startswith("local")
    threads = cores_per_task(default_cores(), parallelism) if local else int(spark.conf.get("spark.task.cpus", "1"))
    journal = _crash_journal_folder(cfg)
    task = ScoringTask(
        load_model=partial(cfg.model_registry().load_version, champion.version),
        # matching threads per video = cores per task, so concurrent tasks do not oversubscribe the executor
        plan=replace(plan, product=plan.product.model_copy(
            update={"match_workers": plan.product.match_workers or threads})),
        device=cfg.device,
        cores=threads, allowed_schemes=tuple(cfg.io.allowed_schemes), allowed_roots=tuple(cfg.allowed_roots),
        gpu_share=float(spark.conf.get("spark.task.resource.gpu.amount", "1")),
        crash_journal=journal,
    )
    # Same product together (listing features are cached per worker), many small tasks for balance/progress.
    rows = candidates.sort_values(["product_id", "video_id"]).reset_index(drop=True)
    n_parts = max(1, min(len(rows), cfg.score.partitions or parallelism * 4))
    keyed = spark.sparkContext.parallelize(
        [(i * n_parts // len(rows), _plain(r)) for i, r in enumerate(rows[CANDIDATE_COLUMNS].itertuples(index=False))],
        n_parts,
    ).partitionBy(n_parts, lambda k: k).values()
    df = spark.createDataFrame(keyed, schema=CANDIDATE_DDL)
    from jobs.storage.contracts import parse_ddl

    columns = parse_ddl(RESULT_DDL).fieldNames()
    results = df.mapInPandas(partial(score_partition, task=task, columns=columns), schema=RESULT_DDL)
    results = results.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        results.count()  # score now, once; the three writes below read the persisted rows
    finally:
        shutil.rmtree(journal, ignore_errors=True)
    return results


def _plain(row) -> tuple:
    """A candidate row with its array cells (numpy arrays from toPandas) as lists, for createDataFrame."""
    return tuple(list(v) if hasattr(v, "tolist") and not isinstance(v, str) else v for v in row)


def _crash_journal_folder(cfg: PEConfig) -> str:
    """Where this run's workers mark the videos in flight (pe_udfs.crash_journal), so a video that kills its
    worker is given up after ``max_crashes`` attempts instead of failing the night: inside a local lake (every
    executor sees it), else the driver host's temp folder (retries on the same host only)."""
    import tempfile
    import uuid

    base = os.path.join(cfg.lake_path, "_scoring") if "://" not in cfg.lake_path else tempfile.gettempdir()
    return os.path.join(base, f"crash-journal-{uuid.uuid4().hex}")


# ------------------------------------------------------------------------------------------------- load
def _error_rows(rejected, failed, *, uri_of: dict[str, str], run_id: str, model_version: str, at):
    import pandas as pd

    rows = [{"video_id": r.video_id, "stage": "validate", "error_class": "ExpectationFailed",
             "reason": r.expectation, "message": r.message} for r in rejected.itertuples()]
    rows += failed.to_dict("records")
    out = pd.DataFrame(rows, columns=["video_id", "stage", "error_class", "reason", "message"])
    out["run_id"] = run_id
    out["model_version"] = model_version
    out["video_uri"] = out["video_id"].map(uri_of)
    out["at"] = pd.Timestamp(at)
    return out[spark_schema("scoring_errors").fieldNames()]


def _validate_outputs(lake: Lake, cfg: PEConfig) -> None:
    """Table-level output checks (duplicate keys, ranges, seconds consistency); a failure fails the job."""
    from jobs.quality.validate import check_outputs

    check_outputs(lake, cfg, ["pe_scores", "pe_seconds"], run_name="pe-score")

