"""The nightly scoring job end to end: real Spark, real Delta tables, a real MLflow registry in tmp folders."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def _write_clip(path: Path, scene: np.ndarray, product: np.ndarray | None, seconds: int = 3, fps: int = 8) -> str:
    """A small H.264 clip: a real photo as background, the product photo pasted in from second 1 on."""
    import av

    h, w = 320, 180
    bg = cv2.resize(scene, (w, h), interpolation=cv2.INTER_AREA)
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
    for i in range(seconds * fps):
        img = bg.copy()
        if product is not None and i >= fps:
            p = cv2.resize(product, (110, 90), interpolation=cv2.INTER_AREA)
            y, x = 120 + (i % fps), 40
            img[y:y + 90, x:x + 110] = p
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return str(path)


@pytest.fixture
def campaign(cfg, lake, spark, tmp_path):
    return make_campaign(cfg, lake)


def make_campaign(cfg, lake):
    """Four good videos, one corrupt file, one missing file; a tiny registered @champion model."""
    from skimage import data

    media = Path(cfg.media_root)
    media.mkdir(parents=True)
    coffee = data.coffee()
    product_png = media / "coffee.png"
    cv2.imwrite(str(product_png), cv2.cvtColor(coffee, cv2.COLOR_RGB2BGR))
    rows = []
    for i, scene in enumerate([data.astronaut(), data.chelsea(), data.rocket(), data.astronaut()]):
        uri = _write_clip(media / f"v{i}.mp4", scene, coffee if i % 2 == 0 else None)
        rows.append((f"v{i}", uri))
    corrupt = media / "corrupt.mp4"
    corrupt.write_bytes(Path(rows[0][1]).read_bytes()[:2000])
    rows += [("v_corrupt", str(corrupt)), ("v_missing", str(media / "missing.mp4"))]
    now = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    pdf = pd.DataFrame({
        "video_id": [r[0] for r in rows], "video_uri": [r[1] for r in rows], "product_id": "p-coffee",
        "product_image_uri": str(product_png), "influencer_id": "inf-1", "campaign_id": "c-1", "own_product": False,
        "published_at": now, "ingested_at": now,
    })
    lake.write_arrow("campaign_videos", pdf)
    _register_tiny_champion(cfg)
    return pdf


def _register_tiny_champion(cfg) -> str:
    import torch

    from models.network import build_engagement_net
    from models.settings import ModelSettings
    from tests.models.synthetic import register_model

    torch.manual_seed(0)
    net = build_engagement_net(ModelSettings(backbone="tiny", conv_filters=4, dense_units=8), weights=None)
    _, version = register_model(cfg.tracking_uri, cfg.mlflow.experiment, net,
                                cfg.clip.model_copy(update={"max_seconds": 10}), model_name=cfg.mlflow.model_name,
                                alias=cfg.mlflow.alias, artifact_location=cfg.artifact_root)
    return version


def test_scores_good_videos_records_bad_ones_and_rerun_is_a_noop(cfg, lake, spark, campaign):
    from jobs.scoring.nightly import run_score

    summary = run_score(cfg, spark=spark, validate_outputs=False)
    assert (summary.candidates, summary.scored, summary.errors) == (6, 4, 2)

    scores = lake.read_pandas("pe_scores").set_index("video_id").sort_index()
    assert list(scores.index) == ["v0", "v1", "v2", "v3"]
    assert (scores["model_version"] == summary.model_version).all() and (scores["run_id"] == summary.run_id).all()
    assert scores["model_run_id"].str.len().gt(0).all()
    assert scores["n_seconds"].tolist() == [3, 3, 3, 3]
    # the coffee cup is pasted in seconds 1-2 of v0 and v2 only; pe_share is a share
    assert scores.loc["v0", "product_found_seconds"] >= 1 and scores.loc["v2", "product_found_seconds"] >= 1
    assert scores.loc["v1", "product_found_seconds"] == 0 and scores.loc["v1", "pe_share"] == 0
    assert scores["pe_share"].between(0, 1).all()

    seconds = lake.read_pandas("pe_seconds")
    assert len(seconds) == 12 and seconds.groupby("video_id")["second"].apply(sorted).map(list).eq([[0, 1, 2]] * 4).all()
    by_video = seconds.groupby("video_id")["e_mass"].sum().sort_index()
    np.testing.assert_allclose(by_video.values, scores["e_score"].values, rtol=1e-6)
    assert seconds.set_index(["video_id", "second"]).loc[("v0", 0), "product_found"] == False

    errors = lake.read_pandas("scoring_errors").set_index("video_id").sort_index()
    assert list(errors.index) == ["v_corrupt", "v_missing"]
    assert errors.loc["v_missing", "stage"] == "fetch" and errors.loc["v_missing", "reason"] == "not_found"
    assert errors.loc["v_corrupt", "stage"] == "decode"
    assert errors["run_id"].eq(summary.run_id).all() and errors["message"].str.len().gt(10).all()

    versions = {n: lake.version(n) for n in ("pe_scores", "pe_seconds", "scoring_errors")}
    again = run_score(cfg, spark=spark, validate_outputs=False)
    assert again.scored == 0 and again.candidates == 2  # only the two bad inputs are tried again
    assert {n: lake.version(n) for n in versions} == versions, "a same-night re-run must write nothing"
    assert lake.info("pe_scores").rows == 4 and lake.info("scoring_errors").rows == 2


def test_missing_model_fails_before_any_table_is_touched(cfg, lake, spark):
    from jobs.scoring.nightly import run_score
    from models.registry import NoChampionError

    with pytest.raises(NoChampionError, match="pe train"):
        run_score(cfg, spark=spark)
    assert lake.table_names() == []


_KILLED_RUN = '''
import os, signal, sys
from jobs.config import load_config
from jobs.storage.lake import Lake
from jobs.scoring.nightly import run_score

cfg = load_config(lake=sys.argv[1], overrides={"spark": {"master": "local[1]", "show_progress": False}})
if sys.argv[2] == "between-commits":  # die right after the first table's commit, before the second
    merge = Lake.merge
    def merge_then_die(self, name, df, *a, **kw):
        out = merge(self, name, df, *a, **kw)
        if name == "pe_seconds":
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    Lake.merge = merge_then_die
print("scoring", flush=True)
run_score(cfg, validate_outputs=False)
'''


def _data_files(table: Path) -> set[str]:
    return {str(p) for p in table.rglob("*.parquet")} if table.exists() else set()


@pytest.mark.parametrize("when", ["between-commits", "during-write"])
def test_sigkill_mid_write_leaves_valid_tables_and_the_rerun_has_one_row_per_key(cfg, lake, spark, campaign,
                                                                                  tmp_path, when):
    """kill -9 of the whole job (driver JVM and Python workers) either right after its first commit or while
    Spark is writing a table's files: every table stays at a valid version and the re-run completes with
    exactly one row per key."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from jobs.scoring.nightly import run_score

    script = tmp_path / "killed_run.py"
    script.write_text(_KILLED_RUN)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, str(script), cfg.lake_path, when], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if when == "during-write":  # kill the job's whole process group once pe_seconds has uncommitted files
        table = Path(lake.path("pe_seconds"))
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.endswith(".parquet") for p in _data_files(table)):
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    out = proc.communicate(timeout=600)[0].decode()
    assert proc.returncode == -signal.SIGKILL, f"the job should have been killed; it exited {proc.returncode}: {out[-3000:]}"

    for name in lake.table_names():  # every table is at a valid, readable version
        assert lake.version(name) >= 0 and lake.read(name).count() >= 0
    if when == "between-commits":
        assert lake.read("pe_seconds").count() == 12 and not lake.exists("pe_scores")

    summary = run_score(cfg, spark=spark, validate_outputs=False)
    assert summary.scored == 4
    for name, keys in (("pe_scores", ["video_id", "model_version"]),
                       ("pe_seconds", ["video_id", "model_version", "second"])):
        df = lake.read(name)
        assert df.count() == df.select(*keys).distinct().count() == {"pe_scores": 4, "pe_seconds": 12}[name]


