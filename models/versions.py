"""The registered versions of the engagement model: the newest, and a listing with aliases and test metrics."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from mlflow.exceptions import MlflowException

from models.promotion import TAG_PROMOTION
from models.tracking import mlflow_client

__all__ = ["ModelVersionInfo", "latest_version", "list_models"]


@dataclass
class ModelVersionInfo:
    version: str
    aliases: list[str]
    run_id: str
    created: str  # UTC, "YYYY-MM-DD HH:MM:SS"
    status: str
    promotion: str | None
    metrics: dict[str, float]


def latest_version(tracking_uri: str, model_name: str) -> str | None:
    """The newest registered version of ``model_name`` (highest number), or None."""
    try:
        versions = mlflow_client(tracking_uri).search_model_versions(f"name='{model_name}'")
    except MlflowException:
        return None
    return str(max(int(v.version) for v in versions)) if versions else None


def list_models(*, tracking_uri: str, model_name: str = "pe-engagement") -> list[ModelVersionInfo]:
    """All versions of ``model_name`` (newest first) with aliases, promotion tag and the run's test metrics."""
    client = mlflow_client(tracking_uri)
    try:
        versions = client.search_model_versions(f"name='{model_name}'")
        aliases_of: dict[str, list[str]] = {}
        for alias_name, v in (client.get_registered_model(model_name).aliases or {}).items():
            aliases_of.setdefault(str(v), []).append(alias_name)
    except MlflowException:
        return []
    out = []
    for mv in sorted(versions, key=lambda v: int(v.version), reverse=True):
        metrics: dict[str, float] = {}
        if mv.run_id:
            try:
                metrics = dict(client.get_run(mv.run_id).data.metrics)
            except MlflowException:
                metrics = {}
        created = datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        out.append(ModelVersionInfo(str(mv.version), sorted(aliases_of.get(str(mv.version), [])), mv.run_id or "", created,
                                    str(mv.status), (mv.tags or {}).get(TAG_PROMOTION), metrics))
    return out
