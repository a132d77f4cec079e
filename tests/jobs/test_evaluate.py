"""`pe evaluate`: metrics against the truth (fast, on hand-made frames) and the Spark job on a small sample lake
whose scores are made from its own truth, so every number has a known answer."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobs.evaluation.against_truth import material_notes, metric_rows, true_window_pe


def _per_video(n=60, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0, 0.6, n)
    return pd.DataFrame({
        "video_id": [f"v{i}" for i in range(n)], "scenario": np.where(np.arange(n) % 2, "hero", "prop"),
        "true_pe": truth, "true_pe_window": truth, "pe_share": truth + rng.normal(0, 0.02, n),
        "area_only": rng.uniform(0, 0.2, n), "spectral_residual": rng.uniform(size=n),
        "centre_prior": rng.uniform(size=n), "constant": 0.0,
    })


def test_metric_rows_rank_a_faithful_score_above_area_and_constant():
    pv = _per_video()
    seconds = pd.DataFrame({"video_id": ["v0", "v0", "v1", "v1"], "second": [0, 1, 0, 1],
                            "kind": ["visible", "absent", "visible", "absent"], "found": [True, False, True, True],
                            "iou": [0.8, None, 0.6, None]})
    rows = metric_rows(pv, seconds, pd.DataFrame({"lift": [1.0, 2.0, 3.0, 4.0], "true_lift": [1.1, 2.2, 2.9, 4.5]}))
    get = lambda m, s="all": rows[(rows.metric == m) & (rows.scope == s)].iloc[0]
    assert get("spearman_pe_share").value > 0.95 and get("spearman_pe_share").n == 60
    assert abs(get("spearman_area_only").value) < 0.3
    c = get("spearman_constant")
    assert (c.value, c.ci_low, c.ci_high) == (0.0, 0.0, 0.0)
    d = get("spearman_pe_share_minus_area_only")
    assert d.ci_low > 0.5 and d.value == pytest.approx(get("spearman_pe_share").value - get("spearman_area_only").value)
    assert get("spearman_pe_share", "hero").n == 30 and get("spearman_pe_share", "prop").n == 30
    assert get("product_iou_median").value == pytest.approx(0.7) and get("product_false_found").value == 0.5
    assert get("lift_correlation").value > 0.95
    perm = get("spearman_pe_share_permuted")
    assert perm.ci_low < 0 < perm.ci_high  # the built-in negative control ranks nothing
    assert (rows.ci_low <= rows.value + 1e-12).all() and (rows.value <= rows.ci_high + 1e-12).all()


def test_permuted_scores_do_not_pass():
    pv = _per_video(seed=1)
    pv["pe_share"] = np.random.default_rng(2).permutation(pv["pe_share"].to_numpy())
    rows = metric_rows(pv, pd.DataFrame(columns=["video_id", "second", "kind", "found", "iou"]), None)
    d = rows[(rows.metric == "spearman_pe_share_minus_area_only") & (rows.scope == "all")].iloc[0]
    assert d.ci_low < 0 < d.ci_high
    assert "lift_correlation" not in set(rows.metric)


def test_true_window_pe_uses_only_the_scored_seconds():
    truth = pd.DataFrame({"video_id": ["a"] * 3, "second": [0, 1, 2], "time_weight": [1.0, 1.0, 1.0],
                          "product_drive": [1.0, 0.0, 3.0], "drive": [2.0, 2.0, 3.0]})
    assert true_window_pe(truth, pd.Series({"a": 2}))["a"] == pytest.approx(1 / 4)
    assert true_window_pe(truth, pd.Series({"a": 3}))["a"] == pytest.approx(4 / 7)


@pytest.mark.slow
def test_evaluate_job_on_scores_made_from_the_truth(cfg, lake, tmp_path):
    """A 6-video sample; pe_scores/pe_seconds written from the truth itself (quads of the drawn product,
    pe_share = the true PE): the job must find Spearman 1, a high silhouette IoU and no false finds."""
    from typer.testing import CliRunner

    from jobs.cli import app
    from jobs.evaluation.against_truth import run_evaluate
    from jobs.storage.contracts import spark_schema
    from jobs.synth.sample import run_sample

    runner = CliRunner()
    out = runner.invoke(app, ["--lake", str(tmp_path / "bare"), "evaluate"])
    assert out.exit_code == 1 and "no sample_truth table" in out.output and "Traceback" not in out.output

    run_sample(cfg, lake, n_videos=7, seed=5, min_seconds=3, max_seconds=4, width=180, height=320, workers=1)
    truth = lake.read_pandas("sample_truth")
    seconds = truth[["video_id", "second", "quad_224", "product_area_share"]].copy()
    seconds["model_version"], seconds["run_id"] = "1", "test"
    seconds["e_mass"], seconds["pe_mass"], seconds["inliers"], seconds["e_grid"] = 1.0, 0.0, 0, None
    seconds["p_mass"] = seconds["product_area_share"] * 224 * 224
    seconds["product_found"] = seconds["quad_224"].notna()
    per = truth.groupby("video_id").agg(pe_share=("true_product_engagement", "first"), n_seconds=("second", "size"))
    scores = per.reset_index().assign(model_version="1", model_run_id=None, run_id="test")
    for name, frame in (("pe_seconds", seconds), ("pe_scores", scores)):
        schema = spark_schema(name)
        full = frame.reindex(columns=schema.fieldNames())
        lake.write(name, lake.spark.createDataFrame(full.astype(object).where(full.notna(), None), schema=schema),
                   mode="overwrite")
    summary = run_evaluate(cfg, lake, model_version="1", log_mlflow=False)
    assert summary.videos == 7 and not summary.errors
    assert any("test influencers are unknown" in n for n in summary.notes)  # scores of no training run: all only
    assert summary.value("spearman_pe_share")["value"] == pytest.approx(1.0)
    assert summary.value("product_iou_median")["value"] > 0.85  # listing-JPEG background model vs true alpha
    assert summary.value("product_false_found")["value"] == 0
    written = lake.read_pandas("evaluations")
    assert len(written) == len(summary.rows) and set(written["run"]) == {summary.run}
    assert any("goal" in line for line in summary.lines())


def test_the_intervals_do_not_depend_on_the_order_of_the_rows():
    """Tables read through Spark come in no set order: the same scores must give the same intervals."""
    pv = _per_video(n=40, seed=3)
    seconds = pd.DataFrame(columns=["video_id", "second", "kind", "found", "iou"])
    shuffled = pv.sample(frac=1.0, random_state=5)
    assert list(shuffled["video_id"]) != list(pv["video_id"])
    pd.testing.assert_frame_equal(metric_rows(pv, seconds, None), metric_rows(shuffled, seconds, None))


def test_headline_scope_is_the_test_influencers_and_the_goal_is_against_the_best_rule():
    """Influencers of 3 videos each; the test split's pe_share follows the truth, one rule (motion_in_mask) follows
    it almost as well and the others not at all: the best rule is named, and the interval resamples influencers."""
    pv = _per_video(n=90, seed=3)
    rng = np.random.default_rng(4)
    pv["influencer_id"] = [f"i{k // 3:02d}" for k in range(90)]
    pv["split"] = np.where(np.arange(90) < 45, "test", "train")
    pv["motion_in_mask"] = pv["true_pe"] + rng.normal(0, 0.15, 90)
    rows = metric_rows(pv, pd.DataFrame(columns=["video_id", "second", "kind", "found", "iou"]), None)
    get = lambda m, s: rows[(rows.metric == m) & (rows.scope == s)].iloc[0]
    assert get("spearman_pe_share", "test").n == 45 and get("spearman_pe_share", "all").n == 90
    best = get("spearman_best_baseline", "test")
    assert best.detail == "motion_in_mask" and best.value == get("spearman_motion_in_mask", "test").value
    d = get("spearman_pe_share_minus_best_baseline", "test")
    assert d.detail == "motion_in_mask" and d.ci_low > 0
    # a clustered interval is wider than one that treats the 3 videos of an influencer as independent
    from models.agreement import bootstrap
    naive = bootstrap(pv["motion_in_mask"][:45].to_numpy(), pv["true_pe"][:45].to_numpy())
    assert best.ci_high - best.ci_low != pytest.approx(naive.ci_high - naive.ci_low)
    assert "spearman_pe_share_permuted" in set(rows[rows.scope == "test"].metric)


def test_the_evaluation_says_whether_the_test_videos_show_material_training_never_saw():
    pv = _per_video(n=24, seed=1)
    pv["influencer_id"] = [f"i{k // 3}" for k in range(24)]
    pv["split"] = ["test"] * 12 + ["train"] * 6 + ["val"] * 6
    pv["material"] = ["held_out"] * 12 + ["seen"] * 12
    assert material_notes(pv) == ["all 12 test videos show people, backgrounds and products no training or "
                                  "validation video shows"]
    rows = metric_rows(pv, pd.DataFrame(columns=["video_id", "second", "kind", "found", "iou"]), None)
    share = rows[(rows.metric == "held_out_material_share")].set_index("scope")["value"]
    assert share["test"] == 1.0 and share["all"] == 0.5
    # a model trained with another split: part of its test material was seen, and the note says how much
    other = pv.assign(split=["test"] * 6 + ["train"] * 6 + ["test"] * 6 + ["val"] * 6)
    assert material_notes(other)[0].startswith("6 of 12 test videos show held-out material and 6 training/validation")
    assert "may show" in material_notes(pv.assign(material=None))[0]
    assert "without a held-out split" in material_notes(pv.assign(material="any"))[0]


def test_engagement_map_methods_are_ranked_where_they_were_computed():
    """A method scored on the test influencers' videos only (NaN elsewhere) gets rows in the test scope, with its
    paired difference against the best rule there, and none in the scopes it was not computed for."""
    pv = _per_video(n=60, seed=5)
    pv["influencer_id"] = [f"i{k // 3:02d}" for k in range(60)]
    pv["split"] = np.where(np.arange(60) < 30, "test", "train")
    pv["map_density"] = np.where(pv["split"] == "test", pv["true_pe"] * 2 + 0.01, np.nan)
    rows = metric_rows(pv, pd.DataFrame(columns=["video_id", "second", "kind", "found", "iou"]), None)
    test = rows[rows.scope == "test"].set_index("metric")
    assert test.loc["spearman_map_density", "value"] == pytest.approx(1.0)
    assert test.loc["spearman_map_density_minus_best_baseline", "ci_low"] > 0
    assert "spearman_map_density" not in set(rows[rows.scope == "all"].metric)
