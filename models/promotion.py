"""Promotion of the engagement model to ``@champion``, from the evidence its training run logged.

A new version takes ``@champion`` only when the promotion gate (:mod:`models.gate`) passes on its own held-out
test videos: enough of them, R² > 0, a paired bootstrap interval against the constant baseline above 0 and,
with a champion, one against the champion's predictions on the same videos (those it did not train on). The
training run logs::

    gate.json, gate_* metrics      the gate (every check, its interval and threshold, the settings)
    split.json                     the video ids of each split (a later candidate leaves out what this one saw)
    test_*, champion_test_*        held-out metrics of the candidate (with the constant) and of the champion
    tags pe.champion_version, pe.champion_unavailable     which champion it was compared with

and the version and run are tagged with the decision (``pe.promotion``: promoted | kept | rejected | pending |
forced, ``pe.promotion_reason``). ``pe train --no-promote`` leaves it ``pending``; :func:`promote_evaluated`
(``pe models promote``) applies the logged gate later, provided the champion it was compared with still holds
the alias (otherwise the comparison is stale and nothing moves), or with ``force`` moves the alias whatever the
gate said, with a ``pe.warning`` tag. :func:`explain_no_champion` tells a user without a champion what the last
training measured and what to do.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from models.evaluate import EvalReport
from models.gate import GateResult
from models.registry import NoChampionError, champion_version
from models.tracking import TrackedRun, mlflow_client, run_json
from pe_udfs.errors import PEError

__all__ = [
    "PromotionDecision", "Evaluation", "EvaluationError", "StaleEvaluationError", "ModelVersionInfo",
    "champion_explained", "log_gate", "log_split", "training_videos", "apply_gate", "gate_lines", "evaluation_metrics", "evaluation_tags",
    "defer_promotion", "latest_version", "evaluation_of", "promote_evaluated", "explain_no_champion", "list_models",
    "GATE_ARTIFACT", "SPLIT_ARTIFACT", "PENDING", "FORCED",
]

GATE_ARTIFACT = "gate.json"
SPLIT_ARTIFACT = "split.json"

#: MLflow metric prefixes of a training run's evaluation: the candidate (with the constant baseline) and the
#: champion on the test videos it did not train on (without baseline keys: the baseline is the candidate's).
TEST_PREFIX = "test_"
CHAMPION_PREFIX = "champion_" + TEST_PREFIX
#: Tags of the model version and run: the promotion decision; run tags: the champion the run was compared with
#: (its version, or ``none``) and, when it could not be evaluated, why.
TAG_PROMOTION = "pe.promotion"
TAG_PROMOTION_REASON = "pe.promotion_reason"
TAG_CHAMPION_VERSION = "pe.champion_version"
TAG_CHAMPION_UNAVAILABLE = "pe.champion_unavailable"
PENDING = "pending"
FORCED = "forced"
#: Tag of a version (and its run) promoted by hand against its gate: what the gate said.
TAG_WARNING = "pe.warning"
NO_CHAMPION = "none"


class EvaluationError(PEError):
    """A model version (or its training run's held-out evaluation) cannot be found in the registry."""

    stage = "models"


class StaleEvaluationError(PEError):
    """The champion a version was evaluated against is no longer (or cannot be shown to be) the champion."""

    stage = "models"


# --------------------------------------------------------------------------------------------- promotion
@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    status: str  # "promoted" | "kept" (champion stays) | "rejected" (fails the gate's absolute checks) | "pending"
    reason: str
    gate: GateResult | None = None


def log_gate(run: TrackedRun, gate: GateResult) -> None:
    """Log the gate into ``run``: ``gate.json`` (every check and the settings) and ``gate_*`` metrics."""
    run.log_metrics(gate.metrics())
    run.log_dict(gate.to_dict(), GATE_ARTIFACT)


def log_split(run: TrackedRun, splits: dict[str, list[str]]) -> None:
    """Log the video ids of each split (``split.json``) into ``run``, so a later candidate can tell which of its
    test videos this model trained on."""
    run.log_dict({k: sorted(v) for k, v in splits.items()}, SPLIT_ARTIFACT)


def training_videos(tracking_uri: str, run_id: str) -> set[str] | None:
    """The videos the model of ``run_id`` trained on (its train and validation splits), or None when its run
    did not log ``split.json``."""
    split = run_json(tracking_uri, run_id, SPLIT_ARTIFACT)
    return None if split is None else set(split.get("train", [])) | set(split.get("val", []))


def apply_gate(*, tracking_uri: str, model_name: str, version: str, gate: GateResult, alias: str = "champion",
               run_id: str | None = None) -> PromotionDecision:
    """Move ``alias`` to ``version`` when ``gate`` passed; tag the version (and ``run_id``) with the decision."""
    decision = PromotionDecision(gate.promoted, gate.status, gate.reason, gate)
    client = mlflow_client(tracking_uri)
    if decision.promoted:
        client.set_registered_model_alias(model_name, alias, str(version))
    _tag_decision(client, model_name, version, run_id, decision)
    return decision


def _tag_decision(client, model_name: str, version: str, run_id: str | None, decision: PromotionDecision) -> None:
    for key, value in ((TAG_PROMOTION, decision.status), (TAG_PROMOTION_REASON, decision.reason[:5000])):
        client.set_model_version_tag(model_name, str(version), key, value)
        if run_id:
            client.set_tag(run_id, key, value)


def gate_lines(gate: GateResult) -> list[str]:
    """Console lines: each check of the gate with its number, interval and threshold, then the decision."""
    conf = f"{gate.settings.get('confidence', 0.95):.0%}"
    lines = [f"promotion gate ({gate.metric}, paired bootstrap {conf} intervals, "
             f"{gate.settings.get('bootstrap', '?')} resamples):"]
    for c in gate.checks:
        mark = "pass" if c.passed else "FAIL"
        if c.name == "test_videos":
            text = f"{int(c.value)} test videos (need ≥ {int(c.threshold)})"
        elif c.name == "r2":
            text = f"R² on test {c.value:.3f} (need > 0)"
        elif c.low is None:
            text = f"{c.name.replace('_', ' ')}: no comparison ({c.note or 'see the reason'})"
        else:
            versus = "constant" if c.name == "vs_constant" else f"champion v{gate.champion_version}"
            text = (f"{gate.metric} − {versus}: {c.value:+.3f}, {conf} CI [{c.low:+.3f}, {c.high:+.3f}] on {c.n} "
                    f"videos (need the interval above {c.threshold:+.3f})")
            if c.note:
                text += f"; {c.note}"
        lines.append(f"  {mark}  {text}")
    lines.append(f"  → {gate.status}: {gate.reason}")
    return lines


# --------------------------------------------------------------------------------------------- deferred promotion
def evaluation_metrics(candidate: EvalReport, champion: EvalReport | None) -> dict[str, float]:
    """The MLflow metrics of a held-out evaluation: the candidate's and its constant baseline's (``test_*``) and,
    when there was a champion to evaluate, the champion's on the same videos (``champion_test_*``, no baseline)."""
    out = candidate.as_flat_dict(TEST_PREFIX)
    if champion is not None:
        out.update({k: v for k, v in champion.as_flat_dict(CHAMPION_PREFIX).items()
                    if not k.startswith(CHAMPION_PREFIX + "baseline_")})
    return out


def evaluation_tags(champion_version: str | None, champion_unavailable: str | None = None) -> dict[str, str]:
    """The run tags saying which champion a training run was compared with (read back by :func:`evaluation_of`)."""
    tags = {TAG_CHAMPION_VERSION: NO_CHAMPION if champion_version is None else str(champion_version)}
    if champion_unavailable is not None:
        tags[TAG_CHAMPION_UNAVAILABLE] = champion_unavailable
    return tags


def defer_promotion(*, tracking_uri: str, model_name: str, version: str, gate: GateResult | None = None,
                    run_id: str | None = None) -> PromotionDecision:
    """Leave ``@champion`` alone and tag the version (and ``run_id``) ``pe.promotion=pending``: the decision is
    :func:`promote_evaluated`'s (``pe models promote``), from the gate the run logged."""
    decision = PromotionDecision(False, PENDING, "promotion deferred to `pe models promote`", gate)
    _tag_decision(mlflow_client(tracking_uri), model_name, version, run_id, decision)
    return decision


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

    def describe(self) -> list[str]:
        """Console lines: candidate, constant baseline and champion on the held-out split, and the logged gate."""
        c = self.candidate
        lines = [f"{self.model_name} v{self.version} (run {self.run_id}): held-out test split, {c.n} videos; "
                 f"promotion: {self.promotion or '-'}",
                 f"{'':16}{'spearman':>10}{'r2':>10}{'mae':>10}"]

        def row(name: str, m, note: str = "") -> str:
            return f"{name:16}{m.spearman:>10.3f}{m.r2:>10.3f}{m.mae:>10.3f}{('   ' + note) if note else ''}"

        lines.append(row("candidate", c.model))
        lines.append(row("constant", c.baseline, f"(predicts the training mean, {c.baseline_value:.3f})"))
        if self.champion is not None:
            name = f"champion v{self.champion_version}" if self.champion_version else "champion"
            lines.append(row(name, self.champion.model, f"(same test videos it did not train on: {self.champion.n})"))
        elif self.champion_unavailable is not None:
            lines.append(f"champion v{self.champion_version}: could not be evaluated ({self.champion_unavailable})")
        elif self.champion_recorded and self.champion_version is not None:
            lines.append(f"champion v{self.champion_version}: no metrics logged")
        elif self.champion_recorded:
            lines.append(f"champion: none when v{self.version} was evaluated")
        else:
            lines.append("champion: not recorded (run from before `pe train` tagged it)")
        truth = self.metrics.get(TEST_PREFIX + "truth_spearman")
        if truth is not None:
            lines.append(f"spearman vs ground-truth engagement: candidate {truth:.3f}, constant 0.000")
        lines += gate_lines(self.gate) if self.gate is not None else [
            "promotion gate: not logged (trained before the gate existed); evaluate again with `pe train`"]
        if self.current_champion == self.version:
            lines.append(f"v{self.version} holds @{self.alias}")
        elif self.stale:
            lines.append(f"note: {self.stale_reason()}")
        return lines


def _version_text(version: str | None) -> str:
    return "no version" if version is None else f"v{version}"


def latest_version(tracking_uri: str, model_name: str) -> str | None:
    """The newest registered version of ``model_name`` (highest number), or None."""
    from mlflow.exceptions import MlflowException

    try:
        versions = mlflow_client(tracking_uri).search_model_versions(f"name='{model_name}'")
    except MlflowException:
        return None
    return str(max(int(v.version) for v in versions)) if versions else None


def evaluation_of(tracking_uri: str, model_name: str, version: str | None = None, *,
                  alias: str = "champion") -> Evaluation:
    """The held-out evaluation logged by the training run of ``version`` (default: the newest version).

    Raises :class:`EvaluationError` when the version, its run or its test metrics are missing."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(tracking_uri)
    if version is None:
        version = latest_version(tracking_uri, model_name)
        if version is None:
            raise EvaluationError("no_versions", f"no versions of {model_name} in {tracking_uri}; run `pe train`")
    version = str(version)
    try:
        mv = client.get_model_version(model_name, version)
    except MlflowException as e:
        raise EvaluationError("no_version", f"no version {version} of {model_name} in {tracking_uri}") from e
    if not mv.run_id:
        raise EvaluationError("no_run", f"{model_name} v{version} has no training run, so no logged test metrics")
    try:
        run = client.get_run(mv.run_id)
    except MlflowException as e:
        raise EvaluationError("run_unreadable", f"the training run {mv.run_id} of {model_name} v{version} cannot be read: "
                              f"{e.message}") from e
    metrics = dict(run.data.metrics)
    tags = dict(run.data.tags)
    try:
        candidate = EvalReport.from_flat_dict(metrics, TEST_PREFIX)
    except KeyError as e:
        raise EvaluationError("no_test_metrics", f"{model_name} v{version} has no logged test metrics in run {mv.run_id} "
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
    current = champion_version(tracking_uri, model_name, alias)
    logged_gate = run_json(tracking_uri, mv.run_id, GATE_ARTIFACT)
    try:
        gate = None if logged_gate is None else GateResult.from_dict(logged_gate)
    except (KeyError, TypeError) as e:
        raise EvaluationError("gate_unreadable", f"the {GATE_ARTIFACT} of run {mv.run_id} cannot be read: {e}") from e
    return Evaluation(model_name=model_name, version=version, run_id=mv.run_id, alias=alias, candidate=candidate,
                      champion=champion, champion_version=champ_v, champion_unavailable=unavailable,
                      champion_recorded=recorded, current_champion=None if current is None else str(current.version),
                      promotion=(mv.tags or {}).get(TAG_PROMOTION), metrics=metrics, gate=gate)


def promote_evaluated(*, tracking_uri: str, model_name: str, version: str | None = None, alias: str = "champion",
                      force: bool = False) -> tuple[Evaluation, PromotionDecision]:
    """Apply the promotion gate that the training run of ``version`` (default: the newest) logged, as ``pe train``
    would have (:func:`apply_gate`: same alias move, same tags).

    A version that already holds ``alias`` is left as it is (decision ``promoted``, nothing changed). Raises
    :class:`StaleEvaluationError` when the alias has moved since the evaluation (or the run does not say which
    champion it was compared with), :class:`EvaluationError` when the evaluation or its gate is missing.

    ``force``: move the alias whatever the gate says (a person's decision): status ``forced``, and the version
    and its run get the tag ``pe.warning`` saying what the gate found (or that there was none)."""
    ev = evaluation_of(tracking_uri, model_name, version, alias=alias)
    if ev.current_champion == ev.version:
        return ev, PromotionDecision(True, "promoted", f"v{ev.version} already holds @{alias}; nothing to do", ev.gate)
    if force:
        found = (f"the gate said {ev.gate.status}: {ev.gate.reason}" if ev.gate is not None
                 else "its run logged no promotion gate")
        warning = f"promoted to @{alias} by hand with --force although {found}"
        decision = PromotionDecision(True, FORCED, warning, ev.gate)
        client = mlflow_client(tracking_uri)
        client.set_registered_model_alias(model_name, alias, ev.version)
        _tag_decision(client, model_name, ev.version, ev.run_id, decision)
        client.set_model_version_tag(model_name, ev.version, TAG_WARNING, warning[:5000])
        client.set_tag(ev.run_id, TAG_WARNING, warning[:5000])
        return ev, decision
    if ev.stale:
        raise StaleEvaluationError("stale", ev.stale_reason())
    if ev.gate is None:
        raise EvaluationError("no_gate", f"the run of {model_name} v{ev.version} logged no promotion gate ({GATE_ARTIFACT}); "
                              "evaluate again with `pe train`")
    return ev, apply_gate(tracking_uri=tracking_uri, model_name=model_name, version=ev.version, gate=ev.gate,
                          alias=alias, run_id=ev.run_id)


@contextmanager
def champion_explained(tracking_uri: str, model_name: str, alias: str = "champion", *,
                       hint: str = "") -> Iterator[None]:
    """Re-raise a :class:`NoChampionError` of the block with :func:`explain_no_champion`'s message (+ ``hint``)."""
    try:
        yield
    except NoChampionError as e:
        raise NoChampionError(e.reason, explain_no_champion(tracking_uri, model_name, alias) + hint) from e


def explain_no_champion(tracking_uri: str, model_name: str, alias: str = "champion") -> str:
    """Why no version holds ``alias`` and what to do: the newest version's gate (its checks against the
    thresholds), else that nothing was trained yet."""
    try:
        ev = evaluation_of(tracking_uri, model_name, alias=alias)
    except EvaluationError:
        return (f"no version of model '{model_name}' has the alias @{alias} in {tracking_uri}: nothing has been "
                "trained yet; run `pe train` (or `make demo`)")
    head = f"no version of model '{model_name}' has the alias @{alias}: "
    if ev.promotion == PENDING:
        return (head + f"the newest, v{ev.version}, waits for `pe models promote --version {ev.version}` "
                "(trained with --no-promote)")
    if ev.gate is None:
        return head + f"the newest, v{ev.version}, was trained before the promotion gate; run `pe train` again"
    checks = "\n".join(gate_lines(ev.gate))
    size = int(ev.gate.settings.get("min_test_videos", 0))
    return (head + f"the last training (v{ev.version}, run {ev.run_id}) did not pass the promotion gate.\n{checks}\n"
            f"What to do: label more videos (the gate needs at least {size} in the held-out test split, and an "
            "interval that excludes 0 needs a clear effect on that many); try other training settings (a sweep); "
            "or, knowing the risk, promote it anyway: "
            f"`pe models promote --version {ev.version} --force` (the warning is logged to MLflow).")


# --------------------------------------------------------------------------------------------- listing
@dataclass
class ModelVersionInfo:
    version: str
    aliases: list[str]
    run_id: str
    created: str
    status: str
    promotion: str | None
    metrics: dict[str, float]


def list_models(*, tracking_uri: str, model_name: str = "pe-engagement") -> list[ModelVersionInfo]:
    """All versions of ``model_name`` (newest first) with aliases, promotion tag and the run's test metrics."""
    from datetime import datetime, timezone

    from mlflow.exceptions import MlflowException

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
