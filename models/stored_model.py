"""The engagement model's stored form in MLflow: what is saved, and how it is rebuilt (never unpickled).

A model is the training run's MLflow LoggedModel named ``model`` (``models:/<model_id>``, also reached as
``runs:/<run_id>/model``; registered versions point at it): a directory with two files PE-score reads back,
plus MLflow's own metadata::

    model/
      MLmodel, requirements.txt, pyfunc_entry.py   pyfunc flavour (models from code, signature
                                                    clips (-1, -1, 3, H, W) float32 → (-1,) float32)
      artifacts/engagement_model.json              {"model": cfg.model, "preprocess": backbone config,
                                                    "clip": ClipSettings, "label": {...}, "format": 1}
      artifacts/state_dict.pt                      the whole network's tensors (backbone included)

:func:`load_model` reads the JSON, rebuilds the architecture from the backbone registry and loads
the tensors with ``torch.load(weights_only=True)``: nothing stored is ever unpickled or executed.

Callers go through :class:`models.registry.ModelRegistry` (which versions exist, the champion, load, register,
promote); this module is the file format under it.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import torch
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.entities import LoggedModel, LoggedModelOutput
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import save_model
from mlflow.types import Schema, TensorSpec
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

from models.backbones import BackboneWeightsError, UnknownBackbone
from models.network import EngagementNet, build_engagement_net
from models.settings import ModelSettings
from models.tracking import TrackedRun
from pe_udfs.errors import PEError
from pe_udfs.saliency import resolve_device
from pe_udfs.settings import ClipSettings

__all__ = [
    "LoadedModel", "NoChampionError", "ModelLoadError", "model_config", "log_model_files", "register_logged_model",
    "build_from_files", "load_model", "clear_model_cache", "MODEL_ARTIFACT", "CONFIG_FILE", "WEIGHTS_FILE",
    "FORMAT_VERSION",
]

MODEL_ARTIFACT = "model"
CONFIG_FILE = "engagement_model.json"
WEIGHTS_FILE = "state_dict.pt"
FORMAT_VERSION = 1


class ModelLoadError(PEError):
    """A model exists but cannot be loaded (missing files, bad config, weights that do not fit)."""

    stage = "model"


class NoChampionError(PEError):
    """No model version carries the requested alias (nothing trained yet)."""

    stage = "model"


@dataclass
class LoadedModel:
    """A model ready to score: ``module`` (EngagementNet in eval mode on ``device``, every parameter frozen) and
    what it was trained with (``clip``: the sampling scoring must use)."""

    module: EngagementNet
    name: str
    version: str
    run_id: str
    clip: ClipSettings
    backbone: str
    uri: str
    device: str
    config: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- saving
def model_config(net: EngagementNet, clip: ClipSettings, label: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON saved with a model: everything scoring needs to rebuild it and make its clips."""
    return {"format": FORMAT_VERSION, **net.config(), "clip": clip.model_dump(), "label": label or {}}


def log_model_files(run: TrackedRun, net: EngagementNet, *, clip: ClipSettings,
                    label: dict[str, Any] | None = None) -> LoggedModel:
    """Save ``net`` as the LoggedModel ``model`` of ``run`` (pyfunc flavour with signature, config JSON and
    state dict); ``runs:/<run_id>/model`` reaches it. Registering it is :func:`register_logged_model`."""
    h, w = clip.size, clip.size
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, -1, 3, h, w))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,))]),
    )
    with tempfile.TemporaryDirectory(prefix="pe-model-") as tmp:
        cfg_path = os.path.join(tmp, CONFIG_FILE)
        weights_path = os.path.join(tmp, WEIGHTS_FILE)
        with open(cfg_path, "w") as f:
            json.dump(model_config(net, clip, label), f, indent=2, sort_keys=True)
        state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
        torch.save(state, weights_path)
        model_dir = os.path.join(tmp, MODEL_ARTIFACT)
        with warnings.catch_warnings():  # MLflow nags about type hints / input examples; the signature is explicit
            warnings.simplefilter("ignore", UserWarning)
            save_model(
                model_dir,
                python_model=os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyfunc_entry.py"),
                artifacts={"config": cfg_path, "weights": weights_path},
                signature=signature,
                pip_requirements=_requirements(),
            )
        return _log_model(run, model_dir)


