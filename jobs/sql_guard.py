"""What `pe sql` may run, decided from Spark's own parse of the statement, never by matching its text.

Read-only (the default): queries, ``DESCRIBE`` (incl. Delta's ``DESCRIBE HISTORY``/``DETAIL``), ``SHOW``
and ``EXPLAIN``. With ``--write``: also Delta DML (``INSERT``, ``UPDATE``, ``DELETE``, ``MERGE``) whose target
is a table of the lake, by name. Never: DDL, ``SET``, writes to directories or other locations, reading files
by path (``text.`/etc/hostname```; SQL-on-files is switched off while the statement runs) and functions that
call into the JVM (``reflect``, ``java_method``).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pe_udfs.errors import PEError

if TYPE_CHECKING:
    import pandas as pd

#: Parsed top-level statements that only read (Spark 4.0 and Delta 4.0 class names).
READ_ONLY_STATEMENTS = frozenset({
    "DescribeRelation", "DescribeColumn", "DescribeNamespace", "DescribeFunction", "DescribeDeltaHistory",
    "DescribeDeltaDetailCommand", "DescribeDeltaHistoryCommand", "ShowTables", "ShowTablesExtended",
    "ShowViews", "ShowColumns", "ShowNamespaces", "ShowFunctions", "ShowTableProperties", "ShowCreateTable",
    "ShowPartitions", "ShowCatalogs", "ShowCurrentNamespaceCommand", "ExplainCommand",
})
#: Delta DML that ``--write`` allows, with the field that names its target table.
DML_STATEMENTS = frozenset({"InsertIntoStatement", "DeleteFromTable", "UpdateTable", "MergeIntoTable"})
#: Functions that reach into the JVM or the file system.
FORBIDDEN_FUNCTIONS = frozenset({"reflect", "java_method", "try_reflect"})


class SqlRefused(PEError):
    """The statement is not allowed; the message is one line that says why and what is allowed."""

    stage = "sql"


@dataclass(frozen=True)
class Verdict:
    kind: str  # "read" | "write"
    statement: str  # the parsed plan's class name


def check(spark, query: str, *, allow_write: bool, lake_tables: set[str]) -> Verdict:
    """Classify ``query``; raise :class:`SqlRefused` for anything outside the policy above."""
    plan = _parse(spark, query)
    name = _class_name(plan)
    functions = {f.lower() for f in _function_names(plan)}
    bad = sorted(functions & FORBIDDEN_FUNCTIONS)
    if bad:
        raise SqlRefused("function_not_allowed", f"function {', '.join(bad)} is not allowed in pe sql")
    if name in READ_ONLY_STATEMENTS or not _is_statement(spark, plan):
        return Verdict("read", name)
    if name in DML_STATEMENTS:
        if not allow_write:
            raise SqlRefused("read_only", f"{_words(name)} writes to the lake; pe sql is read-only unless you pass --write")
        target = _dml_target(plan)
        if target is None or target.lower() not in {t.lower() for t in lake_tables}:
            raise SqlRefused("write_target", f"{_words(name)} may only write to a lake table by name "
                             f"({', '.join(sorted(lake_tables)) or 'none yet'}), not {target or 'a path'}")
        return Verdict("write", name)
    raise SqlRefused("statement_not_allowed", f"{_words(name)} statements are not allowed in pe sql (allowed: queries, DESCRIBE, SHOW, "
                     f"EXPLAIN; with --write also INSERT, UPDATE, DELETE, MERGE on lake tables)")


class SqlFailed(PEError):
    """An allowed statement failed in Spark (analysis error, missing table, a JVM error); Spark's first line."""

    stage = "sql"


def run_query(lake, query: str, *, allow_write: bool = False, limit: int | None = None) -> "pd.DataFrame":
    """Check ``query`` (:func:`check`) and run it over ``lake``'s tables; at most ``limit`` rows, as pandas.

    Raises :class:`SqlRefused` for a statement that is not allowed, :class:`SqlFailed` when Spark fails it."""
    check(lake.spark, query, allow_write=allow_write, lake_tables=set(lake.table_names()))
    try:
        with no_file_queries(lake.spark):
            df = lake.spark.sql(query)
            return (df if limit is None else df.limit(limit)).toPandas()
    except Exception as e:  # Spark's analysis/parse errors and JVM errors alike: their message, not a traceback
        raise SqlFailed("query_failed", f"query failed: {_first_line(e)}") from e


def _first_line(e: Exception) -> str:
    text = e.getMessage() if hasattr(e, "getMessage") else str(e)
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


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
def _parse(spark, query: str):
    try:
        return spark._jsparkSession.sessionState().sqlParser().parsePlan(query)
    except Exception as e:  # a ParseException: report Spark's own message, first line
        text = str(e).strip().splitlines()
        raise SqlRefused("parse_error", f"cannot parse the statement: {text[0] if text else type(e).__name__}") from None


def _class_name(obj) -> str:
    return obj.getClass().getSimpleName().rstrip("$")


def _is_statement(spark, plan) -> bool:
    """True for anything that is not a plain query: commands, parsed statements (INSERT, CTAS...)."""
    jvm = spark._jvm
    command = jvm.java.lang.Class.forName("org.apache.spark.sql.catalyst.plans.logical.Command")
    return bool(command.isInstance(plan)) or _class_name(plan) in DML_STATEMENTS or "Statement" in _class_name(plan) \
        or _class_name(plan) in {"InsertIntoDir", "CreateTableAsSelect", "ReplaceTableAsSelect", "CreateView"}


def _seq(scala_seq) -> list:
    return [scala_seq.apply(i) for i in range(scala_seq.size())]


def _function_names(plan) -> list[str]:
    """Names of every function called anywhere in the parsed plan (subqueries included)."""
    names: list[str] = []
    stack = [plan]
    seen = 0
    while stack and seen < 100_000:
        node = stack.pop()
        seen += 1
        cls = _class_name(node)
        if cls == "UnresolvedFunction":
            names.append(str(_seq(node.nameParts())[-1]))
        for getter in ("children", "expressions"):
            if hasattr(node, getter):
                try:
                    stack.extend(_seq(getattr(node, getter)()))
                except Exception:
                    pass
        if hasattr(node, "plan") and cls.endswith(("Subquery", "Exists", "ListQuery", "InSubquery")):
            try:
                stack.append(node.plan())
            except Exception:
                pass
    return names


def _dml_target(plan) -> str | None:
    """The target table of a DML statement when it is a plain name (``pe_scores``), else None."""
    cls = _class_name(plan)
    try:
        rel = plan.table() if cls == "InsertIntoStatement" else (
            plan.targetTable() if cls == "MergeIntoTable" else plan.table())
        while _class_name(rel) == "SubqueryAlias":
            rel = rel.child()
        if _class_name(rel) != "UnresolvedRelation":
            return None
        parts = [str(p) for p in _seq(rel.multipartIdentifier())]
        return parts[0] if len(parts) == 1 else None
    except Exception:
        return None


def _words(class_name: str) -> str:
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", " ", class_name).upper()
