"""Nightly PE scoring: ingest → validate inputs → score → validate outputs → maintain → refresh analyst views.

Every task runs one ``pe`` command of the project in its own virtual environment (see pe_common). Tasks are
idempotent: ingest upserts the inbox's manifests by key (a file ingested before writes nothing), scoring skips
videos the champion already scored (upsert by key), validation only reads.
"""
from __future__ import annotations

from airflow.sdk import dag, task

from pe_common import dag_arguments, pe_task_command


@dag(**dag_arguments("pe_nightly", "@daily", __doc__))
def pe_nightly():
    @task.bash
    def ingest(params=None) -> str:
        """Manifests dropped in the inbox (ingest.inbox, else <lake>/inbox) into the input tables; none: no-op."""
        return pe_task_command(params, "ingest", "inbox")

    @task.bash
    def validate_inputs(params=None) -> str:
        """campaign_videos suite; failing rows do not fail the run (pe score rejects and records them)."""
        return pe_task_command(params, "validate", "--table", "campaign_videos", "--allow-rejects")

    @task.bash
    def score(params=None) -> str:
        """The Spark scoring job with the @champion model; writes pe_scores, pe_seconds, scoring_errors."""
        return pe_task_command(params, "score")

    @task.bash
    def validate_outputs(params=None) -> str:
        """pe_scores and pe_seconds suites: any failed expectation (e.g. a duplicate key) fails the run."""
        return pe_task_command(params, "validate", "--table", "pe_scores", "--table", "pe_seconds")

    @task.bash
    def maintain(params=None) -> str:
        """Compact the night's small files (Z-ordered by video_id) and VACUUM past the retention."""
        return pe_task_command(params, "maintain")

    @task.bash
    def refresh_catalog(params=None) -> str:
        """Register every lake table and analyst view in the persistent catalog, so JDBC clients and spark-sql
        see the night's new tables and the current champion (a view that no longer resolves fails here; a
        running pe serve-sql keeps its own catalog current)."""
        return pe_task_command(params, "catalog")

    ingest() >> validate_inputs() >> score() >> validate_outputs() >> maintain() >> refresh_catalog()


pe_nightly()
