"""`pe serve-sql` as a JDBC client sees it: the Thrift server on a free port over a small lake, beeline (from
pyspark's JARs) runs an analyst join and forbidden statements (refused, lake unchanged); started and stopped by
PID. Real Spark, Delta, Derby metastore in the lake."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.jobs.sql_lake import make_sql_lake

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    lake = make_sql_lake(spark, str(tmp_path_factory.mktemp("serve") / "lake"))
    port = free_port()
    proc = pe("--lake", lake.root, "serve-sql", "--port", str(port))
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
    out = beeline(port, "SELECT l.video_id, sum(s.daily_sales) AS sales FROM pe_latest l "
                        "JOIN campaign_videos c ON c.video_id = l.video_id "
                        "JOIN taobao_sales s ON s.product_id = c.product_id GROUP BY l.video_id ORDER BY l.video_id")
    assert out.returncode == 0, out.stderr[-3000:]
    # beeline echoes its prompt before the first output line: "0: jdbc:hive2://…/default> video_id,sales"
    rows = [re.sub(r"^\d+: jdbc:hive2://\S+> ", "", ln) for ln in out.stdout.splitlines() if ln.strip()]
    assert rows == ["video_id,sales", "a,30.0", "b,30.0", "c,30.0"]
    assert (Path(lake.root) / "_metastore" / "metastore_db").is_dir()  # the persistent catalog


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


def test_sigterm_stops_the_server(server):
    _, port, proc, lines = server
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=180) == 0, proc.stderr.read()[-3000:]
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