def test_scoring_uses_the_full_window_and_records_the_scoring_config(cfg, lake, spark):
    """A 30-s sample video, a model trained on 10-s clips: all 30 seconds are scored (clip.max_seconds = 60), the
    window and the scoring_config are stored; a new saliency method or window makes the video a candidate again."""
    from jobs.scoring.nightly import champion_and_plan, run_score
    from jobs.synth.sample import run_sample

    def current_scoring_config(cfg):  # the id run_score stores: its plan's, over the champion's saved clip
        return champion_and_plan(cfg)[1].config_id

    run_sample(cfg, lake, n_videos=1, seed=3, min_seconds=30, max_seconds=30, width=180, height=320, workers=1,
               audio=False)
    _register_tiny_champion(cfg)  # saved with a 10-s training window
    summary = run_score(cfg, spark=spark)  # with the output quality checks
    assert summary.scored == 1
    scores = lake.read_pandas("pe_scores")
    assert scores["n_seconds"].tolist() == [30] and scores["window_seconds"].tolist() == [60]
    assert scores["scoring_config"].tolist() == [current_scoring_config(cfg)]
    assert scores["scoring_config"][0].startswith("vanilla/sift/60s/")
    seconds = lake.read_pandas("pe_seconds")
    assert sorted(seconds["second"]) == list(range(30))
    assert set(seconds["scoring_config"]) == {current_scoring_config(cfg)}
    assert run_score(cfg, spark=spark).candidates == 0  # same model and configuration: nothing to do

    # a shorter window is another scoring configuration: scored again, the row replaced; the 18 seconds beyond
    # it stay in pe_seconds under the old id and are not part of the new score (the quality checks pass)
    short = cfg.model_copy(update={"clip": cfg.clip.model_copy(update={"max_seconds": 12})})
    again = run_score(short, spark=spark)
    assert (again.candidates, again.scored) == (1, 1)
    scores = lake.read_pandas("pe_scores")
    assert len(scores) == 1 and scores["n_seconds"][0] == 12 and scores["window_seconds"][0] == 12
    assert scores["scoring_config"][0] == current_scoring_config(short) != current_scoring_config(cfg)
    seconds = lake.read_pandas("pe_seconds")
    assert (seconds["scoring_config"] == current_scoring_config(short)).sum() == 12 and len(seconds) == 30
    smoothgrad = short.saliency.model_copy(update={"method": "smoothgrad", "smoothgrad_samples": 2})
    assert run_score(short.model_copy(update={"saliency": smoothgrad}), spark=spark).scored == 1


