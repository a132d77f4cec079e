"""The model registry (ModelRegistry): save → register → load by alias / version / run; the gate applied to
@champion; a registry store apart from the tracking store."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from models.registry import ModelLoadError, ModelRegistry, NoChampionError
from tests.models.synthetic import gate, register_model


# --------------------------------------------------------------------------------------------- MLflow
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from models.tracking import ensure_experiment

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    exp = ensure_experiment(uri, "pe-test", str(root / "artifacts"))
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    return uri, exp


def _log(store, seed: int, max_seconds: int = 60):
    from models.network import build_engagement_net
    from models.settings import ModelSettings
    from pe_udfs.settings import ClipSettings

    torch.manual_seed(seed)
    net = build_engagement_net(ModelSettings(backbone="tiny", dense_units=32)).eval()
    run_id, version = register_model(store[0], "pe-test", net, ClipSettings(max_seconds=max_seconds),
                                     model_name="pe-test", label={"definition": "log1p_shares"})
    return net, run_id, version


@pytest.mark.slow
def test_registry_round_trip_and_gated_promotion(store, tmp_path):
    from models.stored_model import clear_model_cache

    uri, _ = store
    reg = ModelRegistry(uri, "pe-test")
    with pytest.raises(NoChampionError, match="pe train"):
        reg.load()

    net1, run1, v1 = _log(store, seed=1, max_seconds=30)
    assert v1 == "1"
    d = reg.promote(v1, gate(1.0), run_id=run1)
    assert d.promoted
    loaded = reg.load(device="cpu")
    assert (loaded.version, loaded.run_id, loaded.backbone, loaded.name) == ("1", run1, "tiny", "pe-test")
    assert loaded.clip.max_seconds == 30 and loaded.config["label"]["definition"] == "log1p_shares"
    assert loaded.config["model"]["dense_units"] == 32 and not loaded.module.training
    clips = torch.rand(2, 3, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(clips), net1(clips))
    assert reg.load(device="cpu") is loaded  # cached
    # the pyfunc flavour (MLflow tooling, serving) loads from the downloaded version and predicts the same
    import mlflow.pyfunc
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    source = MlflowClient(uri, registry_uri=uri).get_model_version_download_uri("pe-test", v1)
    local = download_artifacts(artifact_uri=source, dst_path=str(tmp_path / "pyfunc"), tracking_uri=uri)
    pyfunc = mlflow.pyfunc.load_model(local)
    np.testing.assert_allclose(pyfunc.predict(clips.numpy()), net1(clips).detach().numpy(), rtol=1e-5, atol=1e-6)

    # a worse model registers as v2 but does not take @champion; the version and the run say why
    _, run2, v2 = _log(store, seed=2)
    d = reg.promote(v2, gate(1.3, champion=1.0, champion_version="1"), run_id=run2)
    assert not d.promoted
    assert reg.load(device="cpu").version == "1"
    # a model worse than the constant is rejected; a better one takes the alias
    _, run3, v3 = _log(store, seed=3)
    assert not reg.promote(v3, gate(0.1, flip=True, champion=1.0, champion_version="1"), run_id=run3).promoted
    net4, run4, v4 = _log(store, seed=4)
    assert reg.promote(v4, gate(0.2, champion=1.0, champion_version="1"), run_id=run4).promoted
    champ = reg.load(device="cpu")
    assert champ.version == "4" and champ.run_id == run4

    versions = {v.version: v for v in reg.versions()}
    assert sorted(versions) == ["1", "2", "3", "4"]
    assert versions["4"].aliases == ["champion"] and versions["1"].aliases == []
    assert [versions[k].promotion for k in "1234"] == ["promoted", "kept", "rejected", "promoted"]
    from mlflow import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    assert "vs champion v1" in client.get_run(run2).data.tags["pe.promotion_reason"]
    assert "does not beat the champion" in client.get_model_version("pe-test", "2").tags["pe.promotion_reason"]

    # load by version and by run; same weights
    clear_model_cache()
    by_version = reg.load_version("4", device="cpu")
    by_run = reg.load(f"runs:/{run4}/model", device="cpu")
    assert by_run.version == "4"
    with torch.no_grad():
        torch.testing.assert_close(by_version.module(clips), net4(clips))
        torch.testing.assert_close(by_run.module(clips), net4(clips))

    # MLflow 3's model record: the run's LoggedModel 'model' (its "Logged models"), naming the version made from it
    from mlflow.entities import LoggedModelStatus

    outputs = client.get_run(run4).outputs.model_outputs
    assert len(outputs) == 1
    logged = client.get_logged_model(outputs[0].model_id)
    assert (logged.name, logged.source_run_id, logged.status) == ("model", run4, LoggedModelStatus.READY)
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": "pe-test", "version": 4}]


@pytest.mark.slow
def test_a_registry_store_apart_from_the_tracking_store_holds_versions_and_the_alias(tmp_path):
    """``mlflow.registry_uri`` set: versions, the alias and its tags live in the registry store, runs and files in
    the tracking store; every operation of the facade (register, promote, load, evaluation) goes to the right one."""
    from mlflow import MlflowClient

    from models.logged_evaluation import evaluation_metrics, evaluation_tags, log_gate
    from models.network import build_engagement_net
    from models.settings import ModelSettings
    from models.tracking import ensure_experiment, tracked_run
    from pe_udfs.settings import ClipSettings
    from tests.models.synthetic import report

    tracking, registry = f"sqlite:///{tmp_path}/runs.db", f"sqlite:///{tmp_path}/registry.db"
    reg = ModelRegistry(tracking, "pe-apart", registry_uri=registry)
    exp = ensure_experiment(tracking, "pe-apart", str(tmp_path / "artifacts"))
    torch.manual_seed(3)
    net = build_engagement_net(ModelSettings(backbone="tiny", dense_units=8)).eval()
    passed = gate(1.0)
    with tracked_run(tracking, exp, run_name="apart", registry_uri=registry) as run:
        run.log_metrics(evaluation_metrics(report(1.0), None))
        run.set_tags(evaluation_tags(None))
        log_gate(run, passed)
        version = reg.register(run, net, clip=ClipSettings(max_seconds=5))
        assert reg.defer(version, gate=passed, run_id=run.run_id).status == "pending"
    assert MlflowClient(registry, registry_uri=registry).get_model_version("pe-apart", version).tags[
        "pe.promotion"] == "pending"
    assert ModelRegistry(tracking, "pe-apart").latest() is None  # the tracking store has no registered versions
    assert reg.latest() == version and reg.champion() is None
    ev, decision = reg.promote_evaluated()
    assert ev.version == version and decision.promoted
    champion = reg.champion()
    assert champion is not None and str(champion.version) == version
    assert reg.versions()[0].aliases == ["champion"]
    assert reg.load(device="cpu").run_id == run.run_id


@pytest.mark.slow
def test_models_stored_as_run_artifacts_by_earlier_versions_still_load(store, tmp_path):
    """Before the LoggedModel record, a model was the run's artifact folder 'model' and versions pointed at it."""
    from mlflow.artifacts import download_artifacts

    from models.stored_model import clear_model_cache
    from models.tracking import mlflow_client, tracked_run

    uri, exp = store
    net, _, v = _log(store, seed=6)
    client = mlflow_client(uri)
    files = download_artifacts(artifact_uri=client.get_model_version_download_uri("pe-test", v),
                               dst_path=str(tmp_path), tracking_uri=uri)
    with tracked_run(uri, exp, run_name="older-layout") as run:
        run.log_artifacts(files, "model")
    assert client.get_run(run.run_id).outputs.model_outputs == []
    client.create_registered_model("pe-old")
    version = client.create_model_version("pe-old", source=f"{run.artifact_uri}/model", run_id=run.run_id).version
    clear_model_cache()
    clips = torch.rand(1, 2, 3, 224, 224)
    for loaded in (ModelRegistry(uri).load(f"runs:/{run.run_id}/model", device="cpu"),
                   ModelRegistry(uri, "pe-old").load_version(version, device="cpu")):
        with torch.no_grad():
            torch.testing.assert_close(loaded.module(clips), net(clips))


