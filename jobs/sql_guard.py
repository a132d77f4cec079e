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


class SqlRefused(Exception):
    """The statement is not allowed; the message is one line that says why and what is allowed."""


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
        raise SqlRefused(f"function {', '.join(bad)} is not allowed in pe sql")
    if name in READ_ONLY_STATEMENTS or not _is_statement(spark, plan):
        return Verdict("read", name)
    if name in DML_STATEMENTS:
        if not allow_write:
            raise SqlRefused(f"{_words(name)} writes to the lake; pe sql is read-only unless you pass --write")
        target = _dml_target(plan)
        if target is None or target.lower() not in {t.lower() for t in lake_tables}:
            raise SqlRefused(f"{_words(name)} may only write to a lake table by name "
                             f"({', '.join(sorted(lake_tables)) or 'none yet'}), not {target or 'a path'}")
        return Verdict("write", name)
    raise SqlRefused(f"{_words(name)} statements are not allowed in pe sql (allowed: queries, DESCRIBE, SHOW, "
                     f"EXPLAIN; with --write also INSERT, UPDATE, DELETE, MERGE on lake tables)")


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
        raise SqlRefused(f"cannot parse the statement: {text[0] if text else type(e).__name__}") from None


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
