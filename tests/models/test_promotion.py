"""Deferred promotion: ``pe train --no-promote`` leaves a version pending with its held-out evaluation logged;
``pe models evaluate`` shows it and ``pe models promote`` decides from it, refusing a stale comparison.

The MLflow runs here hold what the training job logs (metrics and tags, through the same helpers) and the
versions are registered without model files: promotion only reads the run, never the model."""
from __future__ import annotations

import os

import pytest

from models.logged_evaluation import (
    GATE_ARTIFACT,
    EvaluationError,
    StaleEvaluationError,
    evaluation_metrics,
    evaluation_tags,
)
from models.promotion import PENDING
from models.registry import ModelRegistry
from tests.models.synthetic import gate as known_gate
from tests.models.synthetic import report


def _store(root) -> str:
    from models.tracking import ensure_experiment

    os.makedirs(root, exist_ok=True)
    uri = f"sqlite:///{root}/mlflow.db"
    ensure_experiment(uri, "pe-score", str(root / "mlartifacts"))
    return uri


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return _store(tmp_path_factory.mktemp("promotion"))


def evaluated(uri: str, name: str, noise: float | None, *, flip: bool = False, champion: float | None = None,
              champion_version: str | None = None, unavailable: str | None = None, tags: bool = True,
              gate: bool = True) -> str:
    """What `pe train --no-promote` leaves in the registry: a run with the evaluation metrics, the promotion gate
    (against a champion whose predictions carry ``champion`` noise) and tags, and a registered version of it
    tagged pe.promotion=pending. Returns the version."""
    import time

    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    client = MlflowClient(uri, registry_uri=uri)
    run_id = client.create_run(client.get_experiment_by_name("pe-score").experiment_id).info.run_id
    now = int(time.time() * 1000)
    candidate = None if noise is None else report(noise, flip=flip)
    champ = None if champion is None else report(champion)
    metrics = {"val_loss": 0.5} if candidate is None else {**evaluation_metrics(candidate, champ), "val_loss": 0.5}
    result = None
    if candidate is not None and gate:
        result = known_gate(noise, flip=flip, champion=champion, champion_version=champion_version,
                            unavailable=unavailable)
        metrics.update(result.metrics())
        client.log_dict(run_id, result.to_dict(), GATE_ARTIFACT)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
    if tags:
        for k, v in evaluation_tags(champion_version, unavailable).items():
            client.set_tag(run_id, k, v)
    client.set_terminated(run_id)
    try:
        client.create_registered_model(name)
    except MlflowException:
        pass  # exists
    version = str(client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id).version)
    if candidate is not None:
        ModelRegistry(uri, name).defer(version, gate=result, run_id=run_id)
    return version


def _alias(uri: str, name: str) -> str | None:
    from mlflow import MlflowClient

    version = (MlflowClient(uri, registry_uri=uri).get_registered_model(name).aliases or {}).get("champion")
    return None if version is None else str(version)


def _tags(uri: str, name: str, version: str) -> tuple[dict, dict]:
    from mlflow import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    mv = client.get_model_version(name, version)
    return dict(mv.tags), dict(client.get_run(mv.run_id).data.tags)


def test_the_logged_evaluation_reads_back_as_the_reports(store):
    v = evaluated(store, "m-read", 0.5, champion=1.0, champion_version="7")
    ev = ModelRegistry(store, "m-read").evaluation()  # newest version by default
    assert ev.version == v and ev.promotion == PENDING
    assert ev.candidate == report(0.5) and ev.champion == report(1.0)  # the champion shares the baseline
    assert ev.gate is not None and ev.gate.champion_version == "7" and ev.gate.check("vs_champion").n == 24
    assert (ev.champion_version, ev.champion_unavailable, ev.champion_recorded) == ("7", None, True)
    assert ev.current_champion is None and ev.stale  # evaluated against v7, which no longer holds the alias


def test_first_version_that_beats_the_baseline_takes_the_alias(store):
    v = evaluated(store, "m-first", 0.5)
    assert _alias(store, "m-first") is None  # pending: --no-promote left the alias alone
    version_tags, run_tags = _tags(store, "m-first", v)
    assert version_tags["pe.promotion"] == run_tags["pe.promotion"] == PENDING
    ev, d = ModelRegistry(store, "m-first").promote_evaluated()
    assert ev.version == v and d.promoted and d.status == "promoted" and "no current champion" in d.reason
    assert _alias(store, "m-first") == v
    version_tags, run_tags = _tags(store, "m-first", v)
    assert version_tags["pe.promotion"] == run_tags["pe.promotion"] == "promoted"
    # again (an Airflow retry): nothing to do, not a stale comparison
    _, again = ModelRegistry(store, "m-first").promote_evaluated(v)
    assert again.promoted and "already holds" in again.reason and _alias(store, "m-first") == v


