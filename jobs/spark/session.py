"""The one Spark session factory: local by default, cluster settings from config, Delta Lake built in.

Delta comes from delta-spark: its JARs are installed once into the virtual environment (:mod:`jobs.spark.delta_jars`)
and put on ``spark.jars`` here, so no session downloads anything; so is the SQL guard's (:mod:`jobs.spark.guard_jar`).
Under ``spark-submit`` pass them with ``--jars "$(python -m jobs.spark path)"``: the driver JVM is
already running by the time this code does.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

from jobs.config import PEConfig


def get_spark(cfg: PEConfig, app_name: str | None = None):
    """Return the active SparkSession or build one from ``cfg.spark``.

    Local runs use ``cfg.spark.master``; under ``spark-submit`` the master given there wins. Executors run
    the current interpreter (``PYSPARK_PYTHON``), Arrow is on for pandas UDFs, logs are quiet and Spark's
    console progress bar is drawn only on a terminal.
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if cfg.spark.master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # The repository root must be importable on executors (pe_udfs, models) when running from a checkout.
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    pythonpath = os.environ.get("PYTHONPATH", "")
    if repo_root not in pythonpath.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, pythonpath) if p)

    active = SparkSession.getActiveSession()
    if active is not None:
        return active

    builder = SparkSession.builder.appName(app_name or cfg.spark.app_name)
    if "spark.master" not in _submit_conf():
        builder = builder.master(with_task_retries(cfg.spark.master, cfg.spark.task_retries))
    settings = {
        "spark.task.maxFailures": str(cfg.spark.task_retries + 1),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions),
        "spark.driver.memory": cfg.spark.driver_memory,
        "spark.ui.showConsoleProgress": str(show_console_progress(cfg.spark.show_progress)).lower(),
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.sources.partitionOverwriteMode": "static",
        "spark.executorEnv.PYTHONPATH": os.environ["PYTHONPATH"],
        "spark.python.worker.reuse": "true",
        "spark.sql.warehouse.dir": os.path.join(_tmpdir(), "spark-warehouse"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={_tmpdir()} -Dlog4j2.level=error "
                                         f"-Dlog4j2.configurationFile=file:{os.path.join(repo_root, 'conf', 'log4j2.properties')}",
    }
    # Every cold read of a Delta table replays its log in a stage of snapshotPartitions tasks. Delta's 50 are
    # sized for logs of millions of files on a cluster; on a 2-core machine 50 near-empty tasks made a small
    # table's first row take about 1.8 s instead of about 0.5 s (bench/lake.py). Locally: one per core; a
    # cluster keeps Delta's default (set it in spark.conf for large tables: about the executors' cores).
    partitions = local_cores(cfg.spark.master) if "spark.master" not in _submit_conf() else None
    if partitions is not None:
        settings["spark.databricks.delta.snapshotPartitions"] = str(partitions)
    settings.update(delta_settings())
    settings.update(cfg.spark.conf)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg.spark.log_level)
    return spark


def spark_in_background(cfg: PEConfig, then: Callable[[Any], None] | None = None) -> Callable[[], Any]:
    """Start :func:`get_spark` (then ``then(spark)``, e.g. first reads) on a daemon thread and return a function
    that waits for the session: a job overlaps the JVM's start with its own Python work (a model load). An
    error on the thread is raised by the waiting call; a job that fails first exits without waiting for it."""
    import threading

    box: dict[str, Any] = {}

    def start() -> None:
        try:
            box["spark"] = get_spark(cfg)
            if then is not None:
                then(box["spark"])
        except BaseException as e:  # handed to the waiting caller
            box["error"] = e

    thread = threading.Thread(target=start, name="spark-start", daemon=True)
    thread.start()

    def wait() -> Any:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["spark"]

    return wait


def show_console_progress(wanted: bool) -> bool:
    """Spark's progress bar redraws one line with carriage returns: on a terminal that is a bar, in a log file
    or a scheduler's captured stderr it is thousands of lines of noise. Our own progress lines are not this."""
    try:
        return wanted and sys.stderr.isatty()
    except (AttributeError, ValueError):  # stderr replaced or closed
        return False


def with_task_retries(master: str, retries: int) -> str:
    """Local mode ignores spark.task.maxFailures; its own form ``local[N,F]`` sets the attempts per task:
    ``local[*]`` → ``local[*,F]`` with F = retries + 1 (a master that already says F is kept)."""
    import re

    m = re.fullmatch(r"local(?:\[(\*|\d+)\])?", master.strip())
    if not m:
        return master
    return f"local[{m.group(1) or 1},{retries + 1}]"


def local_cores(master: str) -> int | None:
    """Cores of a local master (``local`` → 1, ``local[N]`` and ``local[N,F]`` → N, ``local[*]`` → this
    machine's); None for any other master."""
    import re

    m = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\d+)?\])?", master.strip())
    if not m:
        return None
    cores = m.group(1)
    return (os.cpu_count() or 1) if cores == "*" else int(cores or 1)


DELTA_SQL_SETTINGS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def delta_settings() -> dict[str, str]:
    """Session settings that make Delta Lake work: the SQL extension, the catalog and the installed JARs; plus
    the SQL guard's extension (:mod:`jobs.spark.guard_jar`, off until ``pe sql``/``pe serve-sql`` give it a policy)
    when its JAR can be built."""
    from jobs.spark.delta_jars import jar_paths
    from jobs.spark.guard_jar import EXTENSION, jar_path

    jars, extensions = jar_paths(), DELTA_SQL_SETTINGS["spark.sql.extensions"]
    guard = jar_path()
    if guard is not None:  # last, so that its parser wraps Delta's and sees every statement first
        jars, extensions = [*jars, guard], f"{extensions},{EXTENSION}"
    return {**DELTA_SQL_SETTINGS, "spark.sql.extensions": extensions, "spark.jars": ",".join(jars)}


def _submit_conf() -> dict[str, str]:
    """Settings that spark-submit already fixed: under spark-submit the JVM is running and its gateway port is
    exported, and the master given on the command line must win over the config file."""
    return {"spark.master": "submitted"} if os.environ.get("PYSPARK_GATEWAY_PORT") else {}


def _tmpdir() -> str:
    import tempfile

    d = os.path.join(tempfile.gettempdir(), "pe-spark")
    os.makedirs(d, exist_ok=True)
    return d
