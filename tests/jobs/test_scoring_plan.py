"""One scoring plan per run (PEConfig.scoring_plan): the model's sampling over the run's window, with the run's
product and saliency settings; `pe score` and `pe score-video` build it the same way, so one video scored under
the same settings gets one scoring_config id whichever command scored it. No Spark here."""
from __future__ import annotations

import cv2
import pytest
from skimage import data

from tests.pe_udfs.pe_media import paste, write_frames

SCENE = data.astronaut()[:384]
QUAD = [[150, 100], [420, 140], [400, 330], [130, 300]]


@pytest.fixture
def champion(cfg):
    """A tiny registered @champion trained on 2-s clips with matching frames capped at 480 px (the config: 60 s,
    640 px): the model's saved sampling differs from the configured clip in both."""
    import torch

    from models.network import build_engagement_net
    from models.settings import ModelSettings
    from tests.models.synthetic import register_model

    torch.manual_seed(0)
    clip = cfg.clip.model_copy(update={"max_seconds": 2, "match_max_width": 480})
    register_model(cfg.tracking_uri, cfg.mlflow.experiment, build_engagement_net(ModelSettings(backbone="tiny"),
                                                                                weights=None),
                   clip, model_name=cfg.mlflow.model_name, alias=cfg.mlflow.alias, artifact_location=cfg.artifact_root)
    return clip


def test_the_plan_takes_the_models_sampling_and_the_runs_window(cfg):
    model_clip = cfg.clip.model_copy(update={"max_seconds": 10, "match_max_width": 480, "fps": 2.0})
    plan = cfg.scoring_plan(model_clip)
    assert (plan.clip.max_seconds, plan.clip.match_max_width, plan.clip.fps, plan.frames) == (60, 480, 2.0, 120)
    assert plan.config_id.startswith("vanilla/sift/60s/")
    assert plan.config_id != cfg.scoring_plan(cfg.clip).config_id  # the matching width is part of the id
    assert cfg.scoring_plan(None).clip == cfg.clip  # no model (product map only): the configured clip


@pytest.mark.slow
def test_pe_score_and_pe_score_video_give_one_video_one_scoring_config(cfg, champion, tmp_path):
    from jobs.scoring.nightly import champion_and_plan
    from jobs.scoring.one_video import score_one

    video = write_frames(tmp_path / "ad.mp4", [paste(data.coffee(), SCENE, QUAD)] * 4 + [SCENE] * 2, fps=2)
    image = tmp_path / "coffee.jpg"
    cv2.imwrite(str(image), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))

    report = score_one(cfg, str(video), str(image))  # pe score-video's code path, end to end
    _, plan = champion_and_plan(cfg)  # what pe score stores with every row of the run
    assert report["scoring_config"] == plan.config_id
    assert plan.clip.match_max_width == champion.match_max_width == 480  # what matching used
    assert report["window_seconds"] == plan.clip.max_seconds == 60
