"""``pe serve-sql``: Spark's Thrift JDBC/ODBC server over the lake, read-only through the same guard as ``pe sql``.

Every lake table and analyst view is registered by name in a persistent catalog: an embedded Derby metastore
in ``<lake>/_metastore`` (``--metastore DIR`` or ``sql.metastore_dir`` elsewhere; ``sql.metastore_uri`` names an
external Hive metastore instead), so ``spark-sql``, beeline and later sessions see them. While the server runs
it keeps the catalog current itself: every ``sql.refresh_seconds`` it looks for new tables and a new champion
(``pe_latest`` prefers the champion's scores) and re-creates the views in a session of its own that the guard
exempts (clients never get that session). Without a server, ``pe catalog`` (the nightly DAG's last task) does
the same once; an embedded metastore held by a running server is left to it. The server binds to 127.0.0.1 by default. Each JDBC connection gets its own Spark session; every session's parser
is the guard's (:mod:`jobs.sql.guard`), whose policy — read-only, the lake's location, ``USE`` allowed because
JDBC clients send it on connect — is set in the JVM before the server opens its port and cannot be changed
from SQL. Stops cleanly on SIGTERM or Ctrl-C.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Callable

from jobs.config import PEConfig
from jobs.storage.errors import LakeError
from pe_udfs.errors import UsageError

log = logging.getLogger(__name__)

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


def metastore_folder(cfg: PEConfig, metastore: str | None = None) -> str | None:
    """The embedded metastore's folder, or None when the config names an external metastore."""
    if cfg.sql.metastore_uri:
        return None
    chosen = metastore or cfg.sql.metastore_dir
    return os.path.abspath(chosen) if chosen else os.path.join(cfg.lake_path, "_metastore")


def catalog_settings(cfg: PEConfig, metastore: str | None = None) -> dict[str, str]:
    """Spark settings of a session on the persistent catalog: Hive catalog in an embedded Derby metastore (or
    the external one), no SQL on files. Delta's and the guard's JARs also go on the driver's class path: the
    Thrift server's threads resolve catalog plugins with the JVM's class loader, which does not see
    ``spark.jars``."""
    from jobs.spark import delta_settings

    settings = {
        "spark.driver.extraClassPath": os.pathsep.join(delta_settings()["spark.jars"].split(",")),
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.runSQLOnFiles": "false",
    }
    folder = metastore_folder(cfg, metastore)
    if folder is None:
        settings["spark.hadoop.hive.metastore.uris"] = str(cfg.sql.metastore_uri)
    else:
        settings["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
            f"jdbc:derby:;databaseName={os.path.join(folder, 'metastore_db')};create=true")
        settings["spark.sql.warehouse.dir"] = os.path.join(folder, "warehouse")
    return settings


def with_spark_conf(cfg: PEConfig, settings: dict[str, str]) -> PEConfig:
    """``cfg`` with ``settings`` added to its ``spark.conf`` (they win over the file's)."""
    return cfg.model_copy(update={"spark": cfg.spark.model_copy(update={"conf": {**cfg.spark.conf, **settings}})})


def server_settings(cfg: PEConfig, endpoint: Endpoint, metastore: str | None = None) -> dict[str, str]:
    """:func:`catalog_settings` plus the Thrift server's host, port and one session per connection."""
    return {**catalog_settings(cfg, metastore),
            "spark.hadoop.hive.server2.thrift.bind.host": endpoint.host,
            "spark.hadoop.hive.server2.thrift.port": str(endpoint.port),
            "spark.hadoop.hive.server2.transport.mode": "binary",
            "spark.sql.hive.thriftServer.singleSession": "false"}


class CatalogKeeper:
    """Keeps the persistent catalog's tables and views current for one lake, in a Spark session of its own.

    ``champion``: a callable returning the champion's model version (None: the newest version per video).
    :meth:`refresh` re-creates everything when the lake's table list or the champion changed since the last
    time and returns the names then registered (None when nothing changed)."""

    def __init__(self, spark, root: str, champion: Callable[[], str | None]):
        from jobs.storage.lake import Lake

        self.session = spark.newSession()
        self.lake = Lake(root, self.session)
        self.champion = champion
        self.seen: tuple[tuple[str, ...], str | None] | None = None  # (tables, champion) last registered

    @property
    def tables(self) -> list[str]:
        """The lake tables the catalog was last registered with."""
        return list(self.seen[0]) if self.seen else []

    def refresh(self) -> list[str] | None:
        from jobs.storage.views import register_views

        now = (tuple(self.lake.table_names()), self.champion())
        if now == self.seen:
            return None
        names = register_views(self.lake, champion_version=now[1], persistent=True)
        self.seen = now
        return names


