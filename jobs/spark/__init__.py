"""The Spark session every job runs in, and the JARs it loads (installed once, never downloaded by a job).

    session     get_spark: the one session factory (local by default, cluster settings from config, Delta built in)
    delta_jars  Delta Lake's JARs: fetched at install
    guard_jar   the SQL guard's session extension (``jobs/sql/java``), compiled at install against pyspark
``python -m jobs.spark install`` (``make install``) puts both in place; ``python -m jobs.spark path`` prints the
Delta JARs for ``spark-submit --jars``.
"""
from jobs.spark.session import (
    DELTA_SQL_SETTINGS,
    delta_settings,
    get_spark,
    local_cores,
    spark_in_background,
    with_task_retries,
)

__all__ = ["get_spark", "spark_in_background", "delta_settings", "DELTA_SQL_SETTINGS", "local_cores", "with_task_retries"]
