"""``pe analyze``: the sales-lift analysis job — lake tables (or the paper's panel) in, ``sales_lift`` + report out.

    extract   lake: taobao_sales, campaign_videos, pe_scores (one model version: --model-version, else the
              @champion, else the newest) ─► SalesPanel           (--panel DIR: the paper's panel format)
    transform first stage per treated product, in parallel over products with Spark (mapInPandas over product
              ids, the panel broadcast once) or in this process (--engine local; 'auto' picks Spark only with
              more than 2 cores and 50 products, where it pays); second stage, influence,
              robustness, Spearman, out-of-fold R² on the driver (pure pandas/statsmodels: jobs/analysis)
    load      sales_lift (one Delta merge commit keyed by product_id + analysis_run: a re-run of the same
              run id writes nothing new); report.md / report.html / figures / CSVs in
              <lake>/reports/analysis/<run>/ (or --out)

The paper's panel is internal validation data: by default its lifts are not written to ``sales_lift``
(``--write-table`` forces it). Runnable as ``pe analyze`` or ``spark-submit jobs/submit.py analyze``.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from jobs.analysis import (
    LIFT_SCHEMA,
    AnalysisError,
    AnalysisResult,
    SalesPanel,
    estimate_lifts,
    format_text,
    load_paper_panel,
    panel_from_lake_frames,
    sales_lift_rows,
    second_stage,
    write_report,
)
from jobs.analysis.first_stage import DEFAULT_FIRST_STAGE, first_stage_method
from jobs.analysis.panel import SalesSource
from jobs.analysis.render import ReportFiles
from jobs.config import PEConfig
from jobs.storage.lake import Lake

log = logging.getLogger(__name__)

Engine = Literal["auto", "spark", "local"]
#: How each product's two-way fixed effects are absorbed (jobs.analysis.first_stage.FIRST_STAGE_METHODS): the
#: exact normal equations with the controls' part built once (fast), or linearmodels AbsorbingLS (the reference).
FirstStage = Literal["schur", "absorbing"]
#: The PE score the second stage regresses lifts on.
PEColumn = Literal["pe_raw", "pe_share"]
#: engine="auto" runs the first stage on Spark only when it pays: more than this many cores and products.
#: Measured on the paper's panel (40 products, 2 shared cores): local 80 s, Spark local[2] 110 s.
AUTO_MIN_CORES = 2
AUTO_MIN_PRODUCTS = 50
_INPUTS = ("taobao_sales", "campaign_videos", "pe_scores")


@dataclass
class AnalyzeSummary:
    run: str
    result: AnalysisResult
    report: ReportFiles | None
    engine: str
    first_stage: str = DEFAULT_FIRST_STAGE
    rows_written: int = 0
    table_version: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return self.text().splitlines()

    def text(self) -> str:
        lines = [format_text(self.result), ""]
        if self.table_version is not None:
            lines.append(f"sales_lift: {self.rows_written} rows for analysis run {self.run} "
                         f"(table version {self.table_version})")
        else:
            lines.append("sales_lift: not written (panel input; use --write-table to store it)")
        if self.report is not None:
            lines.append(f"report: {self.report.html}")
        lines.append("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
                     + f" (first stage engine: {self.engine}, method: {self.first_stage})")
        return "\n".join(lines)


def default_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"analysis-{now:%Y%m%dT%H%M%SZ}"


# ------------------------------------------------------------------------------------------------ extract

def choose_model_version(scores: pd.DataFrame, requested: str | None, champion: str | None) -> tuple[str, str]:
    """(version, why): the requested version, else the champion when it scored any video, else the newest
    (highest numeric version). Raises AnalysisError(no_scores) when the wanted version has no rows."""
    versions = scores["model_version"].dropna().astype(str).unique().tolist()
    if not versions:
        raise AnalysisError("no_scores", "pe_scores has no rows: score the campaign videos first (pe score)")
    if requested is not None:
        if requested not in versions:
            raise AnalysisError("no_scores", f"model version {requested} has no pe_scores rows (have: "
                                f"{', '.join(sorted(versions))})")
        return requested, "requested"
    if champion is not None and champion in versions:
        return champion, "the @champion"

    def key(v: str):
        return (0, int(v), v) if v.isdigit() else (1, 0, v)

    return max(versions, key=key), "the newest scored version" + (
        f" (the champion v{champion} has scored nothing)" if champion else "")


def lake_panel(lake: Lake, cfg: PEConfig, *, model_version: str | None = None, pe_column: str = "pe_raw",
               sales_source: SalesSource = "imputed") -> SalesPanel:
    """The analysis panel from the lake's taobao_sales, campaign_videos and pe_scores (read through Spark)."""
    from jobs.storage.views import champion_version

    missing = [t for t in _INPUTS if not lake.exists(t)]
    if missing:
        raise AnalysisError("missing_tables", f"the lake at {lake.root} has no {', '.join(missing)} table(s); "
                            "the analysis needs sales (taobao_sales), videos (campaign_videos) and scores (pe_scores)")
    sales = lake.read_pandas("taobao_sales")
    videos = lake.read_pandas("campaign_videos")
    scores = lake.read_pandas("pe_scores")
    version, why = choose_model_version(scores, model_version, champion_version(cfg))
    scores = scores[scores["model_version"].astype(str) == version]
    panel = panel_from_lake_frames(sales, videos, scores, pe_column=pe_column, sales_source=sales_source,
                                   source=f"lake {lake.root}")
    panel.notes.insert(0, f"scores of model version {version} ({why}); PE = min-max normalised {pe_column} across "
                          f"its {len(scores)} scored videos")
    return panel