@pytest.mark.slow
def test_broken_or_foreign_models_give_clear_errors(store, tmp_path):
    from models.tracking import tracked_run

    uri, exp = store
    with pytest.raises(ModelLoadError):
        ModelRegistry(uri, "pe-test").load_version("999")
    with pytest.raises(ValueError, match="unsupported model URI"):
        ModelRegistry(uri).load("/some/file.pt")
    # a model whose weights are a pickle of arbitrary objects is refused (weights_only loading)
    from models.stored_model import build_from_files

    cfg = tmp_path / "engagement_model.json"
    cfg.write_text(json.dumps({"format": 1, "model": {"backbone": "tiny"}, "clip": {}, "preprocess": {}}))
    evil = tmp_path / "state_dict.pt"
    torch.save({"x": object()}, evil)  # not plain tensors
    with pytest.raises(ModelLoadError, match="as tensors"):
        build_from_files(str(cfg), str(evil))
    torch.save({"conv.weight": torch.zeros(1)}, evil)
    with pytest.raises(ModelLoadError, match="do not fit"):
        build_from_files(str(cfg), str(evil))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="not a PE-score model config"):
        build_from_files(str(tmp_path / "bad.json"), str(evil))
    # an MLflow model without PE-score's files
    with tracked_run(uri, exp, run_name="foreign") as run:
        run.log_dict({"hello": 1}, "model/artifacts/other.json")
    with pytest.raises(ModelLoadError):
        ModelRegistry(uri).load(f"runs:/{run.run_id}/model")


def test_loaded_models_are_frozen_but_pass_gradients_to_the_input(tmp_path):
    from models.network import build_engagement_net
    from models.settings import ModelSettings
    from models.stored_model import build_from_files, model_config
    from pe_udfs.settings import ClipSettings

    torch.manual_seed(5)
    net = build_engagement_net(ModelSettings(backbone="tiny"))
    (tmp_path / "c.json").write_text(json.dumps(model_config(net, ClipSettings(max_seconds=7))))
    torch.save(net.state_dict(), tmp_path / "w.pt")
    loaded = build_from_files(str(tmp_path / "c.json"), str(tmp_path / "w.pt"), device="cpu")
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training
    clips = torch.rand(1, 2, 3, 224, 224, requires_grad=True)
    loaded(clips).sum().backward()
    assert clips.grad is not None and clips.grad.abs().sum() > 0
    with torch.no_grad():
        torch.testing.assert_close(loaded(clips), net.eval()(clips))
