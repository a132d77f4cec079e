"""Data quality: Great Expectations 1.x suites for the lake's input and output tables.

    validate  the job (``pe validate``, and scoring's own input and output checks): suites over the lake's tables
    results   what a validation says: ValidationReport, FailedExpectation, QualityError, ValidationFailed
    suites    what each table must satisfy (one suite per table, its checks in words; URIs by the one
              URI policy, pe_udfs.uris), running a suite and reading its failures
    ge        Great Expectations plumbing: importing it safely, an ephemeral context, Data Docs
    rows      row level, input tables: which rows to reject (and why)
    seconds   the pe_seconds cross-table frame: per-second sums against their pe_scores row

It reads the lake (:mod:`jobs.storage`); :mod:`jobs.scoring` rejects inputs and checks outputs with it.
"""
from jobs.quality.results import QualityError, ValidationFailed, ValidationReport
from jobs.quality.validate import SUITE_TABLES, gate, validate_tables

__all__ = ["validate_tables", "gate", "SUITE_TABLES", "ValidationReport", "QualityError", "ValidationFailed"]
