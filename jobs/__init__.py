"""Spark entry points and the data platform, by idea; the packages in the order data flows through them:

    synth (sample world) / ingest (your own) ─► storage (the Delta lake, contracts, views) ─► quality
    ─► training ─► scoring ─► evaluation, analysis ─► report;  sql reads the lake;  cli runs them all

Truly top level: :mod:`jobs.config` (the one validated config object), :mod:`jobs.spark` (the session, its JARs
and extensions) and :mod:`jobs.submit` (the one ``spark-submit`` entry point). Each package's ``__init__`` is its
public face. Every job raises :class:`pe_udfs.errors.PEError` subclasses; the CLI prints them.
"""
