"""The promotion policy: which version holds ``@champion``, and the decision recorded on the version and its run.

A new version takes ``@champion`` only when the promotion gate (:mod:`models.gate`) passes on its own held-out
test videos. Every decision is tagged on the version and on its training run::

    pe.promotion          promoted | kept | rejected (the gate's status) | pending (deferred) | forced (by hand)
    pe.promotion_reason   the gate's reason, or why the decision was deferred or forced
    pe.warning            (forced only) what the gate found, or that there was none

:class:`models.registry.ModelRegistry` applies it: ``promote`` moves the alias when the gate passed, ``defer``
leaves it and tags the version ``pending`` (``pe train --no-promote``; ``promote_evaluated`` decides later from
what the run logged), ``force`` moves it whatever the gate said. No console text here
(:mod:`models.promotion_text`).
"""
from __future__ import annotations

from dataclasses import dataclass

from models.gate import GateResult

__all__ = ["PromotionDecision", "forced_warning", "TAG_PROMOTION", "TAG_PROMOTION_REASON", "TAG_WARNING", "PENDING",
           "FORCED", "MAX_TAG_TEXT"]

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

    def tags(self) -> dict[str, str]:
        """The tags recording this decision on the version and its run."""
        return {TAG_PROMOTION: self.status, TAG_PROMOTION_REASON: self.reason[:MAX_TAG_TEXT]}


def forced_warning(gate: GateResult | None, alias: str) -> str:
    """What a promotion by hand overrode: the gate's verdict, or that the run logged none."""
    found = f"the gate said {gate.status}: {gate.reason}" if gate is not None else "its run logged no promotion gate"
    return f"promoted to @{alias} by hand with --force although {found}"
