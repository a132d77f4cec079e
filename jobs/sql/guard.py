"""What `pe sql` (and `pe serve-sql`) may run, decided in the JVM on Spark's analysed plan, before anything runs.

The guard is a Spark session extension (``jobs/sql/java/pe/sqlguard``, built by :mod:`jobs.spark.guard_jar`) that wraps the
session's SQL parser: while a policy is active (:func:`guarded`), every statement text Spark parses — from
``spark.sql``, from a JDBC client of the Thrift server, the string of an ``EXECUTE IMMEDIATE`` — is analysed
(EXECUTE IMMEDIATE substituted, views, CTEs and IDENTIFIER resolved; analysis runs no command) and every node
of the analysed plan is checked before the plan is handed back to Spark:

* plan nodes on an allow-list (queries: projections, filters, joins, aggregates, windows, CTEs, views, unions,
  limits, samples, generators; read commands: DESCRIBE incl. Delta's HISTORY/DETAIL, SHOW, EXPLAIN, whose
  statement is checked too); with ``--write`` also Delta DML (INSERT, UPDATE, DELETE, MERGE);
* every relation, DML target and Delta table a command names must lie inside the lake (by name or by path);
* no expression that calls into the JVM by a name the statement gives (``reflect``, ``java_method``,
  ``try_reflect``) or runs user code (Scala, Java, Python, Hive UDFs), in any subquery, CTE, view, window
  spec, lambda or generator.

Anything else — DDL, ``SET``, ``ADD JAR``, ``CACHE``, ``TRANSFORM``, writes to directories, a node the guard
does not know, an error while checking — is refused with one line (:class:`SqlRefused`, reason code). A session
without the guard refuses everything. Reading files by path (``text.`/etc/hostname```) is also switched off
while a ``pe sql`` statement runs, and a path outside the lake is refused in every statement form.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from pe_udfs.errors import PEError

if TYPE_CHECKING:
    import pandas as pd

#: The parser class the guard installs (outermost, so it sees every statement first).
GUARDED_PARSER = "pe.sqlguard.GuardedParser"
_REFUSAL = re.compile(r"PE_SQL_REFUSED\[(\w+)\] ([^\n]*)")


class SqlRefused(PEError):
    """The statement is not allowed; the message is one line that says why and what is allowed."""

    stage = "sql"


class SqlFailed(PEError):
    """An allowed statement failed in Spark (analysis error, missing table, a JVM error); Spark's first line."""

    stage = "sql"


@dataclass(frozen=True)
class Verdict:
    kind: str  # "read" | "write"
    statement: str  # the analysed plan's root node class name


def check(spark, query: str, *, allow_write: bool, lake_tables: Iterable[str], lake_root: str | None = None) -> Verdict:
    """Classify ``query`` without running it; raise :class:`SqlRefused` for anything outside the policy above.

    ``lake_root``: the lake's folder (every location below it is the lake); without it, the locations of
    ``lake_tables`` in the session catalog are."""
    with guarded(spark, allow_write=allow_write, lake_tables=lake_tables, lake_root=lake_root) as parser:
        return _verdict(_in_jvm(lambda: parser.check(query)))


def run_query(lake, query: str, *, allow_write: bool = False, limit: int | None = None) -> "pd.DataFrame":
    """Check ``query`` (:func:`check`) and run it over ``lake``'s tables; at most ``limit`` rows, as pandas.

    The policy stays active while Spark runs the statement, so the guard checks the very text Spark parses.
    Raises :class:`SqlRefused` for a statement that is not allowed, :class:`SqlFailed` when Spark fails it."""
    spark = lake.spark
    with no_file_queries(spark), guarded(spark, allow_write=allow_write, lake_tables=lake.table_names(),
                                         lake_root=lake.root) as parser:
        _in_jvm(lambda: parser.check(query))
        try:
            df = spark.sql(query)
            return (df if limit is None else df.limit(limit)).toPandas()
        except Exception as e:  # Spark's analysis/parse errors and JVM errors alike: their message, not a traceback
            refused = _refusal(e)
            if refused is not None:
                raise refused from None
            raise SqlFailed("query_failed", f"query failed: {_first_line(e)}") from e


