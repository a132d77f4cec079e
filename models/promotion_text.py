"""Console text about promotion: the gate's checks, a version's logged evaluation, and why there is no champion.

Lines for the CLI and the jobs to print; nothing here decides or writes (:mod:`models.promotion`,
:mod:`models.logged_evaluation`).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from models.evaluate import Metrics
from models.gate import GateResult
from models.logged_evaluation import TEST_PREFIX, Evaluation, EvaluationError
from models.promotion import PENDING
from models.registry import ModelRegistry
from models.stored_model import NoChampionError

__all__ = ["gate_lines", "evaluation_lines", "explain_no_champion", "champion_explained"]


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


def evaluation_lines(ev: Evaluation) -> list[str]:
    """Console lines: candidate, constant baseline and champion on the held-out split, and the logged gate."""
    c = ev.candidate
    lines = [f"{ev.model_name} v{ev.version} (run {ev.run_id}): held-out test split, {c.n} videos; "
             f"promotion: {ev.promotion or '-'}",
             f"{'':16}{'spearman':>10}{'r2':>10}{'mae':>10}"]

    def row(name: str, m: Metrics, note: str = "") -> str:
        return f"{name:16}{m.spearman:>10.3f}{m.r2:>10.3f}{m.mae:>10.3f}{('   ' + note) if note else ''}"

    lines.append(row("candidate", c.model))
    lines.append(row("constant", c.baseline, f"(predicts the training mean, {c.baseline_value:.3f})"))
    if ev.champion is not None:
        name = f"champion v{ev.champion_version}" if ev.champion_version else "champion"
        lines.append(row(name, ev.champion.model, f"(same test videos it did not train on: {ev.champion.n})"))
    elif ev.champion_unavailable is not None:
        lines.append(f"champion v{ev.champion_version}: could not be evaluated ({ev.champion_unavailable})")
    elif ev.champion_recorded and ev.champion_version is not None:
        lines.append(f"champion v{ev.champion_version}: no metrics logged")
    elif ev.champion_recorded:
        lines.append(f"champion: none when v{ev.version} was evaluated")
    else:
        lines.append("champion: not recorded (run from before `pe train` tagged it)")
    truth = ev.metrics.get(TEST_PREFIX + "truth_spearman")
    if truth is not None:
        lines.append(f"spearman vs ground-truth engagement: candidate {truth:.3f}, constant 0.000")
    lines += gate_lines(ev.gate) if ev.gate is not None else [
        "promotion gate: not logged (trained before the gate existed); evaluate again with `pe train`"]
    if ev.current_champion == ev.version:
        lines.append(f"v{ev.version} holds @{ev.alias}")
    elif ev.stale:
        lines.append(f"note: {ev.stale_reason()}")
    return lines


def explain_no_champion(registry: ModelRegistry) -> str:
    """Why no version holds the registry's alias and what to do: the newest version's gate (its checks against
    the thresholds), else that nothing was trained yet."""
    try:
        ev = registry.evaluation()
    except EvaluationError:
        return (f"no version of model '{registry.model_name}' has the alias @{registry.alias} in "
                f"{registry.tracking_uri}: nothing has been trained yet; run `pe train` (or `make demo`)")
    head = f"no version of model '{registry.model_name}' has the alias @{registry.alias}: "
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


@contextmanager
def champion_explained(registry: ModelRegistry, *, hint: str = "") -> Iterator[None]:
    """Re-raise a :class:`NoChampionError` of the block with :func:`explain_no_champion`'s message (+ ``hint``)."""
    try:
        yield
    except NoChampionError as e:
        raise NoChampionError(e.reason, explain_no_champion(registry) + hint) from e
