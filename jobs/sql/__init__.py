"""SQL over the lake for analysts, read-only: ``pe sql`` (one statement) and ``pe serve-sql`` (a JDBC server).

    guard       the SQL guard: every statement parsed in the JVM and refused unless it only reads the lake
    java/       the guard's Spark session extension (pe.sqlguard), compiled at install by jobs.spark.guard_jar
    serve       Spark's Thrift server over the lake's tables and analyst views (jobs.storage.views)

It sits above :mod:`jobs.storage`: it reads what the jobs wrote and writes nothing.
"""
from jobs.sql.guard import SqlFailed, SqlRefused, run_query
from jobs.sql.serve import Endpoint, refresh_catalog, serve

__all__ = ["run_query", "SqlRefused", "SqlFailed", "serve", "Endpoint", "refresh_catalog"]
