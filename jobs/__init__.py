"""Spark entry points and the data platform: config, session, Delta lake, contracts, one module per job.

The ``pe`` command is :mod:`jobs.cli` (commands in :mod:`jobs.commands`); data quality is :mod:`jobs.quality`
(run by :mod:`jobs.validate`); the sales-lift analysis is :mod:`jobs.analysis`; the sample campaign's world is
:mod:`jobs.synth`. Every job raises :class:`pe_udfs.errors.PEError` subclasses; the CLI prints them.
"""
