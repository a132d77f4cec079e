"""`pe evaluate`: the champion's PE-scores against the sample campaign's ground truth (Spark job).

    extract   pe_scores + pe_seconds of one model version, campaign_videos, sample_truth, sales_lift (optional)
    transform per video on Spark (mapInPandas over pe_udfs.baselines): decode the scored seconds, rebuild the
              product map from pe_seconds.quad_224 and the listing's silhouette → model-free baselines
              (spectral-residual saliency PE, centre-bias prior PE) and per-second IoU / found against the
              truth silhouettes;
              on the driver (models.agreement): Spearman with the true product engagement and bootstrap 95 %
              intervals of pe_share, area-only (Σp / (S·224²) from pe_seconds.p_mass), the two baselines and
              the constant; the paired interval of pe_share minus area-only; per scenario; a negative control
              (pe_share shuffled across videos); product-map IoU and false-found rate; correlation of
              estimated and true sales lifts
    load      one row per metric and scope into `evaluations` (merge by key), the same numbers to the model's
              MLflow run; a printed table

The truth is the whole video's time-weighted product engagement (as the issue defines it); metrics suffixed
``_window`` use the truth over the seconds the model scored (its clip window), which is what its score sees.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Iterator

import numpy as np
import pandas as pd

from jobs.config import PEConfig
from jobs.storage.lake import Lake
from models.agreement import Estimate, bootstrap, paired_difference, pearson, permutation_null
from pe_udfs.baselines import BASELINES
from pe_udfs.errors import PEError
from pe_udfs.saliency import METHODS

#: model-free rules (pe_udfs.baselines' registry), compared with the model's pe_share on the same product maps
BASELINE_NAMES = tuple(BASELINES)
#: score columns compared with the truth (pe_share is the model's; the rest need no engagement model)
SCORES = ("pe_share", *BASELINE_NAMES, "constant")
#: the headline scope: videos of the influencers the model never saw in training or validation
HEADLINE = "test"
#: the goal: on the headline scope, Spearman(pe_share) at least this and above the best baseline (paired interval)
GOAL_SPEARMAN = 0.6
RESULT_DDL = "video_id STRING, result STRING"


class EvaluateError(PEError):
    """The lake cannot be evaluated (no sample truth, no scores)."""

    stage = "evaluate"


@dataclass
class EvaluateSummary:
    model_version: str
    run: str
    rows: pd.DataFrame
    videos: int
    table_version: int | None = None
    mlflow_run_id: str | None = None
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    per_video: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per video: truth, scores, split
    notes: list[str] = field(default_factory=list)  # what limits the evaluation (e.g. no known test split)

    def value(self, metric: str, scope: str = "all") -> pd.Series:
        hit = self.rows[(self.rows["metric"] == metric) & (self.rows["scope"] == scope)]
        return hit.iloc[0] if len(hit) else pd.Series(dtype=float)

    def lines(self) -> list[str]:
        out = [f"evaluation {self.run} of model v{self.model_version} on {self.videos} videos "
               "(Spearman with the true product engagement; 95 % intervals resample influencers; every row, with the "
               "differences against each rule and the scored-window variants, is in the evaluations table):"]
        scopes = [sc for sc in (HEADLINE, "all") if (self.rows["scope"] == sc).any()]
        for scope in scopes:
            label = ("videos of the model's test influencers (headline)" if scope == HEADLINE else "all videos")
            out.append(f"  {label}:")
            shown = self.rows[(self.rows["scope"] == scope) & ~self.rows["metric"].str.endswith("_window")
                              & ~(self.rows["metric"].str.contains("_minus_")
                                  & ~self.rows["metric"].str.endswith("_minus_best_baseline"))]
            for _, r in shown.iterrows():
                detail = f"  ({r['detail']})" if isinstance(r.get("detail"), str) and r["detail"] else ""
                out.append(f"    {r['metric']:<44} {r['value']:8.3f}  [{r['ci_low']:7.3f}, {r['ci_high']:7.3f}]  "
                           f"n={r['n']}{detail}")
        per = self.rows[~self.rows["scope"].isin([HEADLINE, "all"]) & self.rows["metric"].isin(
            ["spearman_pe_share", "spearman_best_baseline", "mean_pe_share", "mean_true_pe", "product_iou_median"])]
        if len(per):
            table = per.pivot_table(index="scope", columns="metric", values="value")
            out.append("  per scenario (all videos):")
            out += ["    " + line for line in table.round(3).to_string().splitlines()]
        for e in self.errors:
            out.append(f"  not evaluated: {e}")
        for note in self.notes:
            out.append(f"  note: {note}")
        scope = scopes[0] if scopes else "all"
        goal, diff = self.value("spearman_pe_share", scope), self.value("spearman_pe_share_minus_best_baseline", scope)
        if len(goal) and len(diff):
            met = goal["value"] >= GOAL_SPEARMAN and diff["ci_low"] > 0
            out.append(f"  goal on {scope} (Spearman >= {GOAL_SPEARMAN}, paired interval against the best model-free "
                       f"rule above 0): {'met' if met else 'NOT met'}")
        return out


# ---------------------------------------------------------------------------------------------- per video
def _png_b64(value) -> str | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else base64.b64encode(bytes(value)).decode()


def video_tasks(videos: pd.DataFrame, seconds: pd.DataFrame, truth: pd.DataFrame) -> list[tuple[str, str]]:
    """(video_id, JSON task) per scored video: uri, listing uri, scored seconds' quads, truth regions."""
    tasks = []
    by_video = dict(tuple(seconds.sort_values("second").groupby("video_id")))
    truth_by_video = dict(tuple(truth.sort_values("second").groupby("video_id")))
    for v in videos.itertuples():
        s = by_video.get(v.video_id)
        t = truth_by_video.get(v.video_id)
        if s is None or t is None:
            continue
        tasks.append((v.video_id, json.dumps({
            "video_uri": v.video_uri, "image_uri": v.product_image_uri,
            "quads": [None if q is None else [float(x) for x in q] for q in s["quad_224"]],
            "found": [bool(f) for f in s["product_found"]],
            "truth": [_png_b64(p) for p in t["product_mask_png"]],
            "visible": [bool(x) for x in t["product_visible"].fillna(False)],
        })))
    return tasks


