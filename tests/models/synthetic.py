"""Tiny synthetic videos and labels for the model and training tests (no downloads, a few KB each), and known
test-split predictions for the promotion tests."""
from __future__ import annotations

import os

import numpy as np


def write_video(path: str, *, seconds: float, level: float, size: int = 48, fps: int = 4, seed: int = 0) -> str:
    """An H.264 MP4 of ``seconds`` at ``fps``: a noisy background whose brightness grows with ``level`` ∈ [0, 1]
    and a small moving yellow square (so engagement can be made a known function of what is on screen)."""
    import av

    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with av.open(path, mode="w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        side = size // 4
        base = int(round(20 + 180 * level))
        for i in range(int(round(seconds * fps))):
            img = (base + rng.integers(0, 40, size=(size, size, 3))).clip(0, 255).astype(np.uint8)
            x0 = (i * 3) % max(1, size - side + 1)
            img[4:4 + side, x0:x0 + side] = (230, 200, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_campaign(lake, media_root: str, *, n: int = 30, influencers: int = 10, seed: int = 0,
                   broken: int = 0) -> dict[str, float]:
    """Videos + campaign_videos + engagement_labels + sample_truth in ``lake``; shares = exp(2 + 3·level)
    (rounded), so log1p(shares) ≈ 2 + 3·level. ``broken`` extra rows point at a corrupt file.
    Returns {video_id: level}."""
    from datetime import datetime, timezone

    import pandas as pd

    rng = np.random.default_rng(seed)
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    levels: dict[str, float] = {}
    videos, labels, truth = [], [], []
    for i in range(n + broken):
        vid = f"t{i:03d}"
        path = os.path.join(media_root, f"{vid}.mp4")
        level = float(rng.uniform(0, 1))
        seconds = int(rng.integers(2, 5))
        if i < n:
            write_video(path, seconds=seconds, level=level, seed=i)
            levels[vid] = level
        else:
            os.makedirs(media_root, exist_ok=True)
            with open(path, "wb") as f:
                f.write(b"this is not a video" * 10)
        inf = f"inf{i % influencers}"
        videos.append({"video_id": vid, "video_uri": path, "product_id": f"p{i}", "product_image_uri": None,
                       "influencer_id": inf, "campaign_id": "c1", "own_product": False, "published_at": now,
                       "ingested_at": now})
        labels.append({"video_id": vid, "video_uri": path, "influencer_id": inf, "product_id": f"p{i}",
                       "views": 10_000, "likes": int(rng.integers(0, 1000)), "comments": 3,
                       "shares": int(round(np.exp(2 + 3 * level))), "collected_at": now})
        for s in range(seconds):
            truth.append({"video_id": vid, "second": s, "product_visible": False, "quad_224": None,
                          "product_area_share": 0.0, "driver": "none", "driver_x": 0.0, "driver_y": 0.0,
                          "driver_weight": 0.0, "true_engagement": level, "true_product_engagement": 0.0})
    from jobs.storage.contracts import contract

    for name, rows in (("campaign_videos", videos), ("engagement_labels", labels), ("sample_truth", truth)):
        columns = contract(name).columns  # columns this helper does not know stay null
        lake.write_arrow(name, pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns),
                         mode="overwrite")
    return levels


# --------------------------------------------------------------------------------------------- known predictions
#: Test labels of 24 videos and a fixed noise pattern: predictions = Y (or Y reversed) + noise × PATTERN.
Y = np.linspace(0.0, 7.0, 24)
PATTERN = np.random.default_rng(3).normal(size=24)


def predictions(noise: float, *, flip: bool = False) -> np.ndarray:
    """(24,) predictions on :data:`Y`: R² ≈ 1 − noise²/4.5; noise 0.2 clearly beats 1.0, 1.3 does not."""
    return (Y[::-1] if flip else Y) + noise * PATTERN


def report(noise: float, *, flip: bool = False):
    """The :class:`models.evaluate.EvalReport` of :func:`predictions` (constant: the mean of Y)."""
    from models.evaluate import evaluate_predictions

    return evaluate_predictions(Y, predictions(noise, flip=flip), baseline_value=float(Y.mean()))


def gate(noise: float, *, flip: bool = False, champion: float | None = None, champion_version: str | None = None,
         unavailable: str | None = None):
    """The promotion gate of :func:`predictions` (400 resamples), against a champion predicting with ``champion``
    noise (or one that ``unavailable`` says could not be evaluated)."""
    from models.gate import ChampionEvidence, evaluate_gate
    from models.settings import GateSettings

    evidence = None if champion_version is None else ChampionEvidence(
        champion_version, predictions=None if champion is None else predictions(champion), unavailable=unavailable)
    return evaluate_gate(Y, predictions(noise, flip=flip), baseline_value=float(Y.mean()),
                         settings=GateSettings(bootstrap=400), champion=evidence)


def register_model(tracking_uri: str, experiment: str, net, clip, *, model_name: str, alias: str | None = None,
                   artifact_location: str | None = None, label: dict | None = None) -> tuple[str, str]:
    """Log ``net`` in a new run of ``experiment`` and register it as a version of ``model_name`` (given
    ``alias`` when set), as a training run would → (run_id, version)."""
    from models.registry import ModelRegistry
    from models.tracking import ensure_experiment, tracked_run

    exp = ensure_experiment(tracking_uri, experiment, artifact_location)
    with tracked_run(tracking_uri, exp, run_name="test-model") as run:
        version = ModelRegistry(tracking_uri, model_name).register(run, net, clip=clip, label=label)
        if alias is not None:
            run.client.set_registered_model_alias(model_name, alias, version)
    return run.run_id, version
