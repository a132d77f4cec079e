"""The nightly job on a real Spark standalone cluster with an MLflow tracking server, all on 127.0.0.1.

Started here as separate processes and stopped by PID: a Spark master and two workers (pyspark's
``bin/spark-class``), an MLflow server (SQLite backend, proxied artifacts). ``spark-submit --master spark://…
jobs/submit.py score`` then scores a small campaign: executors in other JVMs load the model from the tracking server
over HTTP and write through delta-spark. The result must equal local mode's on a copy of the same lake.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

PYSPARK_HOME = Path(__import__("pyspark").__file__).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, what: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text()[-3000:]}")
        if check():
            return
        time.sleep(0.5)
    raise TimeoutError(f"{what} did not come up in {timeout} s: {log.read_text()[-3000:]}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


class Services:
    """Processes this test started, stopped by PID (their process groups) at the end."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, cmd: list[str], env: dict | None = None) -> tuple[subprocess.Popen, Path]:
        log = self.folder / f"{name}.log"
        proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd=self.folder)
        self.procs.append(proc)
        return proc, log

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def services(tmp_path):
    s = Services(tmp_path)
    yield s
    s.stop()
    assert all(p.poll() is not None for p in s.procs), "every started process must be stopped"


def test_nightly_job_on_a_standalone_cluster_with_an_mlflow_server(tmp_path, services, cfg, lake, spark):
    from jobs.scoring.nightly import run_score
    from jobs.spark.delta_jars import jar_paths

    env = dict(os.environ, SPARK_HOME=str(PYSPARK_HOME), SPARK_LOCAL_IP="127.0.0.1",
               PYSPARK_PYTHON=sys.executable, SPARK_WORKER_DIR=str(tmp_path / "work"))
    # 1. MLflow tracking server with proxied artifacts.
    mlflow_port = _free_port()
    mlflow_proc, mlflow_log = services.start("mlflow", [
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
        "--backend-store-uri", f"sqlite:///{tmp_path}/mlflow-server.db",
        "--artifacts-destination", str(tmp_path / "mlflow-artifacts"), "--workers", "1"], env)
    tracking = f"http://127.0.0.1:{mlflow_port}"
    # 2. Spark standalone master and two workers, each its own JVM.
    master_port, master_ui = _free_port(), _free_port()
    master, master_log = services.start("master", [
        str(PYSPARK_HOME / "bin" / "spark-class"), "org.apache.spark.deploy.master.Master",
        "--host", "127.0.0.1", "--port", str(master_port), "--webui-port", str(master_ui)], env)
    master_url = f"spark://127.0.0.1:{master_port}"
    _wait(lambda: _http_ok(f"http://127.0.0.1:{master_ui}/json/"), "spark master", master, master_log)
    workers = []
    for i in range(2):
        proc, log = services.start(f"worker{i}", [
            str(PYSPARK_HOME / "bin" / "spark-class"), "org.apache.spark.deploy.worker.Worker", master_url,
            "--host", "127.0.0.1", "--cores", "1", "--memory", "4g", "--webui-port", str(_free_port()),
            "--work-dir", str(tmp_path / f"work{i}")], env)
        workers.append((proc, log))

    def alive_workers() -> int:
        import json

        with urllib.request.urlopen(f"http://127.0.0.1:{master_ui}/json/", timeout=2) as r:
            return sum(w["state"] == "ALIVE" for w in json.load(r)["workers"])

    _wait(lambda: alive_workers() == 2, "two spark workers", *workers[0])
    _wait(lambda: _http_ok(f"{tracking}/health"), "mlflow server", mlflow_proc, mlflow_log)

    # 3. A small campaign, and a champion registered on the tracking server (artifacts proxied by it).
    from test_score_job import make_campaign

    cluster_cfg = cfg.model_copy(update={"mlflow": cfg.mlflow.model_copy(update={"tracking_uri": tracking})})
    make_campaign(cluster_cfg, lake)
    local_copy = tmp_path / "lake-local"
    shutil.copytree(cfg.lake_path, local_copy)

    # 4. spark-submit the nightly job to the cluster.
    conf_file = tmp_path / "cluster.yaml"
    conf_file.write_text(yaml.safe_dump({
        "lake": cfg.lake_path, "spark": {"master": master_url, "show_progress": False},
        "mlflow": {"tracking_uri": tracking}}))
    submit = [str(PYSPARK_HOME / "bin" / "spark-submit"), "--master", master_url, "--jars", ",".join(jar_paths()),
              "--conf", f"spark.pyspark.python={sys.executable}", "--conf", "spark.executor.memory=1g",
              "--conf", "spark.executor.cores=1", "--conf", "spark.ui.enabled=false",
              # room for the Python workers, so the job's memory check passes (spark.executor.pyspark.memory
              # would cap their address space, which torch's CUDA libraries exceed)
              "--conf", "spark.executor.memoryOverhead=2g",
              str(Path(__file__).resolve().parents[2] / "jobs" / "submit.py"), "score",
              "--config", str(conf_file), "--run-id", "cluster-night"]
    run = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=900)
    problems = [ln for ln in (run.stdout + run.stderr).splitlines()
                if ("error" in ln.lower() or "exception" in ln.lower()) and " INFO " not in ln]
    assert run.returncode == 0, "\n".join(problems[-30:]) or run.stdout[-3000:]
    assert "scored=4 errors=2" in run.stdout, run.stdout
    # The executors were real: two workers ran this application's executors.
    app_dirs = [p for i in range(2) for p in (tmp_path / f"work{i}").glob("app-*")]
    assert len(app_dirs) == 2, f"executors on both workers expected, found {app_dirs}"

    # 5. The same job in local mode on a copy of the lake gives the same rows.
    local_cfg = cluster_cfg.model_copy(update={  # the copy's rows still point at the original media folder
        "lake": str(local_copy), "io": cfg.io.model_copy(update={"allowed_roots": [cfg.lake_path]})})
    assert run_score(local_cfg, run_id="cluster-night", spark=spark).scored == 4
    cols = ["video_id", "model_version", "pe_raw", "pe_share", "e_score", "p_score", "n_seconds",
            "product_found_seconds", "predicted_engagement"]
    from jobs.storage.lake import Lake

    on_cluster = lake.read_pandas("pe_scores", columns=cols).sort_values("video_id").reset_index(drop=True)
    local = Lake(str(local_copy), spark).read_pandas("pe_scores", columns=cols).sort_values("video_id").reset_index(drop=True)
    assert list(on_cluster["video_id"]) == ["v0", "v1", "v2", "v3"]
    import pandas as pd

    pd.testing.assert_frame_equal(on_cluster, local, check_exact=False, rtol=1e-5)
    errors = lake.read_pandas("scoring_errors")
    assert sorted(errors["video_id"]) == ["v_corrupt", "v_missing"]
