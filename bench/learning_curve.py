"""How much labelled data the engagement model needs: test Spearman against N labelled videos.

    pe --lake LAKE sample --videos 400 --seed 31 && pe --lake LAKE train --features-only
    .venv/bin/python bench/learning_curve.py --lake LAKE [--sizes 50,100,200,400] [--plot docs/learning_curve.png]

One campaign, its backbone features cached once (``training_clips``); nested subsets of whole influencers::

    influencers ordered by SHA-256("curve:<influencer>") ─► the first ones up to N videos (nested: N=50 ⊂ 100 ⊂ …)
      ─► the job's split and labels (models.labels: influencer split, fixed effects within split, standardised
         on training rows only) ─► the head with the configured train.*/model.* settings, early stopping on the
         validation split (models.sweep.fit_in_memory, the job's fit_head) ─► test split:
         Spearman(model, label)   predictions compared within influencer, as the label (what the gate tests)
         Spearman(model, truth)   the model's raw output against sample_truth's true_engagement
         Spearman(label, truth)   the ceiling: how well the observed label itself tracks the truth
         truth ratio              model-vs-truth / label-vs-truth
      + the gate of ``pe train`` (models.gate) on the same test videos, and at n200 a negative control: the same
        training with the training and validation labels permuted (must not pass).

Intervals: 95 % paired bootstrap percentile intervals over the test videos (models.gate.paired_difference against
a constant, whose Spearman is 0). The last line is ``learning n200_spearman=… n200_ci_low=… n200_truth_ratio=…``.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pandas as pd


@dataclass
class Point:
    n: int
    n_train: int
    n_val: int
    n_test: int
    spearman: float
    ci_low: float
    ci_high: float
    truth: float
    truth_low: float
    truth_high: float
    ceiling: float
    gate: str
    best_epoch: int
    r2: float

    @property
    def truth_ratio(self) -> float:
        return self.truth / self.ceiling if self.ceiling > 0 else float("nan")

    def line(self) -> str:
        return (f"n={self.n:>4} (train {self.n_train}, val {self.n_val}, test {self.n_test})  spearman vs label "
                f"{self.spearman:+.3f} [{self.ci_low:+.3f}, {self.ci_high:+.3f}]  vs truth {self.truth:+.3f} "
                f"[{self.truth_low:+.3f}, {self.truth_high:+.3f}]  label vs truth {self.ceiling:+.3f}  "
                f"truth ratio {self.truth_ratio:.2f}  r2 {self.r2:+.3f}  gate {self.gate}  epoch {self.best_epoch}")


def summary_line(at200: Point | list[Point]) -> str:
    """The bench's last line: ``learning n200_spearman=… n200_ci_low=… n200_truth_ratio=…``; over several splits
    (a list of points) the means over the splits, plus ``n200_splits=K n200_truth_ratio_min=…``."""
    runs = at200 if isinstance(at200, list) else [at200]
    line = (f"learning n200_spearman={np.mean([p.spearman for p in runs]):.3f} "
            f"n200_ci_low={np.mean([p.ci_low for p in runs]):.3f} "
            f"n200_truth_ratio={np.mean([p.truth_ratio for p in runs]):.2f}")
    if len(runs) > 1:
        line += f" n200_splits={len(runs)} n200_truth_ratio_min={min(p.truth_ratio for p in runs):.2f}"
    return line


def splits_line(n: int, runs: list[Point]) -> str:
    """One size's spread over repeated influencer splits (each split's test set is different videos)."""
    def spread(values: list[float]) -> str:
        return f"{np.mean(values):+.3f} (min {min(values):+.3f}, max {max(values):+.3f})"

    promoted = sum(p.gate == "promoted" for p in runs)
    return (f"n={n:4d} over {len(runs)} splits: spearman vs label {spread([p.spearman for p in runs])}, "
            f"ci_low {spread([p.ci_low for p in runs])}, truth ratio {spread([p.truth_ratio for p in runs])}, "
            f"gate promoted in {promoted}/{len(runs)}")


def load_campaign(lake) -> pd.DataFrame:
    """One row per video with cached features: video_id, influencer_id, shares, likes, true_engagement,
    feature_shape, features (the configured backbone's only)."""
    clips = lake.read_pandas("training_clips", columns=["video_id", "backbone", "feature_shape", "features"])
    clips = clips.dropna(subset=["features"])
    videos = lake.read_pandas("campaign_videos", columns=["video_id", "influencer_id"])
    labels = lake.read_pandas("engagement_labels", columns=["video_id", "shares", "likes"])
    truth = lake.read_pandas("sample_truth", columns=["video_id", "true_engagement"]).groupby(
        "video_id", as_index=False)["true_engagement"].first()
    return clips.merge(videos, on="video_id").merge(labels, on="video_id").merge(truth, on="video_id")


def nested_subset(df: pd.DataFrame, n: int, seed: str = "curve") -> pd.DataFrame:
    """The videos of the first influencers in hash order, until at least ``n`` videos (nested in ``n``)."""
    def u(key: str) -> int:
        return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:12], 16)

    order = sorted(df["influencer_id"].astype(str).unique(), key=lambda k: (u(k), k))
    sizes = df["influencer_id"].astype(str).value_counts()
    take, total = [], 0
    for k in order:
        if total >= n:
            break
        take.append(k)
        total += int(sizes[k])
    return df[df["influencer_id"].astype(str).isin(take)].reset_index(drop=True)


