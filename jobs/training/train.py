"""Train the engagement model: ``pe train`` or ``spark-submit jobs/submit.py train --config conf/local.yaml``.

    training set  labels, influencer split and cached backbone features (jobs.training.training_set.build_training_set)
    (sweep)    ``--sweep FILE``: the file's trials fitted on the cached features, one nested MLflow run each; the
               best by validation loss continues below (jobs.training.sweep_trials)
    train      training_clips → petastorm → PyTorch: the 3-D head on cached features, regularised as configured
               (models.augment: random windows, feature-grid flips, feature dropout; weight decay), early stopping
               on the validation loss (at least train.min_val_videos validation videos, or the job stops; compared
               within influencer for a residualised label, as the test split is)
    evaluate   test split: Spearman, R², MAE of the model AND of a constant (train-mean) prediction (for a label
               residualised on influencers, predictions compared within influencer, as the label); Spearman
               against the ground-truth true_engagement of sample_truth when that table exists; the current
               champion's predictions on the same test videos (re-evaluated, never its logged numbers)
    register   one MLflow run (params, metrics, Delta version of training_clips, the split's video ids, the
               promotion gate, model), registered as pe-engagement; @champion moves only if the gate passes
               (models.gate: enough test videos, R² > 0, paired bootstrap intervals above 0 against the constant
               and against the champion on the test videos it did not train on). ``--no-promote``: the version
               is tagged pe.promotion=pending and ``pe models promote`` applies the logged gate later
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from jobs.config import PEConfig
from jobs.training.training_set import TrainingDataError, TrainingSet, build_training_set, training_clip

if TYPE_CHECKING:
    from models.gate import GateResult

__all__ = ["TrainResult", "TrainingDataError", "run_training", "training_clip", "train_overrides"]


@dataclass
class TrainResult:
    run_id: str
    model_version: str | None
    promoted: bool
    promotion_status: str
    promotion_reason: str
    gate: "GateResult"
    test: dict[str, float]
    truth_spearman: float | None
    label_stats: dict[str, Any]
    split_counts: dict[str, int]
    skipped: list[dict[str, str]]
    training_clips_version: int
    epochs_run: int
    best_epoch: int
    timings: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- the job
def run_training(cfg: PEConfig, lake, *, echo: Callable[[str], None] = print, started: float | None = None,
                 features_only: bool = False, promote: bool = True, sweep=None) -> TrainResult | None:
    """The whole job on an open :class:`jobs.storage.lake.Lake` (with Spark). See the module docstring.

    ``features_only``: stop once ``training_clips`` holds the features of every labelled video (the retrain
    DAG's "build training set" stage; the next full run reuses them) and return None.

    ``promote=False``: evaluate, log and register as usual but leave @champion alone; the version is tagged
    ``pe.promotion=pending`` for ``pe models promote`` (the retrain DAG's "promote" stage).

    ``sweep`` (:class:`models.sweep.SweepSpec`): first fit each of its trials on the cached features (jobs.training.sweep_trials,
    nested MLflow runs under one sweep run), then train and gate the best by validation loss as below.

    ``started``: ``time.perf_counter()`` when the command began (before the Spark session), so the printed
    total time covers the whole command."""
    import torch

    from models.network import build_engagement_net

    t_start = started if started is not None else time.perf_counter()
    timings: dict[str, float] = {"startup_s": time.perf_counter() - t_start}
    tc = cfg.train
    torch.manual_seed(tc.seed)
    np.random.seed(tc.seed)
    # Build the network first: an unknown backbone or missing weights fails here, before any Spark work.
    net = build_engagement_net(cfg.model)

    ts = build_training_set(cfg, lake, echo=echo, timings=timings, t_start=t_start, features_only=features_only)
    if ts is None:
        return None

    # ---- train on cached features through petastorm (after a sweep: with its best settings by validation)
    if sweep is None:
        return _train_and_register(cfg, lake, net, ts, timings, echo, t_start, promote=promote)
    from jobs.training.sweep_trials import run_sweep_trials
    from models.network import head_from_settings
    from models.tracking import ensure_experiment, tracked_run

    exp_id = ensure_experiment(cfg.tracking_uri, cfg.mlflow.experiment, cfg.artifact_root)
    with tracked_run(cfg.tracking_uri, exp_id, run_name=f"sweep-{cfg.model.backbone}",
                     registry_uri=cfg.mlflow.registry_uri,
                     tags={"pe.job": "train-sweep", "pe.training_clips_version": str(ts.table_version)}) as sweep_run:
        t0 = time.perf_counter()
        best, _ = run_sweep_trials(cfg, sweep, ts.usable, ts.groups, sweep_run=sweep_run, echo=echo)
        timings["sweep_s"] = time.perf_counter() - t0
        net.head, net.settings = head_from_settings(best.model, net.backbone.out_channels), best.model
        return _train_and_register(best, lake, net, ts, timings, echo, t_start, promote=promote,
                                   parent_run_id=sweep_run.run_id)


def _train_and_register(cfg: PEConfig, lake, net, ts: TrainingSet, timings: dict[str, float],
                        echo: Callable[[str], None], t_start: float, *, promote: bool = True,
                        parent_run_id: str | None = None) -> TrainResult:
    """Train the head on ``ts`` through petastorm, evaluate on its test split (with the champion re-scored), log
    one MLflow run (nested under the sweep run ``parent_run_id`` when given), register and apply the gate."""
    import torch
    from pyspark.sql import functions as F

    from models.augment import Augmentation
    from models.evaluate import evaluate_predictions, regression_metrics
    from models.gate import evaluate_gate
    from models.labels import is_within_influencer, within_groups
    from models.loader import feature_batches
    from models.logged_evaluation import evaluation_metrics, evaluation_tags, log_gate, log_split
    from models.promotion_text import gate_lines
    from models.tracking import ensure_experiment, tracked_run
    from models.training import fit_head, predict_head
    from pe_udfs.saliency import resolve_device

    tc = cfg.train
    usable, table_version, label_info, groups = ts.usable, ts.table_version, ts.label_info, ts.groups
    split_counts, skipped, test_uris = ts.split_counts, ts.skipped, ts.test_uris
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(tc.seed)  # the order of batches and dropout
    by_split = {s: usable.filter(F.col("split") == s) for s in ("train", "val", "test")}
    split_ids = {s: [r["video_id"] for r in df.select("video_id").collect()] for s, df in by_split.items()}

    tracking = cfg.tracking_uri
    registry = cfg.model_registry()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    exp_id = ensure_experiment(tracking, cfg.mlflow.experiment, cfg.artifact_root)
    with tracked_run(tracking, exp_id, run_name=f"train-{cfg.model.backbone}", registry_uri=cfg.mlflow.registry_uri,
                     parent_run_id=parent_run_id,
                     tags={"pe.job": "train", "pe.backbone": cfg.model.backbone,
                           "pe.training_clips_version": str(table_version), "pe.label": tc.label}) as run:
        run_id = run.run_id
        run.log_params(_flat_params(cfg, label_info, split_counts, table_version, device))
        log_split(run, split_ids)
        t0 = time.perf_counter()
        with feature_batches(by_split["train"], batch_size=tc.batch_size, shuffle_buffer=tc.shuffle_buffer,
                             workers=tc.loader_workers, seed=tc.seed) as train_loader, \
                feature_batches(by_split["val"], batch_size=tc.batch_size, workers=tc.loader_workers) as val_loader, \
                feature_batches(by_split["test"], batch_size=tc.batch_size, workers=tc.loader_workers) as test_loader:
            def on_epoch(row: dict[str, float]) -> None:
                run.log_metrics({"train_loss": row["train_loss"], "val_loss": row["val_loss"],
                                 "epoch_seconds": row["seconds"]}, step=int(row["epoch"]))
                echo(f"  epoch {int(row['epoch']):>3}  train {row['train_loss']:.4f}  val {row['val_loss']:.4f}  "
                     f"({row['seconds']:.1f} s)")

            fit = fit_head(net.head, train_loader, val_loader, epochs=tc.epochs, patience=tc.patience,
                           learning_rate=tc.learning_rate, weight_decay=tc.weight_decay, device=device,
                           on_epoch=on_epoch, val_groups=groups if is_within_influencer(tc.label) else None,
                           augment=Augmentation.from_settings(tc))
            ids, preds, labels = predict_head(net.head, test_loader, device=device)
            champ = registry.champion()
            evidence = _champion_evidence(cfg, champ, net, test_loader, ids, test_uris, device, echo)
        # which champion this run is compared with: `pe models promote` refuses if the alias moves after
        run.set_tags(evaluation_tags(None if champ is None else str(champ.version),
                                        None if evidence is None else evidence.unavailable))
        raw_preds = preds
        if is_within_influencer(tc.label):  # compared within influencer, like the label (models.labels)
            test_groups = [groups[v] for v in ids]
            preds = within_groups(preds, test_groups)
            if evidence is not None and evidence.predictions is not None:
                evidence = replace(evidence, predictions=within_groups(evidence.predictions, test_groups))
        timings["train_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        net.to("cpu")
        train_mean = by_split["train"].agg(F.avg("label")).first()  # one row: an aggregate without grouping
        assert train_mean is not None
        baseline_value = float(train_mean[0])  # the constant: train mean
        report = evaluate_predictions(labels, preds, baseline_value=baseline_value)
        champ_report = None
        if evidence is not None and evidence.predictions is not None:
            seen = evidence.usable if evidence.usable is not None else np.ones(len(ids), bool)
            if seen.sum() >= 2:
                champ_report = evaluate_predictions(labels[seen], evidence.predictions[seen],
                                                    baseline_value=baseline_value)
        gate = evaluate_gate(labels, preds, baseline_value=baseline_value, settings=tc.gate, champion=evidence)
        truth = _truth(lake, ids)
        truth_rho = label_truth_rho = None
        metrics = evaluation_metrics(report, champ_report)  # test_* and, with a champion, champion_test_*
        if truth is not None:
            truth_rho = regression_metrics(truth, raw_preds).spearman  # the model's own output vs the truth
            label_truth_rho = regression_metrics(truth, labels).spearman
            metrics.update(test_truth_spearman=truth_rho, test_baseline_truth_spearman=0.0,
                           test_label_truth_spearman=label_truth_rho)
        metrics.update(best_epoch=fit.best_epoch, epochs_run=fit.epochs_run, best_val_loss=fit.best_val_loss)
        run.log_metrics(metrics)
        log_gate(run, gate)
        run.log_dict({"video_id": ids, "prediction": raw_preds.tolist(), "prediction_compared": preds.tolist(),
                         "label": labels.tolist(),
                         "true_engagement": None if truth is None else truth.tolist()}, "test_predictions.json")
        run.log_dict({"label": label_info, "skipped": skipped}, "training_data.json")

        within = " (predictions compared within influencer, as the label)" if is_within_influencer(tc.label) else ""
        echo(f"test split ({report.n} videos, influencers not seen in training), label = {tc.label}{within}:")
        echo(report.table())
        if truth is not None:
            echo(f"spearman vs ground-truth engagement: model {truth_rho:.3f}, constant 0.000 "
                 f"(observed label vs truth: {label_truth_rho:.3f})")
        if champ_report is not None and champ is not None:
            echo(f"champion v{champ.version} on the {champ_report.n} test videos it did not train on: spearman "
                 f"{champ_report.model.spearman:.3f}, r2 {champ_report.model.r2:.3f}, mae {champ_report.model.mae:.3f}")
        for line in gate_lines(gate):
            echo(line)

        label_cfg = {**label_info, "split_seed": tc.split_seed, "val_fraction": tc.val_fraction,
                     "test_fraction": tc.test_fraction, "feature_precision": tc.feature_precision}
        version = registry.register(run, net, clip=training_clip(cfg), label=label_cfg)
        if promote:
            decision = registry.promote(version, gate, run_id=run_id)
        else:
            decision = registry.defer(version, gate=gate, run_id=run_id)
        timings["register_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - t_start
        run.log_metrics({f"seconds_{k.removesuffix('_s')}": v for k, v in timings.items()})
    held = f"v{champ.version}" if champ else "no version"
    if promote:
        verb = "now holds" if decision.promoted else f"stays with {held}"
        echo(f"registered {cfg.mlflow.model_name} v{version}; @{cfg.mlflow.alias} {verb} ({decision.status})")
    else:
        echo(f"registered {cfg.mlflow.model_name} v{version} (pe.promotion=pending); @{cfg.mlflow.alias} stays with "
             f"{held}: promotion deferred to `pe models promote --version {version}`")
    echo(f"total time {timings['total_s']:.1f} s (start-up {timings['startup_s']:.1f} s, labels "
         f"{timings['labels_s']:.1f} s, features {timings['features_s']:.1f} s, training + evaluation "
         f"{timings['train_s']:.1f} s, MLflow {timings['register_s']:.1f} s); MLflow run {run_id}")
    return TrainResult(run_id=run_id, model_version=version, promoted=decision.promoted,
                       promotion_status=decision.status, promotion_reason=decision.reason, gate=gate, test=metrics,
                       truth_spearman=truth_rho, label_stats=label_info, split_counts=split_counts, skipped=skipped,
                       training_clips_version=table_version, epochs_run=fit.epochs_run, best_epoch=fit.best_epoch,
                       timings=timings)


def _champion_evidence(cfg, champ, net, test_loader, ids, test_uris, device, echo):
    """The current champion re-evaluated on this run's test videos ``ids`` (same order), as
    :class:`models.gate.ChampionEvidence`; None without a champion.

    Its predictions come from running it (never from its logged numbers, which were on another split, maybe
    another label or window); ``usable`` marks the test videos its run did not train on (its split.json). A
    champion trained on another label definition is comparable only by rank (gate metric spearman)."""
    from models.gate import ChampionEvidence

    if champ is None:
        return None
    version = str(champ.version)
    preds, problem, label = _champion_predictions(cfg, champ, net, test_loader, ids, test_uris, device, echo)
    if problem is None and label not in (None, cfg.train.label) and cfg.train.gate.metric != "spearman":
        problem = (f"it was trained on label {label!r}, this run on {cfg.train.label!r}: only ranks compare "
                   "(train.gate.metric spearman)")
    if problem is not None:
        return ChampionEvidence(version, unavailable=problem)
    seen = cfg.model_registry().training_videos(champ.run_id) if champ.run_id else None
    if seen is None:
        return ChampionEvidence(version, predictions=preds,
                                note="its training videos are not recorded (no split.json): compared on all")
    usable = np.array([v not in seen for v in ids])
    note = f"{int((~usable).sum())} test videos it trained on left out" if (~usable).any() else None
    return ChampionEvidence(version, predictions=preds, usable=usable, note=note)


def _champion_predictions(cfg, champ, net, test_loader, ids, test_uris, device, echo):
    """``(predictions, None, label definition)``: the champion's predictions for the test videos ``ids`` (same
    order) and the label it was trained on; ``(None, reason, None)`` when it cannot be evaluated.

    Same backbone with identical weights and sampling → its head on the cached features; otherwise its whole
    network on the test videos decoded with the champion's own clip settings."""
    import torch

    from models.backbones import BackboneWeightsError, UnknownBackbone
    from models.registry import ModelLoadError
    from models.training import predict_head
    from pe_udfs.errors import PEInputError

    try:
        loaded = cfg.model_registry().load_version(str(champ.version), device=str(device))
    except (ModelLoadError, UnknownBackbone, BackboneWeightsError) as e:
        echo(f"warning: champion v{champ.version} cannot be loaded: {e}")
        return None, f"cannot load it: {e}", None
    label = (loaded.config.get("label") or {}).get("definition")
    same_features = (loaded.backbone == cfg.model.backbone and loaded.clip == training_clip(cfg)
                     and _same_tensors(loaded.module.backbone, net.backbone))
    if same_features:
        champ_ids, preds, _ = predict_head(loaded.module.head, test_loader, device=device)
        order = {v: i for i, v in enumerate(champ_ids)}
        return np.array([preds[order[v]] for v in ids]), None, label
    echo(f"champion v{champ.version} ({loaded.backbone}, {loaded.clip.max_seconds} s clips) differs in its "
         "features: scoring the test videos with it as scoring would")
    from models.network import extract_features
    from pe_udfs.video import clip_tensor, sample_video

    out = []
    for vid in ids:
        try:
            frames = sample_video(test_uris[vid], loaded.clip, allowed_schemes=list(cfg.io.allowed_schemes),
                                  allowed_roots=list(cfg.allowed_roots), with_match_frames=False).model_frames
        except PEInputError as e:
            return None, f"test video {vid} cannot be decoded for it: {e}", None
        feats = extract_features(loaded.module.backbone, clip_tensor(frames), chunk=cfg.train.frame_batch,
                                 precision=cfg.train.feature_precision)  # computed as the candidate's were
        with torch.inference_mode():
            out.append(float(loaded.module.head(feats[None].to(loaded.device))[0]))
    return np.array(out), None, label


def _same_tensors(a, b) -> bool:
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def _truth(lake, ids) -> "np.ndarray | None":
    """true_engagement of sample_truth for ``ids`` (same order), or None when the table or any video is missing."""
    if not ids or not lake.exists("sample_truth"):
        return None
    t = lake.read_pandas("sample_truth", columns=["video_id", "true_engagement"]).dropna()
    per_video = t.groupby("video_id")["true_engagement"].first()
    if not set(ids) <= set(per_video.index):
        return None
    return per_video.loc[list(ids)].to_numpy(dtype=np.float64)


def _flat_params(cfg: PEConfig, label_info: dict, split_counts: dict, table_version: int, device) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for section in ("model", "train", "clip"):
        for k, v in getattr(cfg, section).model_dump().items():
            if isinstance(v, dict):  # train.gate
                params.update({f"{section}.{k}.{kk}": vv for kk, vv in v.items()})
            else:
                params[f"{section}.{k}"] = v
    params.update({f"label.{k}": v for k, v in label_info.items()})
    params.update({f"n_{k}": v for k, v in split_counts.items()})
    params.update({"training_clips_version": table_version, "device": str(device)})
    return params


# --------------------------------------------------------------------------------------------- entry points
def train_overrides(*, epochs: int | None = None, backbone: str | None = None, limit: int | None = None
                    ) -> dict[str, Any]:
    """Command-line options as config overrides."""
    out: dict[str, Any] = {}
    if epochs is not None:
        out.setdefault("train", {})["epochs"] = epochs
    if limit is not None:
        out.setdefault("train", {})["limit"] = limit
    if backbone is not None:
        out["model"] = {"backbone": backbone}
    return out