def evaluate_video(task: dict, *, cfg: dict) -> dict:
    """Model-free baselines and product-map agreement of one video (runs on an executor; no Spark here)."""
    import cv2

    from pe_udfs.baselines import baseline_shares, mask_agreement, product_masks
    from pe_udfs.errors import PEInputError
    from pe_udfs.listing import listing_silhouette, load_image
    from pe_udfs.settings import ClipSettings, ProductSettings
    from pe_udfs.video import sample_video

    product = ProductSettings(**cfg["product"])
    n = len(task["quads"])
    clip = ClipSettings(**{**cfg["clip"], "max_seconds": max(1, n)})
    try:
        silhouette = None
        if product.region == "silhouette":
            image = load_image(task["image_uri"], allowed_schemes=cfg["allowed_schemes"])
            scale = min(1.0, product.listing_max_side / max(image.shape[:2]))
            if scale < 1.0:
                image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                                   interpolation=cv2.INTER_AREA)
            silhouette = listing_silhouette(image, product.background_tolerance)
        video = sample_video(task["video_uri"], clip, allowed_schemes=cfg["allowed_schemes"], with_match_frames=False)
    except PEInputError as e:
        return {"error": f"{e.stage}/{e.reason}: {e}"}
    masks = product_masks(task["quads"], silhouette, clip.size)
    k = min(n, video.n_seconds)
    shares: dict[str, float | None] = {**baseline_shares(video.model_frames[:k], masks[:k], cfg.get("baselines"))}
    if cfg.get("methods") and task.get("with_methods", True):
        shares.update(method_shares(video.model_frames[:k], masks[:k], cfg))
    truth = [None if p is None else cv2.resize(cv2.imdecode(np.frombuffer(base64.b64decode(p), np.uint8),
                                                            cv2.IMREAD_GRAYSCALE), (clip.size, clip.size),
                                               interpolation=cv2.INTER_NEAREST) > 0 for p in task["truth"]]
    return {**shares, "seconds": mask_agreement(masks, np.array(task["found"]), truth, task["visible"])}


