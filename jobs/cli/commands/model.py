"""``pe`` commands for the engagement model: train, and models (list / evaluate / promote) in MLflow."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from jobs.cli.commands.context import no_registry, state

if TYPE_CHECKING:  # MLflow loads only for the commands that use it
    from models.registry import ModelRegistry


def train(
    ctx: typer.Context,
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Maximum epochs (default: train.epochs)."),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="mobilenet_v2 | xception | tiny (default: model.backbone)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Train on at most N labelled videos."),
    features_only: bool = typer.Option(False, "--features-only",
                                       help="Only build the training set (backbone features in training_clips)."),
    no_promote: bool = typer.Option(False, "--no-promote",
                                    help="Evaluate and register, but leave @champion alone (pe.promotion=pending): "
                                    "`pe models promote` decides."),
    sweep: Optional[Path] = typer.Option(None, "--sweep", metavar="FILE",
                                         help="YAML grid/random search of model.*/train.* settings: one nested "
                                         "MLflow run per trial; the best by validation loss is trained and gated."),
) -> None:
    """Train the engagement model, log it to MLflow as pe-engagement; @champion moves only if it is better."""
    started = time.perf_counter()
    from jobs.spark import get_spark
    from jobs.storage.lake import Lake
    from jobs.training.train import run_training, train_overrides
    from models.sweep import load_sweep

    cfg = state(ctx).cfg_with(train_overrides(epochs=epochs, backbone=backbone, limit=limit))
    spec = load_sweep(sweep) if sweep is not None else None  # a bad file fails before Spark starts
    run_training(cfg, Lake.from_config(cfg, get_spark(cfg, app_name="pe-train")), echo=typer.echo,
                 started=started, features_only=features_only, promote=not no_promote, sweep=spec)


# --------------------------------------------------------------------------------------------------- models
models_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

VERSION_HELP = "Model version (default: the newest registered)."


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context) -> None:
    """List the registered engagement model versions with aliases and test metrics (`pe models evaluate` and
    `pe models promote` act on one version)."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = state(ctx).cfg
    uri = cfg.tracking_uri
    if no_registry(uri):
        typer.echo(f"no model registry at {uri}; run `pe train`")
        return
    versions = cfg.model_registry().versions()
    if not versions:
        typer.echo(f"no versions of {cfg.mlflow.model_name} in {uri}; run `pe train`")
        return
    typer.echo(f"{cfg.mlflow.model_name} ({uri})")
    typer.echo(f"{'version':>7}  {'aliases':<12} {'created (UTC)':<19}  {'promotion':<9}  {'spearman':>8} "
               f"{'r2':>7} {'mae':>6} | {'const r2':>8} {'const mae':>9} | {'truth ρ':>7}  run")

    def num(m: dict, key: str, width: int, fmt: str = ".3f") -> str:
        return f"{m[key]:>{width}{fmt}}" if key in m else f"{'-':>{width}}"

    for v in versions:
        m = v.metrics
        typer.echo(f"{v.version:>7}  {','.join(v.aliases) or '-':<12} {v.created:<19}  {v.promotion or '-':<9}  "
                   f"{num(m, 'test_spearman', 8)} {num(m, 'test_r2', 7)} {num(m, 'test_mae', 6)} | "
                   f"{num(m, 'test_baseline_r2', 8)} {num(m, 'test_baseline_mae', 9)} | "
                   f"{num(m, 'test_truth_spearman', 7)}  {v.run_id}")


def _registry(ctx: typer.Context) -> ModelRegistry:
    """The config's model registry; EvaluationError when its store does not exist yet (nothing trained)."""
    from models.logged_evaluation import EvaluationError

    registry = state(ctx).cfg.model_registry()
    if no_registry(registry.tracking_uri):
        raise EvaluationError("no_registry", f"no model registry at {registry.tracking_uri}; run `pe train`")
    return registry


@models_app.command("evaluate")
def models_evaluate(
    ctx: typer.Context,
    version: Optional[int] = typer.Option(None, "--version", min=1, help=VERSION_HELP),
) -> None:
    """A version's held-out test metrics (logged by `pe train`) beside the constant baseline and the champion's
    on the same test videos, and the promotion gate with its intervals. Exits 1 without logged test metrics."""
    from models.promotion_text import evaluation_lines

    ev = _registry(ctx).evaluation(None if version is None else str(version))
    for line in evaluation_lines(ev):
        typer.echo(line)


@models_app.command("promote")
def models_promote(
    ctx: typer.Context,
    version: Optional[int] = typer.Option(None, "--version", min=1, help=VERSION_HELP),
    force: bool = typer.Option(False, "--force", help="Move @champion to the version whatever its gate says; the "
                               "version and its run are tagged pe.promotion=forced and pe.warning in MLflow."),
) -> None:
    """Move @champion to a version evaluated by `pe train --no-promote` if the promotion gate its training run
    logged passed (the same gate as `pe train`). Exits 1 if @champion has moved since the evaluation."""
    cfg = state(ctx).cfg
    ev, decision = _registry(ctx).promote_evaluated(None if version is None else str(version), force=force)
    if decision.status == "forced":
        typer.echo(f"warning: {decision.reason}", err=True)
    held = f"v{ev.version}" if decision.promoted else (f"v{ev.current_champion}" if ev.current_champion else "no version")
    typer.echo(f"{cfg.mlflow.model_name} v{ev.version}: {decision.status}; @{cfg.mlflow.alias} "
               f"{'holds' if decision.promoted else 'stays with'} {held}: {decision.reason}")