def test_executors_too_small_fail_in_one_line_before_any_table_is_touched(cfg, lake, spark, campaign, monkeypatch):
    import jobs.scoring.executor_memory
    from jobs.scoring.executor_memory import ExecutorMemoryError
    from jobs.scoring.nightly import run_score

    monkeypatch.setattr(jobs.scoring.executor_memory, "machine_memory", lambda: 5 * 2**30)  # 1 GB beside a 4g driver
    with pytest.raises(ExecutorMemoryError) as e:
        run_score(cfg, spark=spark)
    assert "\n" not in str(e.value) and "scoring tasks per executor" in str(e.value)
    assert lake.table_names() == ["campaign_videos"]


def test_a_python_worker_killed_mid_video_costs_nothing(cfg, lake, spark, campaign):
    """kill -9 of a busy Python worker (what the OOM killer does): the task is retried, the job completes and
    every good video is scored."""
    import os
    import signal
    import threading
    import time

    import psutil

    from jobs.scoring.nightly import run_score

    out: dict = {}
    job = threading.Thread(target=lambda: out.update(summary=run_score(cfg, spark=spark, validate_outputs=False)))
    job.start()
    killed = None
    journal_root = Path(cfg.lake_path) / "_scoring"
    deadline = time.monotonic() + 600
    while killed is None and job.is_alive() and time.monotonic() < deadline:
        marks = list(journal_root.glob("crash-journal-*/*")) if journal_root.exists() else []
        if marks:  # a worker is mid-video: kill one forked Python worker (child of pyspark.daemon)
            for p in psutil.Process(os.getpid()).children(recursive=True):
                try:
                    parent = p.parent()
                    if "pyspark.daemon" in " ".join(p.cmdline()) and parent and \
                            "pyspark.daemon" in " ".join(parent.cmdline()):
                        os.kill(p.pid, signal.SIGKILL)
                        killed = p.pid
                        break
                except psutil.Error:
                    continue
        time.sleep(0.05)
    job.join(timeout=900)
    assert killed is not None, "no busy Python worker was found to kill"
    summary = out["summary"]
    assert (summary.scored, summary.errors) == (4, 2)
    assert sorted(lake.read_pandas("pe_scores")["video_id"]) == ["v0", "v1", "v2", "v3"]
    assert not list(journal_root.glob("crash-journal-*")), "the run removes its crash journal"