def method_shares(frames: np.ndarray, masks: np.ndarray, cfg: dict) -> dict[str, float | None]:
    """``map_<method>``: pe_share of each engagement-map method in ``cfg['methods']`` with the model
    ``cfg['methods_model_version']`` of ``cfg['registry']``, on frames (S, H, W, 3) and the product masks (S, H, W) the score used; None
    where the method does not apply to that model (e.g. 'density' without a density head)."""
    import torch

    from pe_udfs.errors import ModelError
    from pe_udfs.pe_math import pe_scores
    from pe_udfs.saliency import engagement_heatmap
    from pe_udfs.settings import SaliencySettings
    from pe_udfs.video import clip_tensor

    model = cfg["registry"].load_version(cfg["methods_model_version"], device="cpu")
    torch.set_num_threads(int(cfg.get("torch_threads", 1)))
    out: dict[str, float | None] = {}
    for name in cfg["methods"]:
        try:
            heat = engagement_heatmap(model.module, clip_tensor(frames), SaliencySettings(method=name),
                                      product_masks=masks)
            out[f"map_{name}"] = pe_scores(heat.heatmap, masks)["pe_share"]
        except ModelError:
            out[f"map_{name}"] = None
    return out


def evaluate_partition(frames: Iterator[pd.DataFrame], *, cfg: dict) -> Iterator[pd.DataFrame]:
    """mapInPandas body: (video_id, task JSON) rows → (video_id, result JSON) rows."""
    for frame in frames:
        out = [json.dumps(evaluate_video(json.loads(t), cfg=cfg)) for t in frame["task"]]
        yield pd.DataFrame({"video_id": frame["video_id"], "result": out})


# ---------------------------------------------------------------------------------------------- metrics
def _row(metric: str, scope: str, e: Estimate, detail: str | None = None) -> dict:
    return {"metric": metric, "scope": scope, "value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n,
            "detail": detail}


def _mean(x: np.ndarray, seed: int, groups=None) -> Estimate:
    return bootstrap(x, x, stat=lambda a, _: np.mean(a, axis=-1), seed=seed, groups=groups)


def metric_rows(per_video: pd.DataFrame, seconds: pd.DataFrame, lifts: pd.DataFrame | None, *, seed: int = 0
                ) -> pd.DataFrame:
    """Every metric with its bootstrap interval, for the model's test influencers (scope ``test``, the
    headline), all videos and per scenario.

    per_video: video_id, scenario, true_pe, true_pe_window, one column per :data:`SCORES` present, and optionally
    influencer_id (intervals resample whole influencers), split ('test' marks the model's test influencers) and
    material (the video's cast: row ``held_out_material_share``);
    seconds: video_id, kind ('visible' | 'absent' | 'partial'), found, iou (product-map agreement);
    lifts: product-level estimated ``lift`` and ``true_lift`` (None: no sales_lift table).
    Per scope: Spearman of every score; the best model-free rule of that scope (``spearman_best_baseline``, its
    name in ``detail``) and the paired difference of pe_share against it and against every rule. The intervals do
    not depend on the order the rows come in: rows are sorted by video before resampling."""
    per_video = per_video.sort_values("video_id", kind="stable").reset_index(drop=True)
    methods = sorted(c for c in per_video.columns if c.startswith("map_") and per_video[c].notna().any())
    scores = [c for c in SCORES if c in per_video.columns] + methods
    baselines = [c for c in BASELINE_NAMES if c in per_video.columns]
    rows = []
    scopes = [("all", per_video)]
    if "split" in per_video.columns and (per_video["split"] == HEADLINE).any():
        scopes.insert(0, (HEADLINE, per_video[per_video["split"] == HEADLINE]))
    scopes += [(str(k), g) for k, g in per_video.groupby("scenario", sort=True)]
    for scope, g in scopes:
        groups = g["influencer_id"].astype(str).to_numpy() if "influencer_id" in g.columns else None
        for truth_col, suffix in (("true_pe", ""), ("true_pe_window", "_window")):
            t = g[truth_col].to_numpy(float)
            if np.ptp(t) == 0 if len(t) else True:
                continue  # e.g. no_product: the truth is 0 everywhere, nothing to rank
            here = [c for c in scores if not c.startswith("map_") or g[c].notna().all()]  # methods: where computed
            est = {name: bootstrap(g[name].to_numpy(float), t, seed=seed, groups=groups) for name in here}
            rows += [_row(f"spearman_{name}{suffix}", scope, e) for name, e in est.items()]
            if not baselines or "pe_share" not in est:
                continue
            best = max(baselines, key=lambda b: (est[b].value if np.isfinite(est[b].value) else -np.inf, b))
            rows.append(_row(f"spearman_best_baseline{suffix}", scope, est[best], detail=best))
            for b in (*baselines, "best_baseline"):
                other = best if b == "best_baseline" else b
                rows.append(_row(f"spearman_pe_share_minus_{b}{suffix}", scope, paired_difference(
                    g["pe_share"].to_numpy(float), g[other].to_numpy(float), t, seed=seed, groups=groups),
                    detail=other if b == "best_baseline" else None))
            for m in (c for c in here if c.startswith("map_")):
                rows.append(_row(f"spearman_{m}_minus_best_baseline{suffix}", scope, paired_difference(
                    g[m].to_numpy(float), g[best].to_numpy(float), t, seed=seed, groups=groups), detail=best))
        if scope in ("all", HEADLINE) and len(g) >= 3:  # negative control: what pe_share shuffled across videos reaches
            rows.append(_row("spearman_pe_share_permuted", scope, permutation_null(
                g["pe_share"].to_numpy(float), g["true_pe"].to_numpy(float), seed=seed)))
        rows.append(_row("mean_pe_share", scope, _mean(g["pe_share"].to_numpy(float), seed, groups)))
        rows.append(_row("mean_true_pe", scope, _mean(g["true_pe"].to_numpy(float), seed, groups)))
        if "material" in g.columns and g["material"].notna().all():  # share of videos no training video resembles
            rows.append(_row("held_out_material_share", scope,
                             _mean((g["material"] == "held_out").to_numpy(float), seed, groups)))
        s = seconds[seconds["video_id"].isin(set(g["video_id"]))]
        rows += _mask_rows(s, scope, seed)
    if lifts is not None and len(lifts) >= 3:
        rows.append(_row("lift_correlation", "all", bootstrap(lifts["lift"].to_numpy(float),
                                                              lifts["true_lift"].to_numpy(float), stat=pearson, seed=seed)))
    out = pd.DataFrame(rows, columns=["metric", "scope", "value", "ci_low", "ci_high", "n", "detail"])
    return out.astype({"n": "int64"})


