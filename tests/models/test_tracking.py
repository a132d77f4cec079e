"""MLflow runs through an explicit client: what a run records, how it ends, and that nothing process-wide moves."""
from __future__ import annotations

import os

import pytest

from models.tracking import ensure_experiment, run_json, tracked_run


def _uris() -> tuple[str, str | None, str | None]:
    import mlflow

    return mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI"), os.environ.get("MLFLOW_REGISTRY_URI")


@pytest.mark.slow  # a few seconds: a new SQLite store
def test_a_tracked_run_records_everything_and_leaves_the_process_alone(tmp_path):
    from mlflow import MlflowClient

    before = _uris()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    exp = ensure_experiment(uri, "pe-test", str(tmp_path / "artifacts"))
    assert ensure_experiment(uri, "pe-test") == exp  # found, not created twice
    with tracked_run(uri, exp, run_name="parent", tags={"pe.job": "x"}) as parent:
        with tracked_run(uri, exp, run_name="child", parent_run_id=parent.run_id) as child:
            child.log_params({"a": 1, "b": None})
            child.log_metrics({"loss": 0.5}, step=3)
            child.set_tags({"pe.label": "log1p_shares"})
            child.log_dict({"train": ["v1"]}, "split.json")
        assert _uris() == before  # nothing process-wide while a run is open either
    with pytest.raises(KeyError):
        with tracked_run(uri, exp, run_name="broken") as broken:
            raise KeyError("x")
    assert _uris() == before

    client = MlflowClient(uri)
    got = client.get_run(child.run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "child"
    assert got.data.params == {"a": "1", "b": "None"} and got.data.metrics == {"loss": 0.5}
    assert client.get_metric_history(child.run_id, "loss")[0].step == 3
    assert got.data.tags["mlflow.parentRunId"] == parent.run_id and got.data.tags["pe.label"] == "log1p_shares"
    assert "mlflow.user" in got.data.tags  # the context tags mlflow.start_run would add
    assert client.get_run(parent.run_id).data.tags["pe.job"] == "x"
    assert client.get_run(broken.run_id).info.status == "FAILED"
    assert run_json(uri, child.run_id, "split.json") == {"train": ["v1"]}
    assert run_json(uri, child.run_id, "gate.json") is None
