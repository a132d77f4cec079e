"""``pe ingest``: a campaign of your own (manifests and folders) into the lake's input tables, row by row checked.

    source ─► sources (rows of a manifest or a folder) ─► checks (per row, on the executors) ─► Lake.merge
    ─► rejected rows into ingest_rejects

    job       the Spark job (run_ingest) and the inbox the nightly DAG reads
    kinds     what each kind of input (products, videos, labels, sales) is: its table, columns and key
    sources   manifest (CSV / Parquet / JSON Lines) and folder rows
    checks    the per-row checks and the rejects
"""
from jobs.ingest.job import IngestSummary, ManifestFormat, inbox_manifests, run_ingest
from jobs.ingest.kinds import IngestError

__all__ = ["run_ingest", "inbox_manifests", "IngestSummary", "ManifestFormat", "IngestError"]
