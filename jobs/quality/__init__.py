"""Data quality: Great Expectations 1.x suites for the lake's input and output tables.

    report    what a validation says: ValidationReport, FailedExpectation, QualityError, ValidationFailed
    suites    what each table must satisfy (one suite per table, its checks in words; URIs by the one
              URI policy, pe_udfs.uris), running a suite and reading its failures
    ge        Great Expectations plumbing: importing it safely, an ephemeral context, Data Docs
    rows      row level, input tables: which rows to reject (and why)
    seconds   the pe_seconds cross-table frame: per-second sums against their pe_scores row

The job that runs them over the lake's tables is :mod:`jobs.validate`.
"""
