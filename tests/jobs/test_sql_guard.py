"""The SQL guard against the bypasses of the parse-only guard, and a generated set of forbidden statements and Java
calls in every wrapper SQL offers: each is refused before it runs, and the lake, the catalog, a folder outside the
lake and the driver are unchanged. Real local Spark and Delta tables; the guard runs in the JVM."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from jobs.sql.guard import SqlRefused, check, run_query
from tests.jobs.sql_lake import make_sql_lake

pytestmark = pytest.mark.slow

ARGS = "'java.lang.System', 'getProperty', 'user.home'"


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """A lake with its views registered, a Delta table and a file outside it, and a view with a Java call in it
    (defined with the guard off, as a view someone else registered)."""
    from jobs.storage.views import register_views

    base = tmp_path_factory.mktemp("guard")
    lake = make_sql_lake(spark, str(base / "lake"))
    register_views(lake)
    outside = base / "outside"
    spark.range(3).write.format("delta").save(str(outside / "delta"))
    (outside / "secret.txt").write_text("secret\n")
    spark.sql(f"CREATE OR REPLACE TEMP VIEW evil_view AS SELECT reflect({ARGS}) AS r")
    lake.outside = str(outside)  # type: ignore[attr-defined]
    return lake


def state(lake) -> dict:
    """What a refused statement must leave as it was: rows and versions of every table, the catalog, the files
    outside the lake, the session's settings that matter."""
    spark = lake.spark
    files = sorted((str(p.relative_to(lake.outside)), p.stat().st_size) for p in Path(lake.outside).rglob("*"))
    return {
        "rows": {t: lake.read(t).count() for t in lake.table_names()},
        "versions": {t: lake.version(t) for t in lake.table_names()},
        "history_kv": spark.sql("DESCRIBE HISTORY kv").first()["version"],
        "catalog": sorted(t.name for t in spark.catalog.listTables()),
        "outside": files,
        "conf": spark.conf.get("spark.sql.runSQLOnFiles", "true"),
    }


# ------------------------------------------------------------------------------------- the reported bypasses
BYPASSES = [
    "EXECUTE IMMEDIATE 'RESTORE TABLE kv TO VERSION AS OF 0'",
    "EXECUTE IMMEDIATE 'DROP TABLE kv'",
    "EXECUTE IMMEDIATE 'DELETE FROM pe_scores'",
    "EXECUTE IMMEDIATE 'ADD JAR {outside}/x.jar'",
    "EXECUTE IMMEDIATE 'SET spark.sql.runSQLOnFiles=true'",
    f"EXECUTE IMMEDIATE \"SELECT reflect({ARGS})\"",
    "WITH x AS (SELECT 1) DELETE FROM pe_scores WHERE video_id = 'a'",
    "WITH x AS (SELECT 1) UPDATE pe_scores SET pe_share = 0",
    "WITH x AS (SELECT 1) MERGE INTO kv t USING kv s ON t.k = s.k WHEN MATCHED THEN DELETE",
    "WITH x AS (SELECT 1) INSERT OVERWRITE TABLE kv SELECT * FROM kv WHERE false",
    "WITH x AS (SELECT 1 AS a) INSERT OVERWRITE DIRECTORY '{outside}/dump' USING csv SELECT * FROM x",
    f"WITH c AS (SELECT reflect({ARGS}) AS r) SELECT * FROM c",
    f"SELECT k, sum(v) OVER w FROM kv WINDOW w AS (PARTITION BY reflect({ARGS}))",
    f"SELECT IDENTIFIER('reflect')({ARGS})",
    f"SELECT IDENTIFIER('java_' || 'method')({ARGS})",
    "DESCRIBE HISTORY '{outside}/delta'",
    "DESCRIBE DETAIL '{outside}/delta'",
    "SELECT * FROM evil_view",
]


@pytest.mark.parametrize("statement", BYPASSES)
def test_reported_bypasses_are_refused_and_change_nothing(lake, statement):
    before = state(lake)
    with pytest.raises(SqlRefused) as refused:
        run_query(lake, statement.replace("{outside}", lake.outside))
    assert "\n" not in refused.value.message and refused.value.reason
    assert state(lake) == before