def _log_model(run: TrackedRun, model_dir: str) -> LoggedModel:
    """Upload the saved model as the run's MLflow LoggedModel named ``model``. As
    ``mlflow.pyfunc.log_model`` does, minus the fluent active run: the run's "Logged models" list it,
    ``models:/<model_id>`` names it and ``runs:/<run_id>/model`` resolves to it."""
    model = run.client.create_logged_model(run.experiment_id, name=MODEL_ARTIFACT, source_run_id=run.run_id,
                                           model_type="pe-engagement")
    try:
        run.client.log_model_artifacts(model.model_id, model_dir)
    except BaseException:
        run.client.finalize_logged_model(model.model_id, "FAILED")
        raise
    run.client.finalize_logged_model(model.model_id, "READY")
    run.client.log_outputs(run.run_id, [LoggedModelOutput(model.model_id, step=0)])
    return model


def register_logged_model(client: MlflowClient, name: str, model: LoggedModel, run_id: str) -> str:
    """A new version of ``name`` made from the LoggedModel ``model``; the logged model lists the versions made
    from it (tag ``mlflow.modelVersions``, as MLflow's own registration writes). The source is the model's
    artifact location, not ``models:/<model_id>``: MLflow's SQL registry resolves that through the process's
    global tracking URI, which PE-score never sets."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name)
        except MlflowException:  # a concurrent creator won
            client.get_registered_model(name)
    mv = client.create_model_version(name, source=model.artifact_location, run_id=run_id, model_id=model.model_id)
    made = json.loads(model.tags.get(MLFLOW_MODEL_VERSIONS, "[]"))  # the model was just logged: its own tags
    client.set_logged_model_tags(model.model_id, {
        MLFLOW_MODEL_VERSIONS: json.dumps(made + [{"name": mv.name, "version": mv.version}])})
    return str(mv.version)


def _requirements() -> list[str]:
    """Pinned requirements recorded with the model (environment stays local: nothing is rebuilt from them)."""
    out = []
    for pkg in ("torch", "torchvision", "timm", "mlflow", "numpy", "pydantic"):
        try:
            out.append(f"{pkg}=={metadata.version(pkg).split('+')[0]}")
        except metadata.PackageNotFoundError:
            continue
    return out


# --------------------------------------------------------------------------------------------- loading
def build_from_files(config_path: str, weights_path: str, *, device: str = "auto") -> EngagementNet:
    """Rebuild an :class:`EngagementNet` from a saved config JSON and state dict (eval mode, frozen, on ``device``)."""
    net, _ = _build(config_path, weights_path, device)
    return net


def _read_config(config_path: str) -> dict[str, Any]:
    try:
        with open(config_path) as f:
            cfg = json.load(f)
    except FileNotFoundError as e:
        raise ModelLoadError("no_config", f"the model has no {CONFIG_FILE}; it was not saved by PE-score") from e
    except (OSError, ValueError) as e:
        raise ModelLoadError("config_unreadable", f"cannot read the model config {config_path}: {e}") from e
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT_VERSION or "model" not in cfg or "clip" not in cfg:
        raise ModelLoadError("bad_config", f"{config_path} is not a PE-score model config (format {FORMAT_VERSION})")
    return cfg


def _build(config_path: str, weights_path: str, device: str) -> tuple[EngagementNet, dict[str, Any]]:
    cfg = _read_config(config_path)
    try:
        settings = ModelSettings(**{**cfg["model"], "backbone_weights": None})
        net = build_engagement_net(settings, weights=None)
    except (UnknownBackbone, ValueError) as e:
        raise ModelLoadError("bad_architecture", f"cannot rebuild the saved architecture: {e}") from e
    saved_pre = cfg.get("preprocess", {})
    if saved_pre and int(saved_pre.get("feature_channels", -1)) != net.preprocess.feature_channels:
        raise ModelLoadError("backbone_mismatch", f"saved backbone '{settings.backbone}' had {saved_pre.get('feature_channels')} feature "
                             f"channels, the registry's has {net.preprocess.feature_channels}")
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise ModelLoadError("no_weights", f"the model has no {WEIGHTS_FILE}") from e
    except Exception as e:  # corrupt file or a pickle that is not plain tensors
        raise ModelLoadError("weights_unreadable", f"cannot read the model weights {weights_path} as tensors: {e}") from e
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, BackboneWeightsError) as e:
        raise ModelLoadError("weights_mismatch", f"the saved weights do not fit the '{settings.backbone}' network: {e}") from e
    net.requires_grad_(False)  # inference: gradients still reach the input pixels (saliency), never the weights
    dev = resolve_device(device)
    return net.to(dev).eval(), cfg


_CACHE: dict[tuple[str, str, str], LoadedModel] = {}
_CACHE_LOCK = threading.Lock()


def clear_model_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def _parse_models_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/name/3`` → (name, "3", None); ``models:/name@alias`` → (name, None, alias)."""
    m = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([\w.-]+))", uri)
    if not m:
        raise ValueError(f"unsupported model URI {uri!r}: use models:/NAME/VERSION, models:/NAME@ALIAS or "
                         "runs:/RUN_ID/model")
    return m.group(1), m.group(2), m.group(3)


