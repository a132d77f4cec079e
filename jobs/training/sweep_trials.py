"""``pe train --sweep FILE``: try the sweep's settings on the cached features, keep the best by validation.

    training_clips (train + val rows, collected to the driver once: one small float16 map per video)
      ─► for each trial of the sweep file (models.sweep): a fresh head fitted in memory with the trial's
         model.*/train.* settings, early stopping on the validation split → one nested MLflow run
         (params: the trial's overrides; metrics: best_val_loss, val_spearman, best_epoch, epochs_run)
      ─► the trial with the lowest validation loss (never the test split) ─► its config, which ``pe train``
         then trains, evaluates and puts through the promotion gate as usual, as one more nested run

Trials run one after another on the driver (each a few seconds to minutes of CPU per hundred videos); they are
not spread over Spark tasks.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from jobs.config import PEConfig
from models.tracking import TrackedRun, tracked_run

__all__ = ["TrialResult", "run_sweep_trials"]


@dataclass(frozen=True)
class TrialResult:
    index: int
    overrides: dict[str, dict[str, Any]]
    best_val_loss: float
    val_spearman: float
    best_epoch: int
    epochs_run: int
    seconds: float
    run_id: str


def _flat(overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{section}.{k}": v for section, values in overrides.items() for k, v in values.items()}


def trial_config(cfg: PEConfig, overrides: dict[str, dict[str, Any]]) -> PEConfig:
    """``cfg`` with one trial's model.*/train.* settings, validated like a config file (ValueError if not)."""
    data = cfg.model_dump()
    for section, values in overrides.items():
        data[section] = {**data[section], **values}
    return type(cfg).model_validate(data)


def run_sweep_trials(cfg: PEConfig, spec, usable, groups: dict[str, str], *, sweep_run: TrackedRun,
                     echo: Callable[[str], None] = print) -> tuple[PEConfig, list[TrialResult]]:
    """Fit every trial of ``spec`` (:class:`models.sweep.SweepSpec`) on the ``usable`` training_clips rows
    (Spark DataFrame with split, video_id, label, feature_shape, features), each in an MLflow run nested under
    ``sweep_run`` (which gets the best trial's settings); return the best trial's config (lowest validation loss)
    and all results."""
    import torch
    from pyspark.sql import functions as F

    from models.evaluate import regression_metrics
    from models.labels import is_within_influencer, within_groups
    from models.sweep import fit_in_memory
    from models.training import InMemoryBatches, predict_head
    from pe_udfs.saliency import resolve_device

    cols = ["video_id", "label", "feature_shape", "features"]
    rows = {s: usable.filter(F.col("split") == s).select(*cols).orderBy("video_id").toPandas().to_dict("records")
            for s in ("train", "val")}
    channels = int(rows["train"][0]["feature_shape"][1])
    device = resolve_device(cfg.device)
    trials = spec.trials_overrides()
    try:
        configs = [trial_config(cfg, t) for t in trials]
    except ValueError as e:
        from models.sweep import SweepError

        raise SweepError("bad_trial", f"a sweep trial is not a valid config: {e}") from None
    echo(f"sweep: {len(trials)} trials ({spec.method}), {len(rows['train'])} training and {len(rows['val'])} "
         "validation videos, chosen by validation loss")
    results: list[TrialResult] = []
    for i, (overrides, tcfg) in enumerate(zip(trials, configs)):
        within = is_within_influencer(tcfg.train.label)
        t0 = time.perf_counter()
        with tracked_run(sweep_run.tracking_uri, sweep_run.experiment_id, run_name=f"trial-{i}",
                         parent_run_id=sweep_run.run_id, tags={"pe.job": "train-sweep-trial"}) as run:
            run.log_params({**_flat(overrides), "trial": i})
            head, fit = fit_in_memory(rows["train"], rows["val"], model=tcfg.model, train=tcfg.train,
                                      in_channels=channels, val_groups=groups if within else None, device=device)
            ids, preds, labels = predict_head(head, InMemoryBatches(rows["val"], batch_size=tcfg.train.batch_size),
                                              device=device)
            if within:
                preds = within_groups(preds, [groups[v] for v in ids])
            rho = regression_metrics(labels, preds).spearman
            run.log_metrics({"best_val_loss": fit.best_val_loss, "val_spearman": rho,
                             "best_epoch": fit.best_epoch, "epochs_run": fit.epochs_run})
            results.append(TrialResult(i, overrides, fit.best_val_loss, rho, fit.best_epoch, fit.epochs_run,
                                       time.perf_counter() - t0, run.run_id))
        del head
        if device.type == "cuda":
            torch.cuda.empty_cache()
        echo(f"  trial {i:>2}  val loss {fit.best_val_loss:.4f}  val spearman {rho:+.3f}  epoch {fit.best_epoch}/"
             f"{fit.epochs_run}  {_flat(overrides)}")
    best = min(results, key=lambda r: (r.best_val_loss if np.isfinite(r.best_val_loss) else np.inf, r.index))
    sweep_run.log_params({f"best.{k}": v for k, v in _flat(best.overrides).items()})
    sweep_run.log_metrics({"best_trial": best.index, "best_val_loss": best.best_val_loss})
    echo(f"sweep: best trial {best.index} (val loss {best.best_val_loss:.4f}): {_flat(best.overrides)}; training it "
         "as the candidate")
    return configs[best.index], results