def test_java_exit_is_refused_before_it_runs(lake):
    for statement in ("SELECT java_method('java.lang.System', 'exit', 0)",
                      "EXECUTE IMMEDIATE \"SELECT IDENTIFIER('java_' || 'method')('java.lang.System', 'exit', 0)\""):
        with pytest.raises(SqlRefused, match="not allowed"):
            run_query(lake, statement)
    assert lake.spark.range(3).count() == 3  # the driver is alive


@pytest.mark.parametrize("statement", [
    "DELETE FROM delta.`{outside}/delta`",
    "EXECUTE IMMEDIATE 'DELETE FROM delta.`{outside}/delta`'",
    "EXECUTE IMMEDIATE 'INSERT INTO delta.`{outside}/delta` SELECT 7'",
    "WITH x AS (SELECT 1 AS a) INSERT OVERWRITE DIRECTORY '{outside}/dump' USING csv SELECT * FROM x",
    "EXECUTE IMMEDIATE 'DROP TABLE kv'",
    f"EXECUTE IMMEDIATE 'UPDATE kv SET v = 0 WHERE k = reflect({ARGS.replace(chr(39), chr(92) + chr(39))})'",
])
def test_write_mode_still_refuses_paths_outside_the_lake_ddl_and_java(lake, statement):
    before = state(lake)
    with pytest.raises(SqlRefused):
        run_query(lake, statement.replace("{outside}", lake.outside), allow_write=True)
    assert state(lake) == before


# ------------------------------------------------------------------------------------ generated variants
STATEMENT_CORES = [
    "DROP TABLE kv", "DELETE FROM kv WHERE k = 'a'", "UPDATE kv SET v = 0", "INSERT INTO kv VALUES ('z', 9)",
    "MERGE INTO kv t USING kv s ON t.k = s.k WHEN MATCHED THEN DELETE",
    "INSERT OVERWRITE TABLE kv SELECT * FROM kv WHERE false",
    "INSERT OVERWRITE DIRECTORY '{outside}/dir' USING csv SELECT 1 AS a",
    "TRUNCATE TABLE kv", "ALTER TABLE kv SET TBLPROPERTIES ('x' = 'y')", "RESTORE TABLE kv TO VERSION AS OF 0",
    "VACUUM kv RETAIN 0 HOURS", "OPTIMIZE kv", "CREATE TABLE evil USING delta LOCATION '{outside}/evil' AS SELECT 1 AS a",
    "CREATE OR REPLACE TEMP VIEW kv2 AS SELECT 1 AS a", "SET spark.sql.runSQLOnFiles=true", "RESET",
    "ADD JAR '{outside}/x.jar'", "CACHE TABLE kv", "UNCACHE TABLE kv", "REFRESH TABLE kv",
    "ANALYZE TABLE kv COMPUTE STATISTICS", "USE default", "CREATE FUNCTION evil AS 'java.lang.String'",
    "DECLARE VARIABLE pe_v INT", "SELECT * FROM text.`{outside}/secret.txt`", "SELECT * FROM delta.`{outside}/delta`",
    "DESCRIBE HISTORY '{outside}/delta'", "DESCRIBE DETAIL '{outside}/delta'", "DESCRIBE HISTORY delta.`{outside}/delta`",
    "SELECT TRANSFORM(k) USING 'cat' AS (k) FROM kv",
]
#: DML cores that SQL also accepts behind a WITH clause.
CTE_CORES = [s for s in STATEMENT_CORES if s.startswith(("DELETE", "UPDATE", "INSERT", "MERGE"))]

