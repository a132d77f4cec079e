"""`pe sql` as an analyst and as a hostile user: Delta SQL by table name, read-only by default, and refusals
decided from Spark's parse (never a traceback, never a change to the lake)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.sql.guard import SqlRefused, check

pytestmark = pytest.mark.slow

PE = str(Path(sys.executable).parent / "pe")
TABLES = {"pe_scores", "kv"}


@pytest.fixture(scope="module", autouse=True)
def kv_tables(spark, tmp_path_factory):
    """The tables the statements below name, registered in the shared session (the guard analyses statements)."""
    from jobs.storage.lake import Lake

    lake = Lake(str(tmp_path_factory.mktemp("sql") / "lake"), spark)
    lake.write("kv", spark.createDataFrame([("a", 1)], "k string, v long"))
    lake.write("kv", spark.createDataFrame([("b", 2)], "k string, v long"))
    lake.ensure("pe_scores")
    lake.register_tables()
    return lake


@pytest.mark.parametrize("query", [
    "SELECT 1", "select * from kv where k = 'a'", "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
    "DESCRIBE HISTORY kv", "DESCRIBE DETAIL kv", "DESCRIBE kv", "SHOW TABLES", "SHOW VIEWS",
    "EXPLAIN SELECT * FROM kv", "SELECT count(*) FROM kv VERSION AS OF 1",
])
def test_reads_are_allowed(spark, query):
    assert check(spark, query, allow_write=False, lake_tables=TABLES).kind == "read"


@pytest.mark.parametrize("query, message", [
    ("INSERT OVERWRITE DIRECTORY '/tmp/x' USING parquet SELECT 1 AS a", "not allowed"),
    ("CREATE TABLE x USING parquet LOCATION '/elsewhere' AS SELECT 1 AS a", "not allowed"),
    ("DROP TABLE pe_scores", "not allowed"),
    ("SET spark.sql.runSQLOnFiles=true", "not allowed"),
    ("SELECT java_method('java.lang.System', 'getenv', 'HOME')", "java_method is not allowed"),
    ("SELECT * FROM kv WHERE reflect('java.lang.Thread', 'sleep', 1) IS NULL", "reflect is not allowed"),
    ("DELETE FROM pe_scores", "read-only unless you pass --write"),
    ("INSERT INTO kv VALUES ('z', 1)", "read-only unless you pass --write"),
    ("VACUUM kv RETAIN 0 HOURS", "not allowed"),
    ("SELEC 1", "cannot parse"),
])
def test_writes_ddl_and_jvm_calls_are_refused(spark, query, message):
    with pytest.raises(SqlRefused, match=message):
        check(spark, query, allow_write=False, lake_tables=TABLES)


def test_write_flag_allows_dml_on_lake_tables_only(spark):
    assert check(spark, "DELETE FROM pe_scores WHERE video_id = 'x'", allow_write=True, lake_tables=TABLES).kind == "write"
    assert check(spark, "MERGE INTO kv t USING kv s ON t.k = s.k WHEN MATCHED THEN DELETE", allow_write=True,
                 lake_tables=TABLES).kind == "write"
    with pytest.raises(SqlRefused, match="only write to a lake table"):
        check(spark, "INSERT INTO other VALUES (1)", allow_write=True, lake_tables=TABLES)
    with pytest.raises(SqlRefused, match="only write to a lake table"):
        check(spark, "DELETE FROM delta.`/tmp/elsewhere`", allow_write=True, lake_tables=TABLES)
    with pytest.raises(SqlRefused, match="not allowed"):
        check(spark, "INSERT OVERWRITE DIRECTORY '/tmp/x' USING parquet SELECT 1", allow_write=True, lake_tables=TABLES)


def _pe(*args):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.run([sys.executable, "-m", "jobs.cli", *args], capture_output=True, text=True, timeout=600,
                          env=env)


def test_pe_sql_delta_sql_by_name_and_refusals_leave_the_lake_unchanged(tmp_path, spark):
    """One `pe` process per statement, as an analyst runs it, on a real lake."""
    from jobs.storage.lake import Lake

    lake = Lake(str(tmp_path / "lake"), spark)
    lake.write("kv", spark.createDataFrame([("a", 1)], "k string, v long"))
    lake.write("kv", spark.createDataFrame([("b", 2)], "k string, v long"))
    root = ["--lake", lake.root, "sql", "--format", "csv"]
    history = _pe(*root, "describe history kv")
    assert history.returncode == 0, history.stderr[-2000:]
    assert [ln.split(",")[0] for ln in history.stdout.splitlines()[1:]] == ["2", "1", "0"]
    old = _pe(*root, "select count(*) as n from kv version as of 1")
    assert old.stdout.splitlines() == ["n", "1"], old.stderr[-2000:]
    assert (lake.root + "/kv") in (Path(lake.root) / "_catalog" / "register.sql").read_text()

    version = lake.version("kv")
    for statement in (f"INSERT OVERWRITE DIRECTORY '{lake.root}/kv' USING parquet SELECT 1 AS a",
                      "SELECT * FROM text.`/etc/hostname`"):  # the other refusals are unit-tested above
        p = _pe(*root, statement)
        assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr[-2000:]
        errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error: ")]
        assert len(errors) == 1, p.stderr  # one line that says why (the JVM may print its own start-up notes)
    assert lake.version("kv") == version and lake.read("kv").count() == 2

    deleted = _pe(*root, "--write", "delete from kv where k = 'a'")
    assert deleted.returncode == 0, deleted.stderr[-2000:]
    assert [r.k for r in lake.read("kv").collect()] == ["b"]
