"""The held-out evaluation a training run logs, read back, and the deferred promotion decided from it.

The training run of every version logs::

    gate.json, gate_* metrics      the promotion gate (every check, its interval and threshold, the settings)
    split.json                     the video ids of each split (a later candidate leaves out what this one saw)
    test_*, champion_test_*        held-out metrics of the candidate (with the constant) and of the champion
    tags pe.champion_version, pe.champion_unavailable     which champion it was compared with

:func:`evaluation_from_run` reads this back as an :class:`Evaluation` (through
:meth:`models.registry.ModelRegistry.evaluation`); ``ModelRegistry.promote_evaluated`` (``pe models promote``)
applies the logged gate as ``pe train`` would have, provided the champion it was compared with still holds the
alias (otherwise the comparison is stale and nothing moves), or with ``force`` moves the alias whatever the gate
said (:mod:`models.promotion`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.evaluate import EvalReport
from models.gate import GateResult
from models.tracking import TrackedRun
from pe_udfs.errors import PEError

__all__ = [
    "Evaluation", "EvaluationError", "StaleEvaluationError", "log_gate", "log_split", "evaluation_metrics",
    "evaluation_tags", "evaluation_from_run", "GATE_ARTIFACT", "SPLIT_ARTIFACT",
]

GATE_ARTIFACT = "gate.json"
SPLIT_ARTIFACT = "split.json"

#: MLflow metric prefixes of a training run's evaluation: the candidate (with the constant baseline) and the
#: champion on the test videos it did not train on (without baseline keys: the baseline is the candidate's).
TEST_PREFIX = "test_"
CHAMPION_PREFIX = "champion_" + TEST_PREFIX
#: Run tags: the champion the run was compared with (its version, or ``none``) and, when it could not be
#: evaluated, why.
TAG_CHAMPION_VERSION = "pe.champion_version"
TAG_CHAMPION_UNAVAILABLE = "pe.champion_unavailable"
NO_CHAMPION = "none"


class EvaluationError(PEError):
    """A model version (or its training run's held-out evaluation) cannot be found in the registry."""

    stage = "models"


class StaleEvaluationError(PEError):
    """The champion a version was evaluated against is no longer (or cannot be shown to be) the champion."""

    stage = "models"


# --------------------------------------------------------------------------------------------- logging
def log_gate(run: TrackedRun, gate: GateResult) -> None:
    """Log the gate into ``run``: ``gate.json`` (every check and the settings) and ``gate_*`` metrics."""
    run.log_metrics(gate.metrics())
    run.log_dict(gate.to_dict(), GATE_ARTIFACT)


def log_split(run: TrackedRun, splits: dict[str, list[str]]) -> None:
    """Log the video ids of each split (``split.json``) into ``run``, so a later candidate can tell which of its
    test videos this model trained on."""
    run.log_dict({k: sorted(v) for k, v in splits.items()}, SPLIT_ARTIFACT)


def evaluation_metrics(candidate: EvalReport, champion: EvalReport | None) -> dict[str, float]:
    """The MLflow metrics of a held-out evaluation: the candidate's and its constant baseline's (``test_*``) and,
    when there was a champion to evaluate, the champion's on the same videos (``champion_test_*``, no baseline)."""
    out = candidate.as_flat_dict(TEST_PREFIX)
    if champion is not None:
        out.update({k: v for k, v in champion.as_flat_dict(CHAMPION_PREFIX).items()
                    if not k.startswith(CHAMPION_PREFIX + "baseline_")})
    return out


def evaluation_tags(champion_version: str | None, champion_unavailable: str | None = None) -> dict[str, str]:
    """The run tags saying which champion a training run was compared with (read back by :func:`evaluation_from_run`)."""
    tags = {TAG_CHAMPION_VERSION: NO_CHAMPION if champion_version is None else str(champion_version)}
    if champion_unavailable is not None:
        tags[TAG_CHAMPION_UNAVAILABLE] = champion_unavailable
    return tags


# --------------------------------------------------------------------------------------------- reading back
@dataclass
class Evaluation:
    """What a version's training run logged about its held-out evaluation.

    ``champion_version``: the champion it was compared with (None: there was none; also None when
    ``champion_recorded`` is False, a run from before the tag existed); ``champion``: that champion's report on
    the test videos it did not train on, None when there was none or it could not be evaluated
    (``champion_unavailable``); ``gate``: the promotion gate the run logged (None for runs from before it);
    ``current_champion``: the version holding the alias now."""

    model_name: str
    version: str
    run_id: str
    alias: str
    candidate: EvalReport
    champion: EvalReport | None
    champion_version: str | None
    champion_unavailable: str | None
    champion_recorded: bool
    current_champion: str | None
    promotion: str | None
    metrics: dict[str, float]
    gate: GateResult | None = None

    @property
    def stale(self) -> bool:
        """True when the alias is no longer where it was at evaluation (or that cannot be told)."""
        return not self.champion_recorded or self.current_champion != self.champion_version

    def stale_reason(self) -> str:
        if not self.champion_recorded:
            return (f"the run of v{self.version} does not record which @{self.alias} it was compared with "
                    f"(tag {TAG_CHAMPION_VERSION}); evaluate again with `pe train`")
        return (f"@{self.alias} has moved since v{self.version} was evaluated (then: "
                f"{_version_text(self.champion_version)}, now: {_version_text(self.current_champion)}), so the "
                "comparison is stale; evaluate again with `pe train`")


def _version_text(version: str | None) -> str:
    return "no version" if version is None else f"v{version}"


def evaluation_from_run(*, model_name: str, version: str, alias: str, run_id: str, metrics: dict[str, float],
                        tags: dict[str, str], promotion: str | None, current_champion: str | None,
                        logged_gate: dict[str, Any] | None) -> Evaluation:
    """The :class:`Evaluation` in what the training run ``run_id`` of ``version`` logged (its metrics, tags and
    ``gate.json``), with the version holding ``alias`` now.

    Raises :class:`EvaluationError` when the run has no test metrics or its gate cannot be read."""
    try:
        candidate = EvalReport.from_flat_dict(metrics, TEST_PREFIX)
    except KeyError as e:
        raise EvaluationError("no_test_metrics", f"{model_name} v{version} has no logged test metrics in run {run_id} "
                              f"({e.args[0]}); evaluate it with `pe train`") from e
    recorded = TAG_CHAMPION_VERSION in tags
    champ_v = tags.get(TAG_CHAMPION_VERSION)
    champ_v = None if champ_v in (None, NO_CHAMPION) else champ_v
    unavailable = tags.get(TAG_CHAMPION_UNAVAILABLE)
    try:
        champion = EvalReport.from_flat_dict(metrics, CHAMPION_PREFIX, baseline=candidate)
    except KeyError:
        champion = None
        if champ_v is not None and unavailable is None:
            unavailable = "its metrics on the test videos were not logged"
    try:
        gate = None if logged_gate is None else GateResult.from_dict(logged_gate)
    except (KeyError, TypeError) as e:
        raise EvaluationError("gate_unreadable", f"the {GATE_ARTIFACT} of run {run_id} cannot be read: {e}") from e
    return Evaluation(model_name=model_name, version=version, run_id=run_id, alias=alias, candidate=candidate,
                      champion=champion, champion_version=champ_v, champion_unavailable=unavailable,
                      champion_recorded=recorded, current_champion=current_champion, promotion=promotion,
                      metrics=metrics, gate=gate)