def _mask_rows(seconds: pd.DataFrame, scope: str, seed: int) -> list[dict]:
    """Median IoU on visible seconds and found share on absent seconds, intervals by resampling videos."""
    rows = []
    for metric, kind, stat in (("product_iou_median", "visible", lambda s: float(np.median(s["iou"]))),
                               ("product_false_found", "absent", lambda s: float(s["found"].mean()))):
        s = seconds[seconds["kind"] == kind]
        if s.empty:
            continue
        groups = [g for _, g in s.groupby("video_id")]
        rng = np.random.default_rng(seed)
        boots = [stat(pd.concat([groups[i] for i in rng.integers(0, len(groups), len(groups))])) for _ in range(500)]
        lo, hi = np.quantile(boots, [0.025, 0.975])
        rows.append({"metric": metric, "scope": scope, "value": stat(s), "ci_low": float(lo), "ci_high": float(hi),
                     "n": len(s), "detail": None})
    return rows


def true_window_pe(truth: pd.DataFrame, n_seconds: pd.Series) -> pd.Series:
    """True product engagement over each video's first ``n_seconds`` (the scored window), by video_id."""
    t = truth.assign(limit=truth["video_id"].map(n_seconds))
    t = t[t["second"] < t["limit"]]
    num = (t["time_weight"] * t["product_drive"]).groupby(t["video_id"]).sum()
    den = (t["time_weight"] * t["drive"]).groupby(t["video_id"]).sum()
    return num / den


# ---------------------------------------------------------------------------------------------- job
def require_truth(lake: Lake) -> None:
    """Raise :class:`EvaluateError` unless the lake holds a sample campaign's truth (no Spark needed)."""
    if not lake.exists("sample_truth"):
        raise EvaluateError("no_sample_truth", f"the lake at {lake.root} has no sample_truth table: `pe evaluate` "
                            "needs a sample campaign whose truth is known (`pe sample`)")