def test_a_version_worse_than_the_constant_baseline_is_not_promoted(store):
    v = evaluated(store, "m-worse", 0.5, flip=True)
    _, d = ModelRegistry(store, "m-worse").promote_evaluated(v)
    assert not d.promoted and d.status == "rejected" and "vs the constant" in d.reason and "CI" in d.reason
    assert _alias(store, "m-worse") is None
    assert _tags(store, "m-worse", v)[0]["pe.promotion"] == "rejected"


def test_the_champion_comparison_gates_and_a_moved_alias_makes_it_stale(store):
    name = "m-moved"
    v1 = evaluated(store, name, 1.0)
    assert ModelRegistry(store, name).promote_evaluated()[1].promoted
    # two candidates evaluated against v1 on the same test videos: a worse one and a clearly better one
    worse = evaluated(store, name, 1.3, champion=1.0, champion_version=v1)
    better = evaluated(store, name, 0.2, champion=1.0, champion_version=v1)
    _, d = ModelRegistry(store, name).promote_evaluated(worse)
    assert not d.promoted and d.status == "kept" and f"vs champion v{v1}" in d.reason
    assert "does not beat the champion" in d.reason
    _, d = ModelRegistry(store, name).promote_evaluated(better)
    assert d.promoted and d.gate.check("vs_champion").low > 0
    assert _alias(store, name) == better
    # a third, evaluated against v1 before the alias moved to `better`: its comparison is stale
    stale = evaluated(store, name, 0.1, champion=1.0, champion_version=v1)
    with pytest.raises(StaleEvaluationError, match="has moved.*evaluate again with `pe train`"):
        ModelRegistry(store, name).promote_evaluated(stale)
    assert _alias(store, name) == better and _tags(store, name, stale)[0]["pe.promotion"] == PENDING
    # the same for one evaluated when there was no champion at all
    no_champ = evaluated(store, name, 0.1)
    with pytest.raises(StaleEvaluationError, match="then: no version, now: v"):
        ModelRegistry(store, name).promote_evaluated(no_champ)
    # and for a run that does not say which champion it was compared with
    untagged = evaluated(store, name, 0.1, tags=False)
    with pytest.raises(StaleEvaluationError, match="does not record"):
        ModelRegistry(store, name).promote_evaluated(untagged)
    assert _alias(store, name) == better


def test_a_champion_that_could_not_be_evaluated_is_kept(store):
    name = "m-unavailable"
    v1 = evaluated(store, name, 1.0)
    ModelRegistry(store, name).promote_evaluated()
    v2 = evaluated(store, name, 0.1, champion_version=v1, unavailable="cannot load it: gone")
    ev = ModelRegistry(store, name).evaluation(v2)
    assert ev.champion is None and ev.champion_unavailable == "cannot load it: gone" and not ev.stale
    _, d = ModelRegistry(store, name).promote_evaluated(v2)
    assert not d.promoted and d.status == "kept" and "could not be evaluated" in d.reason and "gone" in d.reason
    assert _alias(store, name) == v1


def test_missing_versions_and_metrics_are_clear_errors(store):
    with pytest.raises(EvaluationError, match="no versions of m-none"):
        ModelRegistry(store, "m-none").evaluation()
    v = evaluated(store, "m-nometrics", None)
    with pytest.raises(EvaluationError, match="no logged test metrics.*test_n"):
        ModelRegistry(store, "m-nometrics").evaluation(v)
    with pytest.raises(EvaluationError, match="no version 99"):
        ModelRegistry(store, "m-nometrics").promote_evaluated("99")
    # a run from before the gate: its evaluation shows, but nothing is promoted from it
    old = evaluated(store, "m-nogate", 0.5, gate=False)
    assert ModelRegistry(store, "m-nogate").evaluation(old).gate is None
    with pytest.raises(EvaluationError, match="logged no promotion gate"):
        ModelRegistry(store, "m-nogate").promote_evaluated(old)


