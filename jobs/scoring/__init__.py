"""Scoring: PE-score for videos with the champion model, under one scoring plan resolved once per run.

    nightly          ``pe score``: every campaign video not yet scored, on Spark (mapInPandas over the
                     pandas-UDF adapter, pe_udfs.udf) ─► pe_scores, pe_seconds, scoring_errors
    one_video        ``pe score-video``: one file, no Spark, no lake (imports torch: import it by name)
    executor_memory  the memory a scoring task needs against what an executor has: refused before any work

Reads the lake's inputs (:mod:`jobs.storage`) and the registry (:mod:`models`); quality checks of its inputs and
outputs are :mod:`jobs.quality`.
"""
from jobs.scoring.executor_memory import ExecutorMemoryError, MemoryPlan, plan_scoring_memory
from jobs.scoring.nightly import ScoreSummary, run_score

__all__ = ["run_score", "ScoreSummary", "plan_scoring_memory", "MemoryPlan", "ExecutorMemoryError"]
