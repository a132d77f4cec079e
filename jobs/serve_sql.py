"""``pe serve-sql``: Spark's Thrift JDBC/ODBC server over the lake, read-only through the same guard as ``pe sql``.

Every lake table and analyst view is registered by name in a persistent catalog: an embedded Derby metastore
in ``<lake>/_metastore`` (``--metastore DIR`` elsewhere), re-pointed at the lake's tables on every start. The
server binds to 127.0.0.1 by default. Each JDBC connection gets its own Spark session; every session's parser
is the guard's (:mod:`jobs.sql_guard`), whose policy — read-only, the lake's location, ``USE`` allowed because
JDBC clients send it on connect — is set in the JVM before the server opens its port and cannot be changed
from SQL. Stops cleanly on SIGTERM or Ctrl-C.
"""
from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Callable

from jobs.config import PEConfig
from jobs.lake_errors import LakeError
from pe_udfs.errors import UsageError

#: How long the server may take to open its port after Spark has started.
READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"jdbc:hive2://{self.host}:{self.port}/default"


def check_lake(root: str) -> None:
    """A lake folder with at least one Delta table, else :class:`LakeError` (one line, exit 1)."""
    if "://" in root:
        return  # a remote lake: Spark reports what it cannot read
    if not os.path.isdir(root) or not any(os.path.isdir(os.path.join(root, d, "_delta_log")) for d in os.listdir(root)):
        raise LakeError("no_lake", f"no lake at {root} (no Delta tables there): pass --lake DIR, or create one "
                        f"with `pe sample`")


def check_port(endpoint: Endpoint) -> None:
    """The port is free on the host, else :class:`UsageError` (one line, exit 2)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((endpoint.host, endpoint.port))
        except OSError as e:
            raise UsageError("port_in_use", f"cannot listen on {endpoint.host}:{endpoint.port} ({e.strerror}): "
                             f"pick another port with --port") from None


def server_settings(lake_root: str, endpoint: Endpoint, metastore: str | None = None) -> dict[str, str]:
    """Spark settings of the server's session: Hive catalog in an embedded Derby metastore, host and port,
    no SQL on files. Delta's and the guard's JARs also go on the driver's class path: the Thrift server's
    threads resolve catalog plugins with the JVM's class loader, which does not see ``spark.jars``."""
    from jobs.spark import delta_settings

    folder = os.path.abspath(metastore) if metastore else os.path.join(lake_root, "_metastore")
    return {
        "spark.driver.extraClassPath": os.pathsep.join(delta_settings()["spark.jars"].split(",")),
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={os.path.join(folder, 'metastore_db')};create=true",
        "spark.sql.warehouse.dir": os.path.join(folder, "warehouse"),
        "spark.hadoop.hive.server2.thrift.bind.host": endpoint.host,
        "spark.hadoop.hive.server2.thrift.port": str(endpoint.port),
        "spark.hadoop.hive.server2.transport.mode": "binary",
        "spark.sql.hive.thriftServer.singleSession": "false",
        "spark.sql.runSQLOnFiles": "false",
    }


def serve(cfg: PEConfig, endpoint: Endpoint, *, metastore: str | None = None, champion: str | None = None,
          say: Callable[[str], None] = print) -> None:
    """Start the server, print one readiness line, serve until SIGTERM/SIGINT, stop Spark."""
    from jobs.lake import Lake
    from jobs.spark import get_spark
    from jobs.sql_guard import guarded
    from jobs.views import register_views

    root = cfg.lake_path
    check_lake(root)
    check_port(endpoint)
    if "://" not in root:
        os.makedirs(metastore or os.path.join(root, "_metastore"), exist_ok=True)
    cfg = cfg.model_copy(update={"spark": cfg.spark.model_copy(
        update={"conf": {**cfg.spark.conf, **server_settings(root, endpoint, metastore)}})})
    spark = get_spark(cfg, app_name="pe-serve-sql")
    stop = _stop_on_signals()
    server = None
    try:
        lake = Lake(root, spark)
        names = register_views(lake, champion_version=champion, persistent=True)
        with guarded(spark, allow_write=False, lake_tables=lake.table_names(), lake_root=lake.root, allow_use=True):
            server = spark._jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithSparkSession(
                spark._jsparkSession, False)
            _wait_listening(endpoint, stop)
            say(f"pe serve-sql: ready on {endpoint.url} (lake {root}; {len(names)} tables and views; read-only; "
                f"pid {os.getpid()}; SIGTERM or Ctrl-C stops it)")
            while not stop():
                time.sleep(0.2)
    finally:
        if server is not None:
            server.stop()
        spark.stop()
        say("pe serve-sql: stopped")


def _stop_on_signals() -> Callable[[], bool]:
    """SIGTERM and SIGINT set a flag the serving loop polls (a clean stop, not a traceback)."""
    received: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: received.append(signum))
    return lambda: bool(received)


def _wait_listening(endpoint: Endpoint, stop: Callable[[], bool]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and not stop():
        try:
            with socket.create_connection((endpoint.host, endpoint.port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    if not stop():
        raise LakeError("server_not_ready", f"the Thrift server did not open {endpoint.host}:{endpoint.port} "
                        f"within {READY_TIMEOUT_S:.0f} s")
