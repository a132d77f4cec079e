"""`pe serve-sql` as a JDBC client sees it: the Thrift server on a free port over a small lake, beeline (from
pyspark's JARs) and a Python DB-API client (PyHive) run an analyst join (the same rows as `pe sql`) and forbidden
statements (refused, lake unchanged); a table written while it serves appears by name, and clients querying
while it is rewritten each see one whole version; after the stop the catalog persists for another Spark session.
Started and stopped by PID. Real Spark, Delta, Derby metastore in the lake."""
from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.jobs.sql_lake import T0, make_sql_lake

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


JOIN = ("SELECT l.video_id, sum(s.daily_sales) AS sales FROM pe_latest l "
        "JOIN campaign_videos c ON c.video_id = l.video_id "
        "JOIN taobao_sales s ON s.product_id = c.product_id GROUP BY l.video_id ORDER BY l.video_id")


def pe(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "jobs.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def beeline(port: int, sql: str) -> subprocess.CompletedProcess:
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    return subprocess.run(["java", "-cp", f"{jars}/*", "org.apache.hive.beeline.BeeLine",
                           "-u", f"jdbc:hive2://127.0.0.1:{port}/default", "-n", "analyst", "--silent=true",
                           "--outputformat=csv2", "-e", sql], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def server(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    lake = make_sql_lake(spark, str(folder / "lake"))
    conf = folder / "serve.yaml"  # the server looks for new tables every second
    conf.write_text("sql:\n  refresh_seconds: 1\nspark:\n  master: local[2]\n  shuffle_partitions: 2\n")
    port = free_port()
    proc = pe("--config", str(conf), "--lake", lake.root, "serve-sql", "--port", str(port))
    lines: list[str] = []
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if "ready on" in line:
                ready.set()
    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(1500):  # a Spark start on a busy machine takes minutes
        proc.kill()
        pytest.fail(f"server not ready: {''.join(lines)} {proc.stderr.read()[-3000:]}")
    yield lake, port, proc, lines
    if proc.poll() is None:
        proc.kill()


def test_an_analyst_join_over_jdbc(server):
    lake, port, proc, lines = server
    assert f"jdbc:hive2://127.0.0.1:{port}/default" in lines[-1]
    out = beeline(port, JOIN)
    assert out.returncode == 0, out.stderr[-3000:]
    # beeline echoes its prompt before the first output line: "0: jdbc:hive2://…/default> video_id,sales"
    rows = [re.sub(r"^\d+: jdbc:hive2://\S+> ", "", ln) for ln in out.stdout.splitlines() if ln.strip()]
    assert rows == ["video_id,sales", "a,30.0", "b,30.0", "c,30.0"]
    assert (Path(lake.root) / "_metastore" / "metastore_db").is_dir()  # the persistent catalog


def dbapi(port: int):
    from pyhive import hive

    return hive.connect(host="127.0.0.1", port=port, username="analyst")


def test_a_python_dbapi_client_gets_the_same_rows_as_pe_sql(server):
    from typer.testing import CliRunner

    from jobs.cli import app

    lake, port, _, _ = server
    with dbapi(port) as conn:
        cur = conn.cursor()
        cur.execute(JOIN)
        over_jdbc = [tuple(r) for r in cur.fetchall()]
        cur.execute("SHOW TABLES")
        names = {r[1] for r in cur.fetchall()}
    assert over_jdbc == [("a", 30.0), ("b", 30.0), ("c", 30.0)]
    assert {"pe_scores", "campaign_videos", "taobao_sales", "kv", "pe_latest", "pe_sales"} <= names
    out = CliRunner().invoke(app, ["--lake", lake.root, "sql", "--format", "csv", JOIN])
    assert out.exit_code == 0, out.output
    rows = [ln.split(",") for ln in out.output.strip().splitlines()[1:]]
    assert [(v, float(s)) for v, s in rows] == over_jdbc


def test_a_table_written_while_serving_appears_and_every_answer_is_one_whole_version(server, spark):
    """A writer rewrites ``stamps`` (100 rows, all with the same stamp) five times while two clients query it:
    each answer has 100 rows of one stamp (Delta's snapshot isolation through the catalog)."""
    import threading
    import time

    lake, port, _, lines = server
    lake.write("stamps", spark.range(100).selectExpr("id", "0L AS stamp"))
    deadline = time.monotonic() + 300
    with dbapi(port) as conn:
        cur = conn.cursor()
        while True:  # the server looks every second; a busy machine is slower
            cur.execute("SHOW TABLES")
            if "stamps" in {r[1] for r in cur.fetchall()}:
                break
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(1)
    while not any("catalog refreshed" in ln for ln in lines):  # printed once the views are re-created too
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.5)

    answers: list[tuple] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def client():
        try:
            with dbapi(port) as conn:
                cur = conn.cursor()
                while not done.is_set():
                    cur.execute("SELECT count(*), min(stamp), max(stamp) FROM stamps")
                    answers.append(tuple(cur.fetchone()))
        except BaseException as e:  # reported below, not lost in the thread
            errors.append(e)
    readers = [threading.Thread(target=client) for _ in range(2)]
    for r in readers:
        r.start()
    for stamp in range(1, 6):
        lake.write("stamps", spark.range(100).selectExpr("id", f"{stamp}L AS stamp"), mode="overwrite")
    time.sleep(2)
    done.set()
    for r in readers:
        r.join(timeout=300)
    assert not errors, errors
    assert len(answers) >= 2
    assert all(n == 100 and lo == hi for n, lo, hi in answers), answers


@pytest.mark.parametrize("statement", [
    "DROP TABLE kv",
    "EXECUTE IMMEDIATE 'DELETE FROM kv'",
    "SELECT IDENTIFIER('java_' || 'method')('java.lang.System', 'exit', 0)",
    "WITH x AS (SELECT 1) INSERT OVERWRITE TABLE kv SELECT * FROM kv WHERE false",
    "SET spark.sql.runSQLOnFiles=true",
])
def test_forbidden_statements_are_refused_over_jdbc(server, statement):
    lake, port, proc, _ = server
    version = lake.version("kv")
    out = beeline(port, statement)
    assert out.returncode != 0 and "PE_SQL_REFUSED[" in out.stdout + out.stderr, out.stdout + out.stderr[-3000:]
    assert proc.poll() is None  # the server is alive
    assert lake.version("kv") == version and lake.read("kv").count() == 2


def test_port_in_use_and_missing_lake_are_one_line(server, tmp_path):
    lake, port, _, _ = server
    busy = pe("--lake", lake.root, "serve-sql", "--port", str(port))
    _, err = busy.communicate(timeout=300)
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert busy.returncode == 2 and len(errors) == 1 and "pick another port" in errors[0], err
    missing = pe("--lake", str(tmp_path / "nowhere"), "serve-sql", "--port", str(free_port()))
    _, err = missing.communicate(timeout=300)
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert missing.returncode == 1 and len(errors) == 1 and "no lake" in errors[0], err


def test_sigterm_stops_the_server_and_the_catalog_persists_for_other_sessions(server, tmp_path):
    lake, port, proc, lines = server
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=180) == 0, proc.stderr.read()[-3000:]
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert not (Path(lake.root) / "_metastore" / "pe-catalog.pid").exists()
    # a new Spark session on the same metastore (what spark-sql would be) sees the tables and views by name,
    # registering nothing itself
    script = tmp_path / "reader.py"
    script.write_text(
        "import sys\n"
        "from jobs.config import load_config\n"
        "from jobs.sql.serve import catalog_settings, with_spark_conf\n"
        "from jobs.spark import get_spark\n"
        "cfg = load_config(lake=sys.argv[1], overrides={'spark': {'master': 'local[1]'}})\n"
        "cfg = with_spark_conf(cfg, catalog_settings(cfg))\n"
        "spark = get_spark(cfg, app_name='reader')\n"
        f"print('ROWS', [tuple(r) for r in spark.sql({JOIN!r}).collect()])\n")
    out = subprocess.run([sys.executable, str(script), lake.root], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert "ROWS [('a', 30.0), ('b', 30.0), ('c', 30.0)]" in out.stdout, out.stderr[-3000:]


def test_pe_catalog_registers_once_and_leaves_a_served_catalog_to_its_server(tmp_path, spark):
    import datetime as dt

    from jobs.sql.serve import PID_FILE

    lake = make_sql_lake(spark, str(tmp_path / "lake"))
    meta = tmp_path / "lake" / "_metastore"
    meta.mkdir()
    (meta / PID_FILE).write_text(f"{os.getpid()}\n")  # a live process (this one) holds it
    held = pe("--lake", lake.root, "catalog")
    out, err = held.communicate(timeout=300)
    assert held.returncode == 0 and f"pe serve-sql (pid {os.getpid()}) holds" in out, out + err
    (meta / PID_FILE).write_text("999999999\n")  # a holder that is gone
    t0 = dt.datetime.now()
    fresh = pe("--lake", lake.root, "catalog")
    out, err = fresh.communicate(timeout=900)
    assert fresh.returncode == 0 and "tables and views registered in" in out, out + err[-3000:]
    assert (meta / "metastore_db").is_dir() and not (meta / PID_FILE).exists(), dt.datetime.now() - t0


def test_the_catalog_keeper_recreates_the_views_when_the_champion_changes(spark, tmp_path):
    """What the server's refresh loop does, in this session's catalog: nothing while nothing changed; a new
    champion re-creates pe_latest so it prefers that version."""
    from jobs.sql.serve import CatalogKeeper
    from tests.jobs.sql_lake import table

    lake = make_sql_lake(spark, str(tmp_path / "lake"))
    lake.write_arrow("pe_scores", table("pe_scores", [{"video_id": "a", "model_version": "2", "pe_share": 0.9,
                                                      "scored_at": T0 - dt.timedelta(days=1)}]))
    champion = {"version": None}
    keeper = CatalogKeeper(spark, lake.root, lambda: champion["version"])
    assert "pe_latest" in (keeper.refresh() or [])
    latest = "SELECT model_version FROM pe_latest WHERE video_id = 'a'"
    assert keeper.session.sql(latest).first()[0] == "2"  # no champion: the highest model version
    assert keeper.refresh() is None
    champion["version"] = "1"  # the older model is promoted back
    assert "pe_latest" in (keeper.refresh() or [])
    assert keeper.session.sql(latest).first()[0] == "1"