def serve(cfg: PEConfig, endpoint: Endpoint, *, metastore: str | None = None,
          champion: Callable[[], str | None] = lambda: None, say: Callable[[str], None] = print) -> None:
    """Start the server, print one readiness line, serve until SIGTERM/SIGINT (keeping the catalog current
    every ``sql.refresh_seconds``), stop Spark."""
    from jobs.spark import get_spark
    from jobs.sql.guard import activate, guarded

    root = cfg.lake_path
    check_lake(root)
    check_port(endpoint)
    folder = metastore_folder(cfg, metastore) if "://" not in root else None
    if folder is not None:
        os.makedirs(folder, exist_ok=True)
        _claim(folder)
    cfg = with_spark_conf(cfg, server_settings(cfg, endpoint, metastore))
    server = spark = None
    try:
        spark = get_spark(cfg, app_name="pe-serve-sql")
        stop = _stop_on_signals()
        keeper = CatalogKeeper(spark, root, champion)
        spark._jvm.pe.sqlguard.Policy.exempt(keeper.session._jsparkSession)
        names = keeper.refresh() or []
        with guarded(spark, allow_write=False, lake_tables=keeper.tables, lake_root=root,
                     allow_use=True):
            server = spark._jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithSparkSession(
                spark._jsparkSession, False)
            _wait_listening(endpoint, stop)
            say(f"pe serve-sql: ready on {endpoint.url} (lake {root}; {len(names)} tables and views; read-only; "
                f"pid {os.getpid()}; SIGTERM or Ctrl-C stops it)")
            due = time.monotonic() + cfg.sql.refresh_seconds
            while not stop():
                time.sleep(0.2)
                if time.monotonic() < due:
                    continue
                due = time.monotonic() + cfg.sql.refresh_seconds
                try:
                    changed = keeper.refresh()
                except Exception as e:  # a table mid-write or a registry hiccup: keep serving, try again later
                    log.warning("pe serve-sql: catalog refresh failed (%s); trying again in %.0f s",
                                str(e).splitlines()[0][:300], cfg.sql.refresh_seconds)
                    continue
                if changed is not None:
                    # new tables join the policy in one step (no statement runs unchecked in between)
                    activate(spark, allow_write=False, lake_tables=keeper.tables, lake_root=root, allow_use=True)
                    say(f"pe serve-sql: catalog refreshed ({len(changed)} tables and views; champion "
                        f"{keeper.seen[1] if keeper.seen else None})")
    finally:
        try:
            if server is not None:
                server.stop()
            if spark is not None:
                spark.stop()
        finally:
            if folder is not None:
                _release(folder)
        say("pe serve-sql: stopped")


def refresh_catalog(cfg: PEConfig, champion: str | None, *, metastore: str | None = None) -> str:
    """``pe catalog``: register the lake's tables and analyst views in the persistent catalog once; one line.

    An embedded metastore held by a running ``pe serve-sql`` is left to that server, which keeps it current."""
    from jobs.spark import get_spark
    from jobs.storage.lake import Lake
    from jobs.storage.views import register_views

    root = cfg.lake_path
    check_lake(root)
    folder = metastore_folder(cfg, metastore) if "://" not in root else None
    if folder is not None:
        holder = _holder(folder)
        if holder is not None:
            return (f"catalog: pe serve-sql (pid {holder}) holds {folder} and keeps it current itself "
                    f"(every {cfg.sql.refresh_seconds:g} s)")
        os.makedirs(folder, exist_ok=True)
        _claim(folder)
    try:
        cfg = with_spark_conf(cfg, catalog_settings(cfg, metastore))
        spark = get_spark(cfg, app_name="pe-catalog")
        names = register_views(Lake(root, spark), champion_version=champion, persistent=True)
        spark.stop()
    finally:
        if folder is not None:
            _release(folder)
    where = folder or cfg.sql.metastore_uri
    return f"catalog: {len(names)} tables and views registered in {where} (champion {champion})"


PID_FILE = "pe-catalog.pid"


def _holder(folder: str) -> int | None:
    """The pid of a live process that holds the embedded metastore in ``folder``, if any."""
    try:
        with open(os.path.join(folder, PID_FILE)) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid if pid != os.getpid() else None


def _claim(folder: str) -> None:
    """Mark the embedded metastore as ours (Derby lets one process open it; the next one gets a clear line)."""
    holder = _holder(folder)
    if holder is not None:
        raise UsageError("metastore_in_use", f"the catalog in {folder} is in use by pid {holder} (a running pe "
                         f"serve-sql or pe catalog): stop it, or pass --metastore DIR")
    tmp = os.path.join(folder, f".{PID_FILE}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, os.path.join(folder, PID_FILE))


def _release(folder: str) -> None:
    path = os.path.join(folder, PID_FILE)
    try:
        with open(path) as f:
            mine = f.read().split()[:1] == [str(os.getpid())]
        if mine:
            os.remove(path)
    except OSError:
        pass


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
