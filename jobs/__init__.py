"""Spark entry points and the data platform: config, session, Delta lake, contracts, one module per job.

The ``pe`` command is :mod:`jobs.cli` (commands in :mod:`jobs.commands`); data quality is :mod:`jobs.quality`
(run by :mod:`jobs.validate`); the sales-lift analysis is :mod:`jobs.analysis`; the sample campaign's world is
:mod:`jobs.synth`. The lake is :mod:`jobs.lake` (its errors, schema conformance and SQL text in
:mod:`jobs.lake_errors`, :mod:`jobs.lake_schema`, :mod:`jobs.lake_sql`); a job's parts sit beside it
(``ingest_kinds``/``ingest_sources``/``ingest_checks``, ``report_pages``/``report_figures``). Every job raises
:class:`pe_udfs.errors.PEError` subclasses; the CLI prints them.
"""