JAVA_FUNCTIONS = ["reflect", "java_method", "try_reflect"]
EXPRESSION_WRAPPERS = {
    "select": "SELECT {e} AS r",
    "where": "SELECT * FROM kv WHERE {e} IS NOT NULL",
    "cte": "WITH c AS (SELECT {e} AS r) SELECT * FROM c",
    "second_cte": "WITH c AS (SELECT 1 AS a), d AS (SELECT {e} AS r FROM c) SELECT r FROM d",
    "scalar_subquery": "SELECT (SELECT {e}) AS r",
    "in_subquery": "SELECT * FROM kv WHERE k IN (SELECT {e})",
    "exists": "SELECT * FROM kv WHERE EXISTS (SELECT {e})",
    "from_subquery": "SELECT * FROM (SELECT {e} AS r) t",
    "inline_window": "SELECT k, sum(v) OVER (PARTITION BY {e}) FROM kv",
    "window_order": "SELECT k, rank() OVER (ORDER BY {e}) FROM kv",
    "named_window": "SELECT k, sum(v) OVER w FROM kv WINDOW w AS (PARTITION BY {e})",
    "lambda": "SELECT transform(array(1, 2), x -> {e}) AS r",
    "lambda_filter": "SELECT filter(array('a'), x -> {e} = x) AS r",
    "lateral_view": "SELECT r FROM kv LATERAL VIEW explode(array({e})) t AS r",
    "generator": "SELECT explode(array({e}))",
    "values": "SELECT * FROM VALUES ({e}) AS t(r)",
    "group_by": "SELECT count(*) FROM kv GROUP BY {e}",
    "order_by": "SELECT k FROM kv ORDER BY {e}",
    "having": "SELECT k FROM kv GROUP BY k HAVING max({e}) IS NOT NULL",
    "join_on": "SELECT * FROM kv a JOIN kv b ON a.k = {e}",
    "union": "SELECT k FROM kv UNION ALL SELECT {e}",
    "aggregate_filter": "SELECT count(*) FILTER (WHERE {e} IS NOT NULL) FROM kv",
    "case": "SELECT CASE WHEN v > 0 THEN {e} END FROM kv",
    "hint": "SELECT /*+ BROADCAST(kv) */ {e} FROM kv",
    "pipe": "FROM kv |> SELECT {e} AS r",
    "lateral_subquery": "SELECT * FROM kv, LATERAL (SELECT {e} AS r)",
    "table_function": "SELECT * FROM range(1) WHERE {e} IS NOT NULL",
    "view_join": "SELECT * FROM pe_latest l JOIN kv ON l.video_id = {e}",
}


def mixed_case(sql: str) -> str:
    """Alternate the case of letters outside quotes and backticks."""
    out, quote, i = [], None, 0
    for ch in sql:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'`\"":
            quote = ch
        elif ch.isalpha():
            ch, i = (ch.upper() if i % 2 else ch.lower()), i + 1
        out.append(ch)
    return "".join(out)


def execute_immediate(sql: str) -> str:
    return 'EXECUTE IMMEDIATE "' + sql.replace("\\", "\\\\").replace('"', '\\"') + '"'


def calls(fn: str) -> dict[str, str]:
    """One Java call written the ways SQL allows: plainly, by IDENTIFIER with a concatenation, mixed case, with
    a comment before its arguments."""
    half = len(fn) // 2
    return {"plain": f"{fn}({ARGS})", "identifier": f"IDENTIFIER('{fn[:half]}' || '{fn[half:]}')({ARGS})",
            "mixed_case": f"{mixed_case(fn)}({ARGS})", "comment": f"{fn} /* c */ ({ARGS})"}


def statement_variants() -> dict[str, str]:
    out = {}
    for core in STATEMENT_CORES:
        name = re.sub(r"\W+", "_", core[:40]).strip("_")
        out[f"{name}-plain"] = core
        out[f"{name}-comments"] = f"/* a comment */ {core} -- trailing"
        out[f"{name}-mixed_case"] = mixed_case(core)
        out[f"{name}-execute_immediate"] = execute_immediate(core)
        out[f"{name}-nested_execute_immediate"] = execute_immediate(execute_immediate(core))
        out[f"{name}-explain"] = f"EXPLAIN {core}"
    for core in CTE_CORES:
        name = re.sub(r"\W+", "_", core[:40]).strip("_")
        out[f"{name}-cte"] = f"WITH x AS (SELECT 1 AS one) {core}"
        out[f"{name}-cte_execute_immediate"] = execute_immediate(f"WITH x AS (SELECT 1 AS one) {core}")
    return out