def run_evaluate(cfg: PEConfig, lake: Lake, *, model_version: str | None = None, run: str | None = None,
                 log_mlflow: bool = True, methods: list[str] | None = None, methods_model: str | None = None
                 ) -> EvaluateSummary:
    """Evaluate one model version's scores (default: the @champion's) on the lake's sample campaign.

    ``methods``: engagement-map methods (pe_udfs.saliency.METHODS) to score as well, each on the same product
    maps with the model version ``methods_model`` (default: the evaluated one), on the videos of the model's test
    influencers only (all videos when the split is unknown): rows ``spearman_map_<method>``."""
    from pyspark.sql import functions as F

    from jobs.analysis.analyze import choose_model_version
    from jobs.storage.contracts import spark_schema
    from jobs.storage.views import champion_version, current_seconds

    t0 = time.perf_counter()
    require_truth(lake)
    for name in ("pe_scores", "pe_seconds", "campaign_videos"):
        if not lake.exists(name):
            raise EvaluateError("table_not_found", f"the lake at {lake.root} has no {name} table: run `pe score` first")
    scores = lake.read_pandas("pe_scores")
    version, _ = choose_model_version(scores, model_version, champion_version(cfg))
    scores = scores[scores["model_version"].astype(str) == version]
    seconds = current_seconds(lake).where(F.col("model_version") == version).toPandas()
    truth = lake.read_pandas("sample_truth")
    videos = lake.read_pandas("campaign_videos")
    videos = videos[videos["video_id"].isin(set(scores["video_id"]) & set(truth["video_id"]))]
    if videos.empty:
        raise EvaluateError("no_scores", f"model v{version} has scored none of the sample campaign's videos")
    run = run or f"evaluate-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-v{version}"

    # transform: per video on Spark
    spark = lake.spark
    tasks = video_tasks(videos.sort_values("video_id"), seconds, truth)
    split = _model_split(cfg, lake, scores)
    job_cfg: dict[str, Any] = {"product": cfg.product.model_dump(), "clip": cfg.clip.model_dump(),
               "allowed_schemes": list(cfg.io.allowed_schemes)}
    if methods:
        unknown = sorted(set(methods) - set(METHODS))
        if unknown:
            raise EvaluateError("unknown_method", f"unknown engagement-map methods {unknown}; known: {', '.join(METHODS)}")
        job_cfg.update(methods=list(methods), registry=cfg.model_registry(),
                       methods_model_version=str(methods_model or version))
        if split is not None:
            tasks = [(vid, json.dumps({**json.loads(t), "with_methods": split.get(vid) == HEADLINE}))
                     for vid, t in tasks]
    n_parts = max(1, min(len(tasks), spark.sparkContext.defaultParallelism * 4))
    df = spark.createDataFrame(pd.DataFrame(tasks, columns=["video_id", "task"])).repartition(n_parts)
    results: pd.DataFrame = df.mapInPandas(partial(evaluate_partition, cfg=job_cfg), schema=RESULT_DDL).toPandas()

    per_video, second_rows, errors = [], [], []
    for r in results.itertuples():
        res = json.loads(r.result)
        if "error" in res:
            errors.append(f"{r.video_id}: {res['error']}")
            continue
        per_video.append({"video_id": r.video_id, **{b: res[b] for b in BASELINE_NAMES},
                          **{k: v for k, v in res.items() if k.startswith("map_")}})
        second_rows += [{"video_id": r.video_id, **s} for s in res["seconds"]]
    frame = _per_video_frame(pd.DataFrame(per_video), scores, truth)
    frame["influencer_id"] = frame["video_id"].map(videos.set_index("video_id")["influencer_id"]).fillna(
        "video:" + frame["video_id"])
    notes = []
    if split is None:
        notes.append("the model's test influencers are unknown (no training_clips rows of its run): only all videos")
    else:
        frame["split"] = frame["video_id"].map(split)
        notes += material_notes(frame)
    rows = metric_rows(frame, pd.DataFrame(second_rows, columns=["video_id", "second", "kind", "found", "iou"]),
                       _lifts(lake, videos, truth))
    rows.insert(0, "model_version", version)
    rows.insert(1, "run", run)
    rows["evaluated_at"] = pd.Timestamp(dt.datetime.now(dt.timezone.utc))
    summary = EvaluateSummary(version, run, rows, len(frame), errors=errors, per_video=frame, notes=notes)

    lake.merge("evaluations", spark.createDataFrame(rows[spark_schema("evaluations").fieldNames()],
                                                    schema=spark_schema("evaluations")),
               metadata={"pe.job": "evaluate", "pe.run": run, "pe.model_version": version})
    summary.table_version = lake.version("evaluations")
    if log_mlflow:
        summary.mlflow_run_id = _log_to_model_run(cfg, scores, rows)
    summary.seconds = time.perf_counter() - t0
    return summary