# ------------------------------------------------------------------------------------------------ transform

def spark_lifts(spark, panel: SalesPanel, *, partitions: int | None = None,
                method: str = DEFAULT_FIRST_STAGE) -> pd.DataFrame:
    """The first stage on Spark: treated product ids spread over ``partitions`` tasks; each task runs
    :func:`estimate_lifts` on its products against the broadcast panel. Same rows as the local engine."""
    ids = panel.treated_ids
    n = max(1, min(len(ids), partitions or spark.sparkContext.defaultParallelism * 2))
    shared = spark.sparkContext.broadcast(panel)
    try:
        frame = spark.createDataFrame(pd.DataFrame({"product_id": ids}), "product_id string").repartition(n)

        def run(batches):
            p = shared.value
            for batch in batches:
                if len(batch):
                    yield estimate_lifts(p, batch["product_id"].tolist(), method=method)

        out = frame.mapInPandas(run, schema=LIFT_SCHEMA).toPandas()
    finally:
        shared.unpersist()
    return out.sort_values("product_id", kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ job

def spark_cores(cfg: PEConfig) -> int:
    """Cores Spark has (the running session's parallelism) or would have (``local[N]`` / ``local[*]``);
    a cluster master counts as many."""
    from pyspark.sql import SparkSession

    from jobs.spark import local_cores

    active = SparkSession.getActiveSession()
    if active is not None:
        return int(active.sparkContext.defaultParallelism)
    if cfg.spark.master.startswith("local"):  # local-cluster[…] counts as one core, as before
        return local_cores(cfg.spark.master) or 1
    return 1 << 10


def choose_engine(engine: Engine, cores: int, n_products: int) -> Literal["spark", "local"]:
    """'auto' → 'spark' when Spark has more than AUTO_MIN_CORES cores and there are at least
    AUTO_MIN_PRODUCTS treated products (where it pays), else 'local'."""
    if engine != "auto":
        return engine
    return "spark" if cores > AUTO_MIN_CORES and n_products >= AUTO_MIN_PRODUCTS else "local"


def run_analyze(cfg: PEConfig, lake: Lake | None = None, *, panel_dir: str | None = None, engine: Engine = "auto",
                run_id: str | None = None, out_dir: str | None = None, write_table: bool | None = None,
                model_version: str | None = None, pe_column: PEColumn = "pe_raw",
                sales_source: SalesSource = "imputed", oof_repeats: int = 20,
                first_stage: FirstStage = "schur") -> AnalyzeSummary:
    """Run the analysis on the lake (or on ``panel_dir``), write ``sales_lift`` and the report.

    ``lake``: the lake to read and write (its Spark session runs the first stage); default the config's,
    with a session from :func:`jobs.spark.get_spark`. ``first_stage``: the first-stage method by name (same
    numbers; 'absorbing' is the slow reference)."""
    method_cls = first_stage_method(first_stage)
    if engine not in ("auto", "spark", "local"):
        raise ValueError(f"engine must be 'auto', 'spark' or 'local', not {engine!r}")
    if pe_column not in ("pe_raw", "pe_share"):
        raise ValueError(f"pe_column must be 'pe_raw' or 'pe_share', not {pe_column!r}")
    if panel_dir is not None and sales_source != "imputed":
        raise ValueError("the paper's panel has only rolling sales: sales_source must be 'imputed'")
    run = run_id or default_run_id()
    write_table = panel_dir is None if write_table is None else write_table
    folder = out_dir or _report_folder(cfg, run)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    cores = spark_cores(cfg) if engine == "auto" else 0
    if lake is None:
        from jobs.spark import get_spark

        need_spark = write_table or engine == "spark" or (engine == "auto" and cores > AUTO_MIN_CORES)
        lake = Lake.from_config(cfg, get_spark(cfg) if need_spark else None)
    if panel_dir is not None:
        panel = load_paper_panel(panel_dir)
    else:
        panel = lake_panel(lake, cfg, model_version=model_version, pe_column=pe_column, sales_source=sales_source)
    timings["panel"] = time.perf_counter() - t

    t = time.perf_counter()
    engine = choose_engine(engine, cores, len(panel.treated_ids))
    lifts = (spark_lifts(lake.spark, panel, method=first_stage) if engine == "spark"
             else estimate_lifts(panel, method=first_stage))
    timings["first stage"] = time.perf_counter() - t
    t = time.perf_counter()
    result = second_stage(panel, lifts, oof_repeats=oof_repeats)
    timings["second stage"] = time.perf_counter() - t

    summary = AnalyzeSummary(run, result, None, engine, first_stage)
    t = time.perf_counter()
    analyzed_at = dt.datetime.now(dt.timezone.utc)
    method = (f"two-way FE DiD (product + day FE, search index; {method_cls.description}) on "
              f"{panel.sales_source} daily sales vs {len(panel.control_ids)} controls")
    if write_table:
        from jobs.storage.contracts import spark_schema

        rows = sales_lift_rows(result, analysis_run=run, analyzed_at=analyzed_at, method=method)
        df = lake.spark.createDataFrame(rows, schema=spark_schema("sales_lift"))
        lake.merge("sales_lift", df, metadata={"pe.analysis_run": run, "pe.source": panel.source})
        summary.rows_written, summary.table_version = len(rows), lake.version("sales_lift")
    timings["write"] = time.perf_counter() - t
    t = time.perf_counter()
    summary.report = write_report(result, folder, title=f"Sales-lift analysis {run}",
                                  meta={"analysis run": run, "analyzed at": f"{analyzed_at:%Y-%m-%d %H:%M} UTC",
                                        "first stage engine": engine,
                                        "first stage method": f"{first_stage} ({method_cls.description})"})
    timings["report"] = time.perf_counter() - t
    summary.seconds = timings
    return summary


def _report_folder(cfg: PEConfig, run: str) -> str:
    if "://" in cfg.lake_path:
        raise AnalysisError("remote_lake",
                            f"the lake {cfg.lake_path} is not a local folder: pass --out DIR for the report")
    return os.path.join(cfg.lake_path, "reports", "analysis", run)

