"""The data quality job: run the Great Expectations suites (:mod:`jobs.quality`) over the lake's tables.

::

    campaign_videos ─┐                      row-level: rejected_inputs() → scoring_errors (stage 'validate'),
    engagement_labels┘─ suite per table ──▶ the rest is scored / trained on
    pe_scores ───────┐
    pe_seconds ──────┘─ suite per table ──▶ table-level: any failure fails the job (check_outputs, pe validate)
                                          └▶ Data Docs (HTML) in <lake>/quality/data_docs/index.html

What each suite checks: :mod:`jobs.quality.suites`; pe_seconds is checked against pe_scores on complete runs
only (:mod:`jobs.quality.seconds`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

import pandas as pd

from jobs.config import PEConfig
from jobs.quality import ge
from jobs.quality.results import FailedExpectation, QualityError, ValidationFailed, ValidationReport
from jobs.quality.rows import MISSING_ID, rejected_inputs, rejected_rows
from jobs.quality.seconds import add_mismatch_columns, pe_seconds_check_frame
from jobs.quality.suites import (
    INPUT_TABLES,
    OUTPUT_TABLES,
    SUITE_TABLES,
    Suite,
    run_suite,
    suite,
    suite_checks,
    suite_failures,
)
from jobs.storage import contracts

if TYPE_CHECKING:
    from jobs.storage.lake import Lake

__all__ = [
    "validate_tables", "validate_table", "validate_frame", "table_frame", "gate", "check_outputs",
    # what the callers of the job use, from jobs.quality
    "QualityError", "ValidationFailed", "ValidationReport", "FailedExpectation", "MISSING_ID", "rejected_inputs",
    "rejected_rows", "add_mismatch_columns", "pe_seconds_check_frame", "suite_checks", "INPUT_TABLES",
    "OUTPUT_TABLES", "SUITE_TABLES",
]


def table_frame(lake: "Lake", name: str, cfg: PEConfig) -> pd.DataFrame:
    """The pandas frame table ``name``'s suite validates (for pe_seconds: the joined per-video frame)."""
    s = suite(name, cfg)
    if name == "pe_seconds":
        scores = lake.read("pe_scores") if lake.exists("pe_scores") else \
            lake.spark.createDataFrame([], contracts.spark_schema("pe_scores"))
        return pe_seconds_check_frame(lake.read("pe_seconds"), scores, cfg)
    return lake.read_pandas(name, columns=list(s.columns))


def validate_frame(frame: Any, name: str, cfg: PEConfig, *, run_name: str | None = None,
                   docs: bool = False) -> ValidationReport:
    """Validate a pandas or Spark DataFrame with table ``name``'s suite, e.g. a job's output before it is
    committed. For ``pe_seconds`` pass :func:`pe_seconds_check_frame`'s result. With ``docs``, results are
    stored and Data Docs rebuilt (see :func:`validate_tables`)."""
    root = ge.quality_root(cfg) if docs else None
    return _report(ge.context(root), suite(name, cfg), frame, docs_path=ge.docs_index(cfg) if root else None,
                   run_name=run_name)


def validate_tables(lake: "Lake", cfg: PEConfig, names: Iterable[str] | None = None, *,
                    run_name: str | None = None, docs: bool = True) -> list[ValidationReport]:
    """Run the suites of ``names`` (default: every suite table that exists) over the whole tables.

    Results are stored and Data Docs rebuilt under :func:`jobs.quality.ge.quality_root` (when there is one and
    ``docs``). A named table that does not exist raises :class:`QualityError` (reason ``table_missing``).
    ``lake`` needs a Spark session for pe_seconds (aggregation) and for tables whose files pyarrow cannot read
    (merged ones).
    """
    if names is None:
        names = [n for n in SUITE_TABLES if lake.exists(n)]
    suites = [suite(n, cfg) for n in dict.fromkeys(names)]
    for s in suites:
        if not lake.exists(s.table):
            raise QualityError("table_missing", f"table {s.table!r} does not exist in {lake.root}")
    root = ge.quality_root(cfg) if docs else None
    context = ge.context(root)
    return [_report(context, s, table_frame(lake, s.table, cfg), docs_path=ge.docs_index(cfg) if root else None,
                    run_name=run_name) for s in suites]


def validate_table(lake: "Lake", name: str, cfg: PEConfig, *, run_name: str | None = None) -> ValidationReport:
    """Validate one whole table with its suite (see :func:`validate_tables`)."""
    return validate_tables(lake, cfg, [name], run_name=run_name)[0]


def gate(reports: Sequence[ValidationReport], *, allow_rejects: bool = False) -> list[ValidationReport]:
    """The reports that fail the job: every failed output table; failed input tables unless
    ``allow_rejects`` (their failing rows are rejected and recorded by the job instead)."""
    return [r for r in reports if not r.success and not (allow_rejects and r.row_level)]


def check_outputs(lake: "Lake", cfg: PEConfig, names: Iterable[str] = OUTPUT_TABLES, *,
                  run_name: str | None = None) -> list[ValidationReport]:
    """Validate the output tables (those that exist among ``names``); raise :class:`ValidationFailed`
    naming every failed expectation if any fails. For the end of a job that wrote them."""
    reports = validate_tables(lake, cfg, [n for n in names if lake.exists(n)], run_name=run_name)
    failing = gate(reports)
    if failing:
        raise ValidationFailed(failing)
    return reports


def _report(context, s: Suite, frame: Any, *, docs_path: str | None, run_name: str | None) -> ValidationReport:
    frame = s.frame(frame)
    validation = run_suite(context, s, frame, "SUMMARY", docs=docs_path is not None, run_name=run_name)
    failed = suite_failures(s, validation)
    return ValidationReport(table=s.table, success=bool(validation.success) and not failed, rows=len(frame),
                            expectations=len(validation.results), failed=tuple(failed), docs_path=docs_path,
                            row_level=s.row_level)