def test_pe_models_evaluate_and_promote(tmp_path):
    """The commands the retrain DAG's evaluate and promote stages run, on the lake's own registry."""
    from typer.testing import CliRunner

    from jobs.cli import app
    from jobs.config import load_config

    lake = tmp_path / "lake"
    cfg = load_config(lake=str(lake))
    runner = CliRunner()
    out = runner.invoke(app, ["--lake", str(lake), "models", "evaluate"])
    assert out.exit_code == 1 and "no model registry" in out.output

    uri = _store(lake)
    assert uri == cfg.tracking_uri
    name = cfg.mlflow.model_name
    v1 = evaluated(uri, name, 1.0)
    v2 = evaluated(uri, name, None)  # registered, but its run logged no test metrics
    out = runner.invoke(app, ["--lake", str(lake), "models", "evaluate"])
    assert out.exit_code == 1 and f"{name} v{v2} has no logged test metrics" in out.output

    out = runner.invoke(app, ["--lake", str(lake), "models", "evaluate", "--version", v1])
    assert out.exit_code == 0, out.output
    rows = {line.split()[0]: line.split()[1:4] for line in out.output.splitlines()[2:5]}
    c = report(1.0)
    assert rows["candidate"] == [f"{x:.3f}" for x in (c.model.spearman, c.model.r2, c.model.mae)]
    assert rows["constant"] == [f"{x:.3f}" for x in (c.baseline.spearman, c.baseline.r2, c.baseline.mae)]
    assert "promotion: pending" in out.output and "champion: none" in out.output
    assert "promotion gate (spearman, paired bootstrap 95% intervals" in out.output and "→ promoted" in out.output
    assert "pass  spearman − constant" in out.output and "95% CI [" in out.output

    out = runner.invoke(app, ["--lake", str(lake), "models", "promote", "--version", v1])
    assert out.exit_code == 0, out.output
    assert f"v{v1}: promoted; @champion holds v{v1}" in out.output

    v3 = evaluated(uri, name, 0.2, champion=1.0, champion_version=v1)
    out = runner.invoke(app, ["--lake", str(lake), "models", "evaluate"])
    assert out.exit_code == 0 and f"champion v{v1}" in out.output and "(same test videos" in out.output
    assert f"spearman − champion v{v1}" in out.output
    # the alias moves by hand after v3 was evaluated: promoting v3 is refused
    from mlflow import MlflowClient

    MlflowClient(uri, registry_uri=uri).set_registered_model_alias(name, "champion", v2)
    out = runner.invoke(app, ["--lake", str(lake), "models", "promote"])
    assert out.exit_code == 1 and "evaluate again with `pe train`" in out.output
    assert _alias(uri, name) == v2

    listing = runner.invoke(app, ["--lake", str(lake), "models"])  # the listing is unchanged
    assert listing.exit_code == 0 and f"{name} ({uri})" in listing.output
    versions = {line.split()[0] for line in listing.output.splitlines() if line.strip()[:1].isdigit()}
    assert versions == {v1, v2, v3}


def test_without_a_champion_pe_score_explains_the_gate_and_force_promotes_with_a_warning(tmp_path):
    from mlflow import MlflowClient
    from typer.testing import CliRunner

    from jobs.cli import app
    from models.promotion_text import explain_no_champion

    lake = tmp_path / "lake"
    uri = _store(lake)
    name = "pe-engagement"
    assert "nothing has been trained yet; run `pe train`" in explain_no_champion(ModelRegistry(uri, name))
    v = evaluated(uri, name, 0.5, flip=True)
    assert f"waits for `pe models promote --version {v}`" in explain_no_champion(ModelRegistry(uri, name))
    assert not ModelRegistry(uri, name).promote_evaluated(v)[1].promoted  # the gate rejects it

    runner = CliRunner()
    out = runner.invoke(app, ["--lake", str(lake), "score"])  # fails on the model, before Spark starts
    assert out.exit_code == 1
    assert f"the last training (v{v}" in out.output and "did not pass the promotion gate" in out.output
    assert "FAIL  spearman − constant" in out.output and "label more videos" in out.output
    assert f"pe models promote --version {v} --force" in out.output

    out = runner.invoke(app, ["--lake", str(lake), "models", "promote", "--version", v, "--force"])
    assert out.exit_code == 0, out.output
    assert "warning: promoted to @champion by hand with --force although the gate said rejected" in out.output
    assert _alias(uri, name) == v
    version_tags, run_tags = _tags(uri, name, v)
    assert version_tags["pe.promotion"] == run_tags["pe.promotion"] == "forced"
    assert "the gate said rejected" in version_tags["pe.warning"]
    assert run_tags["pe.warning"] == version_tags["pe.warning"]
    assert MlflowClient(uri, registry_uri=uri).get_model_version(name, v).aliases == ["champion"]