@contextmanager
def guarded(spark, *, allow_write: bool, lake_tables: Iterable[str], lake_root: str | None = None,
            allow_use: bool = False) -> Iterator[Any]:
    """Activate the guard's policy in ``spark``'s JVM for the block; yields the guarded parser.

    :class:`SqlRefused` (``guard_missing``) when the session was built without the guard's extension."""
    parser = spark._jsparkSession.sessionState().sqlParser()
    if parser.getClass().getName() != GUARDED_PARSER:
        raise SqlRefused("guard_missing", "this Spark session has no SQL guard (its JAR needs a JDK's javac: run "
                         "`make install`), so pe sql runs nothing")
    activate(spark, allow_write=allow_write, lake_tables=lake_tables, lake_root=lake_root, allow_use=allow_use)
    try:
        yield parser
    finally:
        spark._jvm.pe.sqlguard.Policy.deactivate()


def activate(spark, *, allow_write: bool, lake_tables: Iterable[str], lake_root: str | None = None,
             allow_use: bool = False) -> None:
    """Set the JVM's policy (replacing the active one in one step: no statement runs unchecked in between)."""
    tables = sorted(set(lake_tables))
    roots = [lake_root] if lake_root else _table_locations(spark, tables)
    if not roots:
        raise SqlRefused("no_lake", "no lake location to check statements against (no lake tables yet)")
    spark._jvm.pe.sqlguard.Policy.activate(allow_write, allow_use, "\n".join(roots), "\n".join(tables))


@contextmanager
def no_file_queries(spark):
    """Switch off SQL on files (``format.`path```) for the statement, restoring the setting afterwards."""
    key = "spark.sql.runSQLOnFiles"
    before = spark.conf.get(key, "true")
    spark.conf.set(key, "false")
    try:
        yield
    finally:
        spark.conf.set(key, before)


# ---------------------------------------------------------------------------------------------- internals
def _verdict(text: str) -> Verdict:
    kind, _, statement = str(text).partition(":")
    return Verdict(kind, statement)


def _in_jvm(call: Callable[[], Any]) -> Any:
    """Run a py4j call into the guard; its refusals and Spark's errors become :class:`SqlRefused` / :class:`SqlFailed`.
    Any other failure refuses too (fail closed)."""
    from pyspark.errors import AnalysisException, ParseException

    try:
        return call()
    except Exception as e:  # py4j's error, or pyspark's translation of Spark's own exceptions
        refused = _refusal(e)
        if refused is not None:
            raise refused from None
        cls = str(e.java_exception.getClass().getName()) if hasattr(e, "java_exception") else type(e).__name__
        if isinstance(e, ParseException) or cls.endswith("ParseException"):
            raise SqlRefused("parse_error", f"cannot parse the statement: {_first_line(e)}") from None
        if isinstance(e, AnalysisException) or cls.endswith("AnalysisException"):
            raise SqlFailed("query_failed", f"query failed: {_first_line(e)}") from None
        raise SqlRefused("guard_error", f"cannot check the statement: {cls}: {_first_line(e)}") from None


def _refusal(e: BaseException) -> SqlRefused | None:
    """The guard's refusal inside a JVM error (raised by ``spark.sql`` or a py4j call), if it is one."""
    text = str(e.java_exception.toString()) if hasattr(e, "java_exception") else str(e)
    m = _REFUSAL.search(text)
    return SqlRefused(m.group(1), m.group(2).strip()) if m else None


def _table_locations(spark, tables: list[str]) -> list[str]:
    """The catalog locations of the named tables that exist (the policy's lake when no root is given)."""
    catalog = spark._jsparkSession.sessionState().catalog()
    ident = spark._jvm.org.apache.spark.sql.catalyst.TableIdentifier
    return [str(catalog.getTableMetadata(ident.apply(t)).location()) for t in tables
            if catalog.tableExists(ident.apply(t))]


def _first_line(e: Exception) -> str:
    text = e.java_exception.getMessage() if hasattr(e, "java_exception") else (
        e.getMessage() if hasattr(e, "getMessage") else str(e))
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__
