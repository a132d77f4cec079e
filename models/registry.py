"""The engagement model in MLflow: save, register, load by alias, version or run.

A logged model is a directory with two files PE-score reads back, plus MLflow's own metadata::

    model/
      MLmodel, requirements.txt, pyfunc_entry.py   pyfunc flavour (models from code, signature
                                                    clips (-1, -1, 3, H, W) float32 → (-1,) float32)
      artifacts/engagement_model.json              {"model": cfg.model, "preprocess": backbone config,
                                                    "clip": ClipSettings, "label": {...}, "format": 1}
      artifacts/state_dict.pt                      the whole network's tensors (backbone included)

:func:`load_engagement_model` reads the JSON, rebuilds the architecture from the backbone registry and loads
the tensors with ``torch.load(weights_only=True)``: nothing stored is ever unpickled or executed.

Promotion to ``@champion`` (the gate, deferred promotion, the logged evaluations, the version listing) is
:mod:`models.promotion`.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

from models.network import EngagementNet, build_engagement_net
from models.settings import ModelSettings
from pe_udfs.errors import PEError
from pe_udfs.saliency import resolve_device
from pe_udfs.settings import ClipSettings

__all__ = [
    "LoadedModel", "NoChampionError", "ModelLoadError", "mlflow_store", "ensure_experiment", "model_config",
    "log_engagement_model", "build_from_files", "load_engagement_model", "clear_model_cache", "champion_version",
    "MODEL_ARTIFACT", "CONFIG_FILE", "WEIGHTS_FILE", "FORMAT_VERSION",
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


# --------------------------------------------------------------------------------------------- MLflow setup
@contextmanager
def mlflow_store(tracking_uri: str, registry_uri: str | None = None) -> Iterator[None]:
    """Point MLflow's fluent API (``mlflow.start_run``, ``log_model(registered_model_name=...)``) at one store for
    the duration of a block, then restore what was there. MLflow keeps these URIs process-wide and also exports
    them as MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI to every child process, so a job that set them and left
    them would send later work in the same process (tests, notebooks) and its subprocesses to its store."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri or tracking_uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _client(tracking_uri: str, registry_uri: str | None = None):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``name``, created (with ``artifact_location``, e.g. inside the lake) if missing."""
    client = _client(tracking_uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    if artifact_location and "://" not in artifact_location:
        os.makedirs(artifact_location, exist_ok=True)
        artifact_location = "file://" + os.path.abspath(artifact_location)
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except Exception:  # noqa: BLE001 - a concurrent creator won
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


# --------------------------------------------------------------------------------------------- saving
def model_config(net: EngagementNet, clip: ClipSettings, label: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON saved with a model: everything scoring needs to rebuild it and make its clips."""
    return {"format": FORMAT_VERSION, **net.config(), "clip": clip.model_dump(), "label": label or {}}


def log_engagement_model(net: EngagementNet, *, clip: ClipSettings, label: dict[str, Any] | None = None,
                         registered_model_name: str | None = None) -> tuple[str, str | None]:
    """Log ``net`` into the active MLflow run as artifact ``model`` (pyfunc flavour with signature, config JSON
    and state dict); register it under ``registered_model_name`` when given.

    Returns ``(model_uri, version)``; ``version`` is None when not registered."""
    import mlflow
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_engagement_model needs an active MLflow run")
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
        with warnings.catch_warnings():  # MLflow nags about type hints / input examples; the signature is explicit
            warnings.simplefilter("ignore", UserWarning)
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyfunc_entry.py"),
                artifacts={"config": cfg_path, "weights": weights_path},
                signature=signature,
                pip_requirements=_requirements(),
                registered_model_name=registered_model_name,
                await_registration_for=60,
            )
    run_uri = f"runs:/{run.info.run_id}/{MODEL_ARTIFACT}"
    version = getattr(info, "registered_model_version", None)
    return run_uri, (str(version) if version is not None else None)


def _requirements() -> list[str]:
    """Pinned requirements recorded with the model (environment stays local: nothing is rebuilt from them)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("torch", "torchvision", "timm", "mlflow", "numpy", "pydantic"):
        try:
            out.append(f"{pkg}=={version(pkg).split('+')[0]}")
        except PackageNotFoundError:
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
    from models.backbones import BackboneWeightsError, UnknownBackbone

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
    except Exception as e:  # noqa: BLE001 - corrupt file or a pickle that is not plain tensors
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


def load_engagement_model(model_uri: str | None = None, *, tracking_uri: str, model_name: str = "pe-engagement",
                          alias: str = "champion", device: str = "auto") -> LoadedModel:
    """Load the engagement model by alias (default ``models:/pe-engagement@champion``), registered version
    (``models:/pe-engagement/3``) or run (``runs:/<id>/model``); cached per process by version and device.

    Raises :class:`NoChampionError` when no version has the alias, :class:`ModelLoadError` when the model
    is missing or broken."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    uri = model_uri or f"models:/{model_name}@{alias}"
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
                mv = client.get_model_version(name, version)
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
            location = uri
        else:
            _parse_models_uri(uri)  # raises the explanatory ValueError
            raise AssertionError("unreachable")
    except MlflowException as e:
        raise ModelLoadError("not_found", f"cannot resolve model {uri} in {tracking_uri}: {e.message}") from e

    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="pe-load-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=tmp, tracking_uri=tracking_uri)
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


def champion_version(tracking_uri: str, model_name: str, alias: str = "champion"):
    """The ``ModelVersion`` holding ``alias``, or None."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None