def expression_variants() -> dict[str, str]:
    out = {}
    for fn in JAVA_FUNCTIONS:
        for form, call in calls(fn).items():
            for wrapper, template in EXPRESSION_WRAPPERS.items():
                out[f"{fn}-{form}-{wrapper}"] = template.format(e=call)
            out[f"{fn}-{form}-execute_immediate"] = execute_immediate(f"SELECT {call}")
            out[f"{fn}-{form}-execute_immediate_cte"] = execute_immediate(f"WITH c AS (SELECT {call} AS r) SELECT r FROM c")
    return out


VARIANTS = {**statement_variants(), **expression_variants()}


def test_every_generated_variant_is_refused(lake):
    """Every forbidden core in every wrapper: refused (one line, a reason) and nothing changed. Checked in one
    test so the report counts them: a failure lists every variant that was not refused."""
    before = state(lake)
    not_refused = {}
    for name, sql in VARIANTS.items():
        try:
            check(lake.spark, sql.replace("{outside}", lake.outside), allow_write=False,
                  lake_tables=lake.table_names(), lake_root=lake.root)
            not_refused[name] = "allowed"
        except SqlRefused as e:
            if "\n" in e.message:
                not_refused[name] = f"message of several lines: {e.message!r}"
        except Exception as e:  # an analysis error is not a refusal by the guard
            not_refused[name] = f"{type(e).__name__}: {e}"
    print(f"{len(VARIANTS) - len(not_refused)} of {len(VARIANTS)} generated variants refused")
    assert not not_refused, "\n".join(f"{k}: {v}" for k, v in not_refused.items())
    assert state(lake) == before
    assert len(VARIANTS) > 500


# ---------------------------------------------------------------------------------------- what still runs
def test_analyst_queries_still_run(lake):
    joined = run_query(lake, "SELECT l.video_id, l.pe_share, sum(s.daily_sales) AS sales FROM pe_latest l "
                             "JOIN campaign_videos c ON l.video_id = c.video_id "
                             "JOIN taobao_sales s ON s.product_id = c.product_id "
                             "GROUP BY l.video_id, l.pe_share ORDER BY l.video_id")
    assert joined["video_id"].tolist() == ["a", "b", "c"] and joined["sales"].tolist() == [30.0] * 3
    ranked = run_query(lake, "SELECT video_id, rank() OVER w AS r FROM pe_scores WINDOW w AS (ORDER BY pe_share DESC) "
                             "ORDER BY r")
    assert ranked["video_id"].tolist() == ["c", "b", "a"]
    history = run_query(lake, "DESCRIBE HISTORY pe_scores")
    assert history["version"].tolist() == list(range(lake.version("pe_scores"), -1, -1))
    for query in ("WITH t AS (SELECT k FROM kv) SELECT * FROM t WHERE k IN (SELECT k FROM kv)",
                  "SELECT transform(array(v), x -> x + 1) FROM kv", "SELECT /*+ BROADCAST(kv) */ * FROM kv",
                  f"DESCRIBE DETAIL '{lake.path('kv')}'", "SHOW TABLES", "EXPLAIN SELECT * FROM pe_sales",
                  "SELECT * FROM kv VERSION AS OF 1", "SELECT explode(array(1, 2))", "FROM kv |> WHERE v > 1"):
        run_query(lake, query)
    assert check(lake.spark, "DESCRIBE HISTORY pe_scores", allow_write=False, lake_tables=lake.table_names(),
                 lake_root=lake.root).kind == "read"


def test_write_mode_changes_only_lake_tables(lake):
    run_query(lake, "INSERT INTO kv VALUES ('w', 3)", allow_write=True)
    assert lake.read("kv").filter("k = 'w'").count() == 1
    run_query(lake, "DELETE FROM kv WHERE k = 'w'", allow_write=True)
    assert lake.read("kv").filter("k = 'w'").count() == 0
    assert os.path.isdir(lake.outside)
