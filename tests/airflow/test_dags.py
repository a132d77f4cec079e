"""The Airflow DAGs: the folder parses in Airflow's own environment (.venv-airflow, `make airflow`) with the
specified tasks, order, schedule and retries, and `airflow dags test pe_nightly` scores a real sample lake."""
from __future__ import annotations

import ast
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "airflow_dags"
AIRFLOW_PY = REPO / ".venv-airflow" / "bin" / "python"
AIRFLOW = REPO / ".venv-airflow" / "bin" / "airflow"
PE = str(Path(sys.executable).parent / "pe")

needs_airflow = pytest.mark.skipif(
    not AIRFLOW.exists(), reason="no Airflow environment: run `make airflow` (make test does) to create .venv-airflow")

#: Packages DAG parsing must not import: the scheduler parses every DAG file often, and the project's code runs in
#: its own virtual environment, not Airflow's.
HEAVY = {"pyspark", "torch", "torchvision", "great_expectations", "mlflow", "cv2", "pandas", "numpy", "delta",
         "jobs", "models", "pe_udfs"}


def _airflow_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV"))}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "PYTHONUNBUFFERED": "1", **extra})
    return env


@pytest.fixture(scope="module")
def structure(tmp_path_factory) -> dict:
    if not AIRFLOW_PY.exists():
        pytest.skip("no Airflow environment: run `make airflow` (make test does) to create .venv-airflow")
    home = tmp_path_factory.mktemp("airflow-home")
    out = home / "structure.json"
    p = subprocess.run([str(AIRFLOW_PY), str(Path(__file__).with_name("dag_structure.py")), str(DAGS), str(out)],
                       env=_airflow_env(home), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(out.read_text())


@needs_airflow
def test_dag_folder_imports_without_errors_and_without_heavy_modules(structure):
    assert structure["import_errors"] == {}
    assert sorted(structure["dags"]) == ["pe_nightly", "pe_retrain"]
    assert HEAVY.isdisjoint(structure["modules"]), sorted(HEAVY & set(structure["modules"]))


def _chain(dag: dict) -> list[str]:
    """The task ids in order, checking the DAG is one straight chain."""
    tasks = dag["tasks"]
    order = dag["topological"]
    assert sorted(order) == sorted(tasks)
    for before, after in zip(order, order[1:]):
        assert tasks[after]["upstream"] == [before], (after, tasks[after]["upstream"])
    assert tasks[order[0]]["upstream"] == []
    return order


@needs_airflow
@pytest.mark.parametrize("dag_id, schedule, tasks", [
    ("pe_nightly", "@daily", ["ingest", "validate_inputs", "score", "validate_outputs", "maintain", "refresh_catalog"]),
    ("pe_retrain", "@weekly", ["build_training_set", "train", "evaluate", "promote"]),
])
def test_dag_tasks_order_schedule_and_retries(structure, dag_id, schedule, tasks):
    dag = structure["dags"][dag_id]
    assert _chain(dag) == tasks
    assert dag["schedule"] == schedule and dag["catchup"] is False
    assert dag["start_tz"] == "UTC"  # timezone-aware start date
    assert {t["retries"] for t in dag["tasks"].values()} == {2}
    assert sorted(dag["params"]) == ["config", "lake", "repo", "venv"]


@needs_airflow
def test_a_failed_stage_stops_the_rest(structure):
    # every stage is a real command (none is skipped): a failure, e.g. `pe models promote` refusing a stale
    # comparison, fails the run, and nothing after a failed stage runs
    for dag_id in ("pe_nightly", "pe_retrain"):
        assert {v["trigger_rule"] for v in structure["dags"][dag_id]["tasks"].values()} == {"all_success"}, dag_id


def _retrain_stage_commands() -> dict:
    """``STAGE_COMMANDS`` of pe_retrain.py, read without importing Airflow."""
    for node in ast.parse((DAGS / "pe_retrain.py").read_text()).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "STAGE_COMMANDS":
            return ast.literal_eval(node.value)
    raise AssertionError("pe_retrain.py defines no STAGE_COMMANDS")


def test_every_retrain_stage_runs_a_real_pe_command():
    from typer.testing import CliRunner

    from jobs.cli import app

    stages = _retrain_stage_commands()
    assert stages == {"build_training_set": ("train", "--features-only"), "train": ("train", "--no-promote"),
                      "evaluate": ("models", "evaluate"), "promote": ("models", "promote")}
    for stage, args in stages.items():
        # the command and its options exist (an unknown command or option exits 2 before --help)
        out = CliRunner().invoke(app, [*args, "--help"])
        assert out.exit_code == 0, (stage, out.output)
    assert "exit 99" not in (DAGS / "pe_retrain.py").read_text()  # no stage ends as skipped any more


def test_dag_files_import_only_light_modules_at_top_level():
    allowed = {"__future__", "pendulum", "airflow", "pe_common", "os", "shlex", "datetime", "pathlib", "typing"}
    for path in DAGS.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name} at top level"


def test_nothing_imports_airflow_dags():
    for package in ("jobs", "models", "pe_udfs"):
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text()
            assert "airflow_dags" not in text and "pe_common" not in text, path


# ---------------------------------------------------------------------- the command lines tasks run
@pytest.fixture
def pe_common():
    sys.path.insert(0, str(DAGS))
    try:
        import pe_common

        yield pe_common
    finally:
        sys.path.remove(str(DAGS))