def load_model(client: MlflowClient, uri: str, *, tracking_uri: str, model_name: str, device: str = "auto"
               ) -> LoadedModel:
    """Load the engagement model by alias (``models:/pe-engagement@champion``), registered version
    (``models:/pe-engagement/3``) or run (``runs:/<id>/model``, named ``model_name`` when not registered) from
    ``client``'s stores; cached per process by store, version and device.

    Raises :class:`NoChampionError` when no version has the alias, :class:`ModelLoadError` when the model
    is missing or broken."""
    dev = str(resolve_device(device))
    try:
        if uri.startswith("models:/"):
            name, version, uri_alias = _parse_models_uri(uri)
            if uri_alias is not None:
                try:
                    mv = client.get_model_version_by_alias(name, uri_alias)
                except MlflowException as e:
                    raise NoChampionError("no_champion", 
                        f"no version of model '{name}' has the alias @{uri_alias} in {tracking_uri}; train one "
                        f"first: run `pe train` (or `make demo`)") from e
            else:
                mv = client.get_model_version(name, str(version))
            key = (tracking_uri, f"{name}/{mv.version}", dev)
            name, version, run_id = mv.name, str(mv.version), mv.run_id or ""
            location = client.get_model_version_download_uri(name, version)
        elif uri.startswith("runs:/"):
            m = re.fullmatch(r"runs:/([0-9a-f]+)/(.+)", uri)
            if not m:
                raise ValueError(f"unsupported model URI {uri!r}")
            run_id = m.group(1)
            registered = client.search_model_versions(f"run_id='{run_id}'")
            name = registered[0].name if registered else model_name
            version = str(registered[0].version) if registered else "unregistered"
            key = (tracking_uri, uri, dev)
            location = _run_model_location(client, run_id, m.group(2)) or uri
        else:
            _parse_models_uri(uri)  # raises the explanatory ValueError
            raise AssertionError("unreachable")
    except MlflowException as e:
        raise ModelLoadError("not_found", f"cannot resolve model {uri} in {tracking_uri}: {e.message}") from e

    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="pe-load-") as tmp:
        try:
            local = download_artifacts(artifact_uri=location, dst_path=tmp, tracking_uri=tracking_uri)
        except (MlflowException, OSError) as e:
            raise ModelLoadError("download_failed", f"cannot download model {uri} (version {version}): {e}") from e
        files = os.path.join(local, "artifacts")
        net, cfg = _build(os.path.join(files, CONFIG_FILE), os.path.join(files, WEIGHTS_FILE), dev)
    loaded = LoadedModel(module=net, name=name, version=version, run_id=run_id,
                         clip=ClipSettings(**cfg["clip"]), backbone=net.preprocess.name, uri=uri, device=dev,
                         config=cfg)
    with _CACHE_LOCK:
        _CACHE[key] = loaded
    return loaded


def _run_model_location(client, run_id: str, name: str) -> str | None:
    """Artifact location of the LoggedModel ``name`` the run logged (its outputs), or None when the run stored
    its model as run artifacts (models logged before the LoggedModel record): those load by the runs:/ URI.
    MLflow's own runs:/ fallback to logged models looks them up through the global tracking URI."""
    for output in client.get_run(run_id).outputs.model_outputs:
        model = client.get_logged_model(output.model_id)
        if model.name == name:
            return model.artifact_location
    return None