def material_notes(frame: pd.DataFrame) -> list[str]:
    """What the test videos show that training did not (``frame``: split, material per video): the sample
    campaign casts pe train's default test influencers from people, backgrounds and products no other video
    shows; a model trained with another split is tested partly on material it has seen, and this says so."""
    if "material" not in frame.columns or frame["material"].isna().all():
        return ["the campaign records no cast (sampled before held-out material): test videos may show the people, "
                "backgrounds and products of training videos"]
    test, fitted = frame[frame["split"] == HEADLINE], frame[frame["split"].isin(["train", "val"])]
    held, leaked = int((test["material"] == "held_out").sum()), int((fitted["material"] == "held_out").sum())
    if (frame["material"] == "any").all():
        return ["the campaign was cast without a held-out split: test videos show the people, backgrounds and "
                "products of training videos"]
    if held == len(test) and leaked == 0:
        return [f"all {held} test videos show people, backgrounds and products no training or validation video shows"]
    return [f"{held} of {len(test)} test videos show held-out material and {leaked} training/validation videos do "
            "too: the model was trained with another split than the campaign was cast for (train.split_seed, "
            "val_fraction, test_fraction or train.limit differ), so part of its test material was seen in training"]


def _per_video_frame(baselines: pd.DataFrame, scores: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluated video: truth (whole video and scored window), scenario, pe_share and the baselines."""
    per_video = {"scenario": ("scenario", "first"), "true_pe": ("true_product_engagement", "first")}
    if "material" in truth.columns:  # the video's cast (jobs.synth.casting); null in a lake sampled before it
        per_video["material"] = ("material", "first")
    per = truth.groupby("video_id").agg(**per_video)
    n_seconds = scores.set_index("video_id")["n_seconds"]
    per["true_pe_window"] = true_window_pe(truth, n_seconds)
    frame = baselines.set_index("video_id").join(per, how="inner")
    frame["pe_share"] = scores.set_index("video_id")["pe_share"]
    frame["constant"] = 0.0
    return frame.reset_index().dropna(subset=["pe_share", "true_pe", "area_only"])


def _model_split(cfg: PEConfig, lake: Lake, scores: pd.DataFrame) -> pd.Series | None:
    """video_id → 'train' | 'val' | 'test' of the split the scoring model was trained with: the ``training_clips``
    version its MLflow run logged (``training_clips_version``); None when that cannot be known."""
    from mlflow.exceptions import MlflowException

    run_ids = scores["model_run_id"].dropna().unique() if "model_run_id" in scores.columns else []
    if len(run_ids) != 1 or not lake.exists("training_clips"):
        return None
    client = cfg.model_registry().client
    try:
        version = client.get_run(str(run_ids[0])).data.params.get("training_clips_version")
    except MlflowException:
        return None
    if version is None:
        return None
    clips = lake.read_pandas("training_clips", version=int(version), columns=["video_id", "split"])
    return clips.dropna().drop_duplicates("video_id").set_index("video_id")["split"]


def _lifts(lake: Lake, videos: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame | None:
    """Estimated lifts of the latest analysis run joined to the true lifts (None without sales_lift)."""
    if not lake.exists("sales_lift"):
        return None
    lifts = lake.read_pandas("sales_lift", columns=["product_id", "analysis_run", "lift", "analyzed_at"])
    if lifts.empty:
        return None
    latest = lifts.sort_values("analyzed_at")["analysis_run"].iloc[-1]
    lifts = lifts[lifts["analysis_run"] == latest].dropna(subset=["lift"])
    true = truth.groupby("video_id")["true_sales_lift"].first()
    product_truth = videos.set_index("product_id")["video_id"].map(true).rename("true_lift")
    joined = lifts.set_index("product_id").join(product_truth, how="inner").dropna(subset=["true_lift"])
    return joined.reset_index().sort_values(["product_id", "true_lift"], kind="stable")  # an order of its own


def _log_to_model_run(cfg: PEConfig, scores: pd.DataFrame, rows: pd.DataFrame) -> str | None:
    """The metrics (value, ci_low, ci_high) as MLflow metrics ``eval.<scope>.<metric>`` of the run that
    trained the model; None when the scores do not name that run."""
    from mlflow.entities import Metric

    run_ids = scores["model_run_id"].dropna().unique()
    if len(run_ids) != 1:
        return None
    now = int(time.time() * 1000)
    metrics = [Metric(f"eval.{r.scope}.{r.metric}{suffix}", float(v), now, 0)
               for r in rows.itertuples() for suffix, v in (("", r.value), (".ci_low", r.ci_low), (".ci_high", r.ci_high))
               if np.isfinite(v)]
    client = cfg.model_registry().client
    for i in range(0, len(metrics), 1000):
        client.log_batch(str(run_ids[0]), metrics=metrics[i:i + 1000])
    return str(run_ids[0])