def curve_point(df: pd.DataFrame, n: int, cfg, *, permute: bool = False, boot_seed: int = 0) -> Point:
    """Train and test on the nested subset of ``n`` videos (see the module docstring)."""
    from models.evaluate import regression_metrics
    from models.gate import evaluate_gate, paired_difference
    from models.labels import build_labels, group_key, is_within_influencer, split_by_group
    from models.sweep import fit_in_memory
    from models.training import InMemoryBatches, predict_head

    tc = cfg.train
    sub = nested_subset(df, n)
    split = split_by_group(sub, seed=tc.split_seed, val_fraction=tc.val_fraction, test_fraction=tc.test_fraction)
    labelled, _ = build_labels(sub, tc.label, split)
    groups = dict(zip(labelled["video_id"], group_key(labelled)))
    rows = {s: labelled[labelled["split"] == s] for s in ("train", "val", "test")}
    if permute:  # negative control: labels shuffled among the training (and validation) videos
        rng = np.random.default_rng(12345)
        for s in ("train", "val"):
            rows[s] = rows[s].assign(label=rng.permutation(rows[s]["label"].to_numpy()))
    recs = {s: r.to_dict("records") for s, r in rows.items()}
    within = is_within_influencer(tc.label)
    channels = int(recs["train"][0]["feature_shape"][1])
    head, fit = fit_in_memory(recs["train"], recs["val"], model=cfg.model, train=tc, in_channels=channels,
                              val_groups=groups if within else None)
    ids, raw, y = predict_head(head, InMemoryBatches(recs["test"], batch_size=tc.batch_size))
    preds = raw
    if within:
        from models.labels import within_groups

        preds = within_groups(raw, [groups[v] for v in ids])
    truth = rows["test"].set_index("video_id").loc[ids, "true_engagement"].to_numpy(dtype=np.float64)
    boot = {"metric": "spearman", "resamples": tc.gate.bootstrap, "confidence": tc.gate.confidence, "seed": boot_seed}
    zero = np.zeros(len(ids))
    vs_label = paired_difference(y, preds, zero, **boot)
    vs_truth = paired_difference(truth, raw, zero, **boot)
    baseline = float(rows["train"]["label"].mean())
    gate = evaluate_gate(y, preds, baseline_value=baseline, settings=tc.gate)
    return Point(n=len(sub), n_train=len(recs["train"]), n_val=len(recs["val"]), n_test=len(ids),
                 spearman=vs_label.estimate, ci_low=vs_label.low, ci_high=vs_label.high, truth=vs_truth.estimate,
                 truth_low=vs_truth.low, truth_high=vs_truth.high,
                 ceiling=regression_metrics(truth, y).spearman, gate=gate.status, best_epoch=fit.best_epoch,
                 r2=regression_metrics(y, preds).r2)


