"""The promotion policy: which version holds ``@champion``, and the decision recorded on the version and its run.

A new version takes ``@champion`` only when the promotion gate (:mod:`models.gate`) passes on its own held-out
test videos. Every decision is tagged on the version and on its training run::

    pe.promotion          promoted | kept | rejected (the gate's status) | pending (deferred) | forced (by hand)
    pe.promotion_reason   the gate's reason, or why the decision was deferred or forced
    pe.warning            (forced only) what the gate found, or that there was none

:func:`apply_gate` moves the alias when the gate passed, :func:`defer_promotion` leaves it and tags the version
``pending`` (``pe train --no-promote``; :mod:`models.logged_evaluation` decides later from what the run logged),
:func:`force_promotion` moves it whatever the gate said. No console text here (:mod:`models.promotion_text`).
"""
from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient

from models.gate import GateResult
from models.tracking import mlflow_client

__all__ = ["PromotionDecision", "apply_gate", "defer_promotion", "force_promotion",
           "TAG_PROMOTION", "TAG_PROMOTION_REASON", "TAG_WARNING", "PENDING", "FORCED"]

TAG_PROMOTION = "pe.promotion"
TAG_PROMOTION_REASON = "pe.promotion_reason"
#: Tag of a version (and its run) promoted by hand against its gate: what the gate said.
TAG_WARNING = "pe.warning"
PENDING = "pending"
FORCED = "forced"
#: MLflow tag values are capped; reasons are cut to this length.
MAX_TAG_TEXT = 5000


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    status: str  # "promoted" | "kept" (champion stays) | "rejected" (fails the gate's absolute checks) | "pending"
    reason: str
    gate: GateResult | None = None


def apply_gate(*, tracking_uri: str, model_name: str, version: str, gate: GateResult, alias: str = "champion",
               run_id: str | None = None) -> PromotionDecision:
    """Move ``alias`` to ``version`` when ``gate`` passed; tag the version (and ``run_id``) with the decision."""
    decision = PromotionDecision(gate.promoted, gate.status, gate.reason, gate)
    client = mlflow_client(tracking_uri)
    if decision.promoted:
        client.set_registered_model_alias(model_name, alias, str(version))
    _tag_decision(client, model_name, version, run_id, decision)
    return decision


def defer_promotion(*, tracking_uri: str, model_name: str, version: str, gate: GateResult | None = None,
                    run_id: str | None = None) -> PromotionDecision:
    """Leave ``@champion`` alone and tag the version (and ``run_id``) ``pe.promotion=pending``: the decision is
    :func:`models.logged_evaluation.promote_evaluated`'s (``pe models promote``), from the gate the run logged."""
    decision = PromotionDecision(False, PENDING, "promotion deferred to `pe models promote`", gate)
    _tag_decision(mlflow_client(tracking_uri), model_name, version, run_id, decision)
    return decision


def force_promotion(*, tracking_uri: str, model_name: str, version: str, run_id: str, gate: GateResult | None,
                    alias: str = "champion") -> PromotionDecision:
    """Move ``alias`` to ``version`` whatever ``gate`` says (a person's decision): status ``forced``, and the
    version and its run get the tag ``pe.warning`` saying what the gate found (or that there was none)."""
    found = f"the gate said {gate.status}: {gate.reason}" if gate is not None else "its run logged no promotion gate"
    warning = f"promoted to @{alias} by hand with --force although {found}"
    decision = PromotionDecision(True, FORCED, warning, gate)
    client = mlflow_client(tracking_uri)
    client.set_registered_model_alias(model_name, alias, version)
    _tag_decision(client, model_name, version, run_id, decision)
    client.set_model_version_tag(model_name, version, TAG_WARNING, warning[:MAX_TAG_TEXT])
    client.set_tag(run_id, TAG_WARNING, warning[:MAX_TAG_TEXT])
    return decision


def _tag_decision(client: MlflowClient, model_name: str, version: str, run_id: str | None,
                  decision: PromotionDecision) -> None:
    for key, value in ((TAG_PROMOTION, decision.status), (TAG_PROMOTION_REASON, decision.reason[:MAX_TAG_TEXT])):
        client.set_model_version_tag(model_name, str(version), key, value)
        if run_id:
            client.set_tag(run_id, key, value)
