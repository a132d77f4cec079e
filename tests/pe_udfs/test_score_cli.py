"""`pe score-video FILE --product [VIEW=]IMAGE ... [--model URI] [--json] [--product-only]` (jobs/scoring/one_video.py)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from pe_media import paste, write_frames
from skimage import data
from typer.testing import CliRunner

from jobs.cli import app

SCENE = data.astronaut()[:384]
QUAD = np.float32([[150, 100], [420, 140], [400, 330], [130, 300]])
PER_SECOND_FIELDS = {"second", "product_found", "inliers", "e_mass", "pe_mass", "quad_224"}


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    video = write_frames(folder / "ad.mp4", [paste(data.coffee(), SCENE, QUAD)] * 4 + [SCENE] * 2, fps=2)
    image = folder / "coffee.jpg"
    cv2.imwrite(str(image), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    return str(video), str(image)


def run(*args):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_product_only_json(media, tmp_path):
    video, image = media
    code, out, err = run("--lake", str(tmp_path / "lake"), "score-video", video, "--product", image,
                         "--product-only", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["model"] is None and report["product_only"] is True
    assert report["n_seconds"] == 3 and report["product_found_seconds"] == 2
    assert [s["product_found"] for s in report["seconds"]] == [True, True, False]
    assert PER_SECOND_FIELDS <= set(report["seconds"][0])
    assert len(report["seconds"][0]["quad_224"]) == 8 and report["seconds"][2]["quad_224"] is None


def test_product_only_table(media, tmp_path):
    video, image = media
    code, out, _ = run("--lake", str(tmp_path / "lake"), "score-video", video, "--product", image, "--product-only")
    assert code == 0
    assert "product found in 2" in out and "second  found  inliers" in out
    rows = [line.split() for line in out.splitlines() if len(line.split()) >= 3 and line.split()[0].isdigit()]
    assert [r[1] for r in rows] == ["yes", "yes", "no"]


def test_bad_inputs_exit_with_the_stage_and_reason(media, tmp_path):
    video, image = media
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    code, _, err = run("--lake", str(tmp_path / "lake"), "score-video", str(empty), "--product", image, "--product-only")
    assert code == 1 and err.startswith("error: decode: ") and err.rstrip().endswith("[empty_file]")
    code, _, err = run("--lake", str(tmp_path / "lake"), "score-video", video, "--product", str(tmp_path / "no.jpg"),
                       "--product-only")
    assert code == 1 and err.startswith("error: product: ") and err.rstrip().endswith("[not_found]")


@pytest.mark.slow
def test_without_a_champion_it_says_how_to_get_one(media, tmp_path):
    video, image = media
    code, _, err = run("--lake", str(tmp_path / "lake"), "score-video", video, "--product", image)
    assert code == 1
    assert "pe train" in err and "make demo" in err and "--product-only" in err


@pytest.mark.slow
def test_scores_with_the_registered_champion(media, tmp_path):
    from jobs.config import load_config
    from models.network import build_engagement_net
    from models.settings import ModelSettings
    from tests.models.synthetic import register_model

    cfg = load_config(lake=str(tmp_path / "lake"))
    # trained on 2-s clips: scoring still covers clip.max_seconds (all 3 s of the video)
    _, version = register_model(cfg.tracking_uri, "score-video-test", build_engagement_net(ModelSettings(backbone="tiny")),
                                cfg.clip.model_copy(update={"max_seconds": 2}), model_name=cfg.mlflow.model_name,
                                alias=cfg.mlflow.alias, artifact_location=cfg.artifact_root)
    video, image = media
    code, out, err = run("--lake", cfg.lake_path, "score-video", video, "--product", image, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["model"]["name"] == cfg.mlflow.model_name and report["model"]["version"] == version
    assert np.isfinite(report["predicted_engagement"])
    assert 0 < report["scores"]["pe_share"] < 1 and report["scores"]["pe_share_6s"] == report["scores"]["pe_share"]
    assert all(PER_SECOND_FIELDS <= set(s) for s in report["seconds"])
    assert report["seconds"][2]["pe_mass"] == 0 and report["seconds"][0]["pe_mass"] > 0
    assert report["n_seconds"] == 3 and report["window_seconds"] == 60
    # --product-only samples the same window: the same product score
    code, out, err = run("--lake", cfg.lake_path, "score-video", video, "--product", image, "--product-only", "--json")
    assert code == 0, err
    product_only = json.loads(out)
    assert product_only["window_seconds"] == 60 and product_only["scores"]["p_score"] == report["scores"]["p_score"]
    code, out, _ = run("--lake", cfg.lake_path, "score-video", video, "--product", image, "--model",
                       f"models:/{cfg.mlflow.model_name}/{version}")
    assert code == 0 and "pe_share" in out and "predicted engagement" in out


def test_several_views_each_second_names_the_view_that_matched(media, tmp_path):
    video, image = media
    other = tmp_path / "other.png"  # another product's listing: shares no texture with the coffee cup
    cv2.imwrite(str(other), cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR))
    code, out, err = run("--lake", str(tmp_path / "lake"), "score-video", video, "-p", f"side={other}",
                         "-p", f"front={image}", "--product-only", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["product_views"] == {"side": str(other), "front": image}
    assert [s["matched_view"] for s in report["seconds"]] == ["front", "front", None]
    assert report["product_found_seconds"] == 2

    code, out, _ = run("--lake", str(tmp_path / "lake"), "score-video", video, "-p", str(other), "-p", image,
                       "--product-only")
    assert code == 0
    assert f"product: other {other}, coffee {image}" in out
    rows = [line.split() for line in out.splitlines() if len(line.split()) >= 3 and line.split()[0].isdigit()]
    assert [r[5] for r in rows] == ["coffee", "coffee", "-"]  # the view column, named after the files


def test_view_arguments_are_checked_before_any_work(media, tmp_path):
    from jobs.scoring.one_video import named_views

    assert named_views(["a/b=c.png"]) == [("main", "a/b=c.png")]  # a path with '=' is a path
    assert named_views(["file:///x=y.png", "front=f.png"]) == [("x=y", "file:///x=y.png"), ("front", "f.png")]
    video, image = media
    for args, reason in (([f"a={image}", f"a={image}"], "duplicate_view"), ([f"={image}"], "bad_product_view")):
        code, out, err = run("--lake", str(tmp_path / "lake"), "score-video", video,
                             *[x for a in args for x in ("-p", a)], "--product-only")
        assert code == 2 and err.strip().startswith("error: usage:") and f"[{reason}]" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