def plot(points: list[Point], path: str) -> str:
    """The curve as a PNG: Spearman vs label and vs truth with intervals, and the label's own ceiling."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [p.n for p in points]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for attr, lo, hi, label, colour in (("spearman", "ci_low", "ci_high", "model vs label (test)", "C0"),
                                        ("truth", "truth_low", "truth_high", "model vs true engagement", "C1")):
        v = np.array([getattr(p, attr) for p in points])
        err = np.array([[v[i] - getattr(p, lo), getattr(p, hi) - v[i]] for i, p in enumerate(points)]).T
        ax.errorbar(n, v, yerr=err, marker="o", capsize=3, label=label, color=colour)
    ax.plot(n, [p.ceiling for p in points], "k--", marker="s", label="label vs true engagement (ceiling)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xticks(n, [str(x) for x in n])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("labelled videos in the campaign (train + validation + test)")
    ax.set_ylabel("Spearman on the test influencers")
    ax.set_title("Engagement model learning curve (95% bootstrap intervals)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    from jobs.config import load_config
    from jobs.spark import get_spark
    from jobs.storage.lake import Lake

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lake", required=True, action="append",
                   help="a sample campaign's lake with training_clips built; repeat to pool campaigns of the same "
                        "world (e.g. two seeds) into one larger set")
    p.add_argument("--config")
    p.add_argument("--sizes", default="50,100,200,400")
    p.add_argument("--plot", default="docs/learning_curve.png")
    p.add_argument("--no-control", action="store_true", help="skip the permuted-label control at n200")
    p.add_argument("--splits", type=int, default=1,
                   help="repeat each size over K influencer splits (train.split_seed, +1, …): one split of ~50 test "
                        "videos moves the ratio by about ±0.2; the last line then gives the means (plot: split 0)")
    a = p.parse_args(argv)
    cfg = load_config(a.config, lake=a.lake[0], overrides={"spark": {"master": "local[2]", "show_progress": False}})
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    spark = get_spark(cfg, app_name="pe-learning-curve")
    df = pd.concat([load_campaign(Lake(root, spark)) for root in a.lake], ignore_index=True)
    if df["video_id"].duplicated().any():
        raise SystemExit("the lakes share video ids: pool campaigns of different seeds")
    sizes = [int(s) for s in a.sizes.split(",")]
    print(f"campaign ({', '.join(a.lake)}): {len(df)} videos with features, {df['influencer_id'].nunique()} influencers; label "
          f"{cfg.train.label}; settings: window {cfg.train.window_seconds}, flip {cfg.train.flip}, feature dropout "
          f"{cfg.train.feature_dropout}, weight decay {cfg.train.weight_decay}, head {cfg.model.conv_filters}/"
          f"{cfg.model.dense_units}, dropout {cfg.model.dropout}")
    points: dict[int, Point] = {}
    repeated: dict[int, list[Point]] = {}
    for n in sizes:
        if n > len(df):
            print(f"n={n}: the campaign has only {len(df)} videos; skipped")
            continue
        for k in range(max(1, a.splits)):
            seeded = cfg.model_copy(update={"train": cfg.train.model_copy(update={"split_seed": cfg.train.split_seed + k})})
            point = curve_point(df, n, seeded)
            repeated.setdefault(n, []).append(point)
            print(("" if a.splits <= 1 else f"split {k}: ") + point.line(), flush=True)
        points[n] = repeated[n][0]
        if a.splits > 1:
            print(splits_line(n, repeated[n]), flush=True)
    at200 = points.get(200)
    if at200 is not None:
        if not a.no_control:
            ctl = curve_point(df, 200, cfg, permute=True)
            print(f"negative control n200, permuted labels: spearman {ctl.spearman:+.3f} [{ctl.ci_low:+.3f}, "
                  f"{ctl.ci_high:+.3f}], gate {ctl.gate} ({'fails as it must' if ctl.gate != 'promoted' else 'PASSED: broken'})")
    if a.plot and points:
        print(f"plot: {plot(list(points.values()), a.plot)}")
    if at200 is not None:
        print(summary_line(repeated[200] if a.splits > 1 else at200))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
