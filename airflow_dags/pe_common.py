"""Shared wiring of the PE-score DAGs: where the project lives and how a task runs one ``pe`` command.

Standard library only at module level (Airflow parses this folder every few seconds). The jobs run in the
project's own virtual environment as an external process (``<repo>/.venv/bin/pe ...``); Airflow has its
own environment (``.venv-airflow``) because it pulls ``pyspark-client``, which would overwrite pyspark.

Paths are resolved when a task runs, each from the first that is set:

    the DAG run's params (``airflow dags trigger --conf '{"lake": ...}'``)
    → Airflow Variables ``pe_repo``, ``pe_venv``, ``pe_config``, ``pe_lake`` (or AIRFLOW_VAR_PE_* variables)
    → the project's defaults: repo = the folder above airflow_dags/, venv = <repo>/.venv,
      config = <repo>/conf/local.yaml, lake = the config's own ``lake`` (relative to the repo)
"""
from __future__ import annotations

import os
import shlex
from datetime import timedelta
from pathlib import Path
from typing import Any, Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The keys a DAG run may set (params) or a deployment may set (Variables ``pe_<key>``).
PATH_KEYS = ("repo", "venv", "config", "lake")

#: Task defaults shared by both DAGs. PE_AIRFLOW_RETRY_DELAY_S (environment of the DAG processor) shortens
#: the wait between tries, e.g. in tests, where `airflow dags test` would otherwise sleep through it.
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "pe-score",
    "retries": 2,
    "retry_delay": timedelta(seconds=float(os.environ.get("PE_AIRFLOW_RETRY_DELAY_S", "300"))),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(hours=6),
}


def dag_arguments(dag_id: str, schedule: str, doc_md: str | None) -> dict[str, Any]:
    """The ``@dag(...)`` arguments both DAGs share: UTC start date, no catch-up, one run at a time, defaults."""
    import pendulum

    return {"dag_id": dag_id, "schedule": schedule, "start_date": pendulum.datetime(2025, 1, 1, tz="UTC"),
            "catchup": False, "max_active_runs": 1, "default_args": DEFAULT_ARGS, "params": dag_params(),
            "tags": ["pe-score"], "doc_md": doc_md}


def dag_params() -> dict[str, Any]:
    """DAG-level params: all empty by default (empty → Variable → project default)."""
    from airflow.sdk import Param

    return {key: Param("", type="string", description=f"overrides Variable pe_{key}") for key in PATH_KEYS}


def resolve_paths(params: Mapping[str, Any] | None, variables: Mapping[str, Any] | None = None) -> dict[str, str]:
    """repo, venv, config and lake (may be '') for one task run: params, then Variables, then defaults.

    ``variables`` is for tests; by default Airflow Variables are read (at run time, never at parse time).
    """
    params = params or {}

    def variable(key: str) -> str:
        if variables is not None:
            return str(variables.get(f"pe_{key}") or "")
        from airflow.sdk import Variable

        return str(Variable.get(f"pe_{key}", default="") or "")

    def pick(key: str, default: str) -> str:
        return str(params.get(key) or "") or variable(key) or default

    repo = pick("repo", str(REPO_ROOT))
    return {
        "repo": repo,
        "venv": pick("venv", str(Path(repo) / ".venv")),
        "config": pick("config", str(Path(repo) / "conf" / "local.yaml")),
        "lake": pick("lake", ""),
    }


def pe_bash(paths: Mapping[str, str], *args: str) -> str:
    """The bash line that runs ``pe [--config C] [--lake L] args...`` in the project's venv, from the repo.

    Spark's executors must run the project's interpreter (``PYSPARK_PYTHON``), not Airflow's.
    """
    python = str(Path(paths["venv"]) / "bin" / "python")
    pe = str(Path(paths["venv"]) / "bin" / "pe")
    words = [pe, "--config", paths["config"]]
    if paths.get("lake"):
        words += ["--lake", paths["lake"]]
    words += list(args)
    env = (f"PYSPARK_PYTHON={shlex.quote(python)} PYSPARK_DRIVER_PYTHON={shlex.quote(python)} "
           "SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-127.0.0.1} PYTHONUNBUFFERED=1")
    return f"cd {shlex.quote(paths['repo'])} && {env} exec {shlex.join(words)}"


def pe_task_command(params: Mapping[str, Any] | None, *args: str) -> str:
    """For a ``@task.bash`` body: resolve the paths of this run and return the ``pe`` command line."""
    return pe_bash(resolve_paths(params), *args)