def test_paths_come_from_params_then_variables_then_defaults(pe_common):
    defaults = pe_common.resolve_paths({}, variables={})
    assert defaults == {"repo": str(REPO), "venv": str(REPO / ".venv"), "config": str(REPO / "conf" / "local.yaml"),
                        "lake": ""}
    from_vars = pe_common.resolve_paths({"lake": ""}, variables={"pe_lake": "/v/lake", "pe_repo": "/v/repo"})
    assert from_vars == {"repo": "/v/repo", "venv": "/v/repo/.venv", "config": "/v/repo/conf/local.yaml",
                         "lake": "/v/lake"}
    from_params = pe_common.resolve_paths({"lake": "/p/lake", "config": "/p/c.yaml"}, variables={"pe_lake": "/v/lake"})
    assert from_params["lake"] == "/p/lake" and from_params["config"] == "/p/c.yaml"


def test_the_task_command_line_runs_pe_in_the_project_env(pe_common, tmp_path):
    """The exact bash line a task runs, executed: quoting of a path with a space and a quote, and no --lake
    when none is set (the config's lake, relative to the repo, applies)."""
    lake = tmp_path / "a lake's folder"
    paths = pe_common.resolve_paths({"lake": str(lake)}, variables={})
    line = pe_common.pe_bash(paths, "tables")
    p = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert f"lake: {lake}" in p.stdout and "(no tables)" in p.stdout
    assert "--lake" not in pe_common.pe_bash(pe_common.resolve_paths({}, variables={}), "tables")


# ---------------------------------------------------------------------- airflow dags test (integration)
SAMPLE_CONFIG = """\
device: cpu
spark: {master: "local[2]", show_progress: false, shuffle_partitions: 2}
model: {backbone: tiny}
# a scheduling test on 16 videos: the validation-size floor for early stopping is lowered on purpose
train: {epochs: 5, batch_size: 8, val_fraction: 0.25, test_fraction: 0.3, min_videos: 10, min_val_videos: 2}
sample: {fps: 8, audio: false, workers: 1}
"""


def _pe(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    p = subprocess.run([PE, *args], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert p.returncode == 0, f"pe {' '.join(args)} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.fixture(scope="module")
def trained_lake(tmp_path_factory):
    """A small sample campaign and a trained, registered model as @champion, made with the project's commands.

    A model trained on 16 three-second videos for 5 epochs rarely beats the constant baseline, so the
    promotion gate keeps it from @champion; this DAG test is about scheduling, not model quality, so the
    fixture then points @champion at the version `pe train` registered."""
    from jobs.config import load_config

    root = tmp_path_factory.mktemp("airflow-lake")
    conf = root / "pe.yaml"
    conf.write_text(SAMPLE_CONFIG)
    lake = root / "lake"
    base = ["--config", str(conf), "--lake", str(lake)]
    _pe(*base, "sample", "--videos", "16", "--seed", "3", "--min-seconds", "3", "--max-seconds", "3",
        "--width", "144", "--height", "256")
    trained = _pe(*base, "train")
    cfg = load_config(conf, lake=str(lake))
    from mlflow import MlflowClient

    client = MlflowClient(cfg.tracking_uri, registry_uri=cfg.tracking_uri)
    versions = client.search_model_versions(f"name='{cfg.mlflow.model_name}'")
    assert len(versions) == 1, f"pe train registered {len(versions)} versions:\n{trained.stdout[-3000:]}"
    if cfg.mlflow.alias not in (client.get_registered_model(cfg.mlflow.model_name).aliases or {}):
        client.set_registered_model_alias(cfg.mlflow.model_name, cfg.mlflow.alias, versions[0].version)
    return conf, lake


@pytest.mark.slow
@pytest.mark.airflow
@needs_airflow
def test_airflow_dags_test_pe_nightly_scores_the_lake(trained_lake, tmp_path, spark):
    conf, lake = trained_lake
    from jobs.storage.lake import Lake

    assert not Lake(str(lake)).exists("pe_scores")
    home = tmp_path / "airflow-home"
    home.mkdir()
    # the lake comes from an Airflow Variable (environment backend), the config from the run's params
    env = _airflow_env(home, AIRFLOW_VAR_PE_LAKE=str(lake), PE_AIRFLOW_RETRY_DELAY_S="1")
    migrate = subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    run = subprocess.run([str(AIRFLOW), "dags", "test", "pe_nightly", "2025-01-02", "--conf",
                          json.dumps({"config": str(conf)})],
                         env=env, capture_output=True, text=True, timeout=1800)
    log = run.stdout[-6000:] + run.stderr[-6000:]
    assert run.returncode == 0, log

    with sqlite3.connect(home / "airflow.db") as db:
        runs = db.execute("SELECT state FROM dag_run WHERE dag_id = 'pe_nightly'").fetchall()
        tasks = dict(db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = 'pe_nightly'").fetchall())
    assert runs == [("success",)], log
    assert tasks == {t: "success" for t in ("ingest", "validate_inputs", "score", "validate_outputs", "maintain",
                                            "refresh_catalog")}, log

    lake_ = Lake(str(lake), spark)  # merged tables need Spark to read (lake.read_arrow)
    scores = lake_.read_pandas("pe_scores")
    videos = lake_.read_pandas("campaign_videos")
    errors = lake_.read_pandas("scoring_errors") if lake_.exists("scoring_errors") else None
    n_errors = 0 if errors is None else errors["video_id"].nunique()
    assert len(scores) > 0 and len(scores) + n_errors == len(videos)
    assert scores["run_id"].notna().all() and scores["model_version"].nunique() == 1
    assert (lake / "quality" / "data_docs" / "index.html").is_file()
    assert (lake / "_metastore" / "metastore_db").is_dir()  # refresh_catalog registered the persistent catalog
