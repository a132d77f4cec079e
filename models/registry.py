"""The model registry, as one object: which versions of the engagement model exist, which holds the champion
alias, and loading, registering and promoting them.

A :class:`ModelRegistry` names its stores once (tracking URI, registry URI, model name, alias), so no caller
passes them around::

    reg = ModelRegistry("sqlite:///lake/mlflow.db")          # pe-engagement, @champion
    reg.champion()                                           # the ModelVersion holding @champion, or None
    model = reg.load()                                       # the champion, ready to score (LoadedModel)
    version = reg.register(run, net, clip=clip)              # a new version from a training run
    reg.promote(version, gate, run_id=run.run_id)            # @champion moves when the gate passed
    reg.evaluation(version); reg.promote_evaluated(version)  # what its run logged; the deferred decision

It is a frozen dataclass of strings: it pickles, so executors get it inside the scoring job's closure.
The stored form of a model is :mod:`models.stored_model`; the promotion policy's tags and decisions
:mod:`models.promotion`; what a training run logs :mod:`models.logged_evaluation`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from models.gate import GateResult
from models.logged_evaluation import (
    GATE_ARTIFACT,
    SPLIT_ARTIFACT,
    Evaluation,
    EvaluationError,
    StaleEvaluationError,
    evaluation_from_run,
)
from models.network import EngagementNet
from models.promotion import (
    FORCED,
    MAX_TAG_TEXT,
    PENDING,
    TAG_PROMOTION,
    TAG_WARNING,
    PromotionDecision,
    forced_warning,
)
from models.stored_model import (
    LoadedModel,
    ModelLoadError,
    NoChampionError,
    load_model,
    log_model_files,
    register_logged_model,
)
from models.tracking import TrackedRun, mlflow_client, run_json
from pe_udfs.settings import ClipSettings

# the errors and the loaded model are part of the registry's public face
__all__ = ["ModelRegistry", "ModelVersionInfo", "LoadedModel", "ModelLoadError", "NoChampionError",
           "DEFAULT_MODEL_NAME", "DEFAULT_ALIAS"]

DEFAULT_MODEL_NAME = "pe-engagement"
DEFAULT_ALIAS = "champion"


@dataclass
class ModelVersionInfo:
    """One registered version as ``pe models list`` shows it."""

    version: str
    aliases: list[str]
    run_id: str
    created: str  # UTC, "YYYY-MM-DD HH:MM:SS"
    status: str
    promotion: str | None
    metrics: dict[str, float]


@dataclass(frozen=True)
class ModelRegistry:
    """The registered engagement model ``model_name`` in the stores of ``tracking_uri`` (runs, artifacts) and
    ``registry_uri`` (versions, aliases; default: the tracking store); ``alias`` is the champion's."""

    tracking_uri: str
    model_name: str = DEFAULT_MODEL_NAME
    alias: str = DEFAULT_ALIAS
    registry_uri: str | None = None

    @property
    def client(self) -> MlflowClient:
        return mlflow_client(self.tracking_uri, self.registry_uri)

    # ----------------------------------------------------------------------------------------- which versions
    def latest(self) -> str | None:
        """The newest registered version (highest number), or None."""
        try:
            versions = self.client.search_model_versions(f"name='{self.model_name}'")
        except MlflowException:
            return None
        return str(max(int(v.version) for v in versions)) if versions else None

    def champion(self) -> ModelVersion | None:
        """The version holding the alias, or None."""
        try:
            return self.client.get_model_version_by_alias(self.model_name, self.alias)
        except MlflowException:
            return None

    def versions(self) -> list[ModelVersionInfo]:
        """Every version (newest first) with its aliases, promotion tag and its run's test metrics."""
        client = self.client
        try:
            versions = client.search_model_versions(f"name='{self.model_name}'")
            aliases_of: dict[str, list[str]] = {}
            for alias_name, v in (client.get_registered_model(self.model_name).aliases or {}).items():
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
            created = datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=timezone.utc).strftime(
                "%Y-%m-%d %H:%M:%S")
            out.append(ModelVersionInfo(str(mv.version), sorted(aliases_of.get(str(mv.version), [])),
                                        mv.run_id or "", created, str(mv.status),
                                        (mv.tags or {}).get(TAG_PROMOTION), metrics))
        return out

    # ----------------------------------------------------------------------------------------- load, register
    def load(self, model_uri: str | None = None, *, device: str = "auto") -> LoadedModel:
        """The model at ``model_uri`` (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``runs:/RUN/model``;
        default: this registry's alias), ready to score; cached per process."""
        return load_model(self.client, model_uri or f"models:/{self.model_name}@{self.alias}",
                          tracking_uri=self.tracking_uri, model_name=self.model_name, device=device)

    def load_version(self, version: str, *, device: str = "auto") -> LoadedModel:
        """Registered version ``version`` (a fixed version, so every executor of a run loads the same one)."""
        return self.load(f"models:/{self.model_name}/{version}", device=device)

    def register(self, run: TrackedRun, net: EngagementNet, *, clip: ClipSettings,
                 label: dict[str, Any] | None = None) -> str:
        """Save ``net`` as ``run``'s model (:func:`models.stored_model.log_model_files`) and register it as a
        new version (the registered model is created if missing); the version number."""
        model = log_model_files(run, net, clip=clip, label=label)
        return register_logged_model(self.client, self.model_name, model, run.run_id)

    # ----------------------------------------------------------------------------------------- promotion
    def promote(self, version: str, gate: GateResult, *, run_id: str | None = None) -> PromotionDecision:
        """Move the alias to ``version`` when ``gate`` passed; tag the version (and ``run_id``) with the decision."""
        decision = PromotionDecision(gate.promoted, gate.status, gate.reason, gate)
        if decision.promoted:
            self.client.set_registered_model_alias(self.model_name, self.alias, str(version))
        self._tag(version, run_id, decision)
        return decision

    def defer(self, version: str, *, gate: GateResult | None = None, run_id: str | None = None
              ) -> PromotionDecision:
        """Leave the alias alone and tag the version (and ``run_id``) ``pe.promotion=pending``: the decision is
        :meth:`promote_evaluated`'s (``pe models promote``), from the gate the run logged."""
        decision = PromotionDecision(False, PENDING, "promotion deferred to `pe models promote`", gate)
        self._tag(version, run_id, decision)
        return decision

    def force(self, version: str, *, run_id: str, gate: GateResult | None) -> PromotionDecision:
        """Move the alias to ``version`` whatever ``gate`` says (a person's decision): status ``forced``, and the
        version and its run get the tag ``pe.warning`` saying what the gate found (or that there was none)."""
        warning = forced_warning(gate, self.alias)
        decision = PromotionDecision(True, FORCED, warning, gate)
        client = self.client
        client.set_registered_model_alias(self.model_name, self.alias, str(version))
        self._tag(version, run_id, decision)
        client.set_model_version_tag(self.model_name, str(version), TAG_WARNING, warning[:MAX_TAG_TEXT])
        client.set_tag(run_id, TAG_WARNING, warning[:MAX_TAG_TEXT])
        return decision

    def _tag(self, version: str, run_id: str | None, decision: PromotionDecision) -> None:
        client = self.client
        for key, value in decision.tags().items():
            client.set_model_version_tag(self.model_name, str(version), key, value)
            if run_id:
                client.set_tag(run_id, key, value)

    # ----------------------------------------------------------------------------------------- what runs logged
    def training_videos(self, run_id: str) -> set[str] | None:
        """The videos the model of ``run_id`` trained on (its train and validation splits), or None when its
        run did not log ``split.json``."""
        split = run_json(self.tracking_uri, run_id, SPLIT_ARTIFACT)
        return None if split is None else set(split.get("train", [])) | set(split.get("val", []))

    def evaluation(self, version: str | None = None) -> Evaluation:
        """The held-out evaluation logged by the training run of ``version`` (default: the newest version).

        Raises :class:`EvaluationError` when the version, its run or its test metrics are missing."""
        client = self.client
        name = self.model_name
        if version is None:
            version = self.latest()
            if version is None:
                raise EvaluationError("no_versions", f"no versions of {name} in {self.tracking_uri}; run `pe train`")
        version = str(version)
        try:
            mv = client.get_model_version(name, version)
        except MlflowException as e:
            raise EvaluationError("no_version", f"no version {version} of {name} in {self.tracking_uri}") from e
        if not mv.run_id:
            raise EvaluationError("no_run", f"{name} v{version} has no training run, so no logged test metrics")
        try:
            run = client.get_run(mv.run_id)
        except MlflowException as e:
            raise EvaluationError("run_unreadable", f"the training run {mv.run_id} of {name} v{version} cannot be "
                                  f"read: {e.message}") from e
        current = self.champion()
        return evaluation_from_run(
            model_name=name, version=version, alias=self.alias, run_id=mv.run_id, metrics=dict(run.data.metrics),
            tags=dict(run.data.tags), promotion=(mv.tags or {}).get(TAG_PROMOTION),
            current_champion=None if current is None else str(current.version),
            logged_gate=run_json(self.tracking_uri, mv.run_id, GATE_ARTIFACT))

    def promote_evaluated(self, version: str | None = None, *, force: bool = False
                          ) -> tuple[Evaluation, PromotionDecision]:
        """Apply the promotion gate that the training run of ``version`` (default: the newest) logged, as
        ``pe train`` would have (:meth:`promote`: same alias move, same tags).

        A version that already holds the alias is left as it is (decision ``promoted``, nothing changed). Raises
        :class:`StaleEvaluationError` when the alias has moved since the evaluation (or the run does not say which
        champion it was compared with), :class:`EvaluationError` when the evaluation or its gate is missing.

        ``force``: move the alias whatever the gate says (:meth:`force`)."""
        ev = self.evaluation(version)
        if ev.current_champion == ev.version:
            return ev, PromotionDecision(True, "promoted", f"v{ev.version} already holds @{self.alias}; nothing to do",
                                         ev.gate)
        if force:
            return ev, self.force(ev.version, run_id=ev.run_id, gate=ev.gate)
        if ev.stale:
            raise StaleEvaluationError("stale", ev.stale_reason())
        if ev.gate is None:
            raise EvaluationError("no_gate", f"the run of {self.model_name} v{ev.version} logged no promotion gate "
                                  f"({GATE_ARTIFACT}); evaluate again with `pe train`")
        return ev, self.promote(ev.version, ev.gate, run_id=ev.run_id)
