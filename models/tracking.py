"""MLflow runs through an explicit :class:`mlflow.MlflowClient`: no process-wide tracking state.

MLflow's fluent API (``mlflow.start_run``, ``mlflow.log_*``) reads a tracking URI and an active run that are
process-wide (and exported as MLFLOW_TRACKING_URI to child processes), so a job using it would send later work
in the same process to its store. Here every call names its store::

    with tracked_run(tracking_uri, experiment_id, run_name="train-tiny", parent_run_id=sweep.run_id) as run:
        run.log_params({...}); run.log_metrics({...}, step=3); run.set_tags({...})
        run.log_dict({...}, "gate.json"); run.log_artifacts(folder, "model")
    # FINISHED, or FAILED when the block raised

A nested run is a run tagged ``mlflow.parentRunId`` (what the MLflow UI nests on). The run carries the same
context tags ``mlflow.start_run`` would add (user, source, git commit).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking.context.registry import resolve_tags

__all__ = ["mlflow_client", "ensure_experiment", "TrackedRun", "tracked_run", "run_json"]

PARENT_RUN_TAG = "mlflow.parentRunId"


def mlflow_client(tracking_uri: str, registry_uri: str | None = None) -> MlflowClient:
    """A client of one store (the registry defaults to the tracking store)."""
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``name``, created (with ``artifact_location``, e.g. inside the lake) if missing."""
    client = mlflow_client(tracking_uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    if artifact_location and "://" not in artifact_location:
        os.makedirs(artifact_location, exist_ok=True)
        artifact_location = "file://" + os.path.abspath(artifact_location)
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:  # a concurrent creator won
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


@dataclass(frozen=True)
class TrackedRun:
    """One open MLflow run and the client that writes to it."""

    client: MlflowClient
    run_id: str
    tracking_uri: str
    experiment_id: str
    artifact_uri: str

    def log_params(self, params: dict[str, Any]) -> None:
        """Values logged as ``str(value)``, as ``mlflow.log_params`` does."""
        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step or 0) for k, v in metrics.items()])

    def set_tags(self, tags: dict[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_dict(self, dictionary: dict[str, Any], artifact_file: str) -> None:
        self.client.log_dict(self.run_id, dictionary, artifact_file)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, local_dir, artifact_path)


@contextmanager
def tracked_run(tracking_uri: str, experiment_id: str, *, run_name: str, registry_uri: str | None = None,
                parent_run_id: str | None = None, tags: dict[str, str] | None = None) -> Iterator[TrackedRun]:
    """Create a run (nested under ``parent_run_id`` when given), yield it, and end it FINISHED, or FAILED when
    the block raises (the exception propagates)."""
    client = mlflow_client(tracking_uri, registry_uri)
    user_tags = dict(tags or {})
    if parent_run_id is not None:
        user_tags[PARENT_RUN_TAG] = parent_run_id
    run = client.create_run(experiment_id, tags=resolve_tags(user_tags), run_name=run_name)
    tracked = TrackedRun(client, run.info.run_id, tracking_uri, experiment_id, run.info.artifact_uri)
    try:
        yield tracked
    except BaseException:
        client.set_terminated(tracked.run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(tracked.run_id, RunStatus.to_string(RunStatus.FINISHED))


def run_json(tracking_uri: str, run_id: str, name: str) -> dict | None:
    """The JSON artifact ``name`` (at the run's artifact root) of ``run_id``, or None when the run has no such
    file or it is not JSON."""
    if not any(f.path == name for f in mlflow_client(tracking_uri).list_artifacts(run_id)):
        return None
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="pe-run-json-") as tmp:
        try:
            path = download_artifacts(run_id=run_id, artifact_path=name, dst_path=tmp, tracking_uri=tracking_uri)
            with open(path) as f:
                return json.load(f)
        except (MlflowException, OSError, ValueError):
            return None
