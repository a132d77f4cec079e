"""Issue 17's hostile-input matrix: every kind of bad campaign row in one lake, one `pe score`.

Each bad row must become exactly one ``scoring_errors`` row with its stage and reason; every good row (odd but
valid names and ids included) must be scored; a truncated file is scored from its good seconds and flagged; and
a second run the same night must write nothing. Real Spark, Delta and MLflow in a temp folder."""
from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from test_score_job import _register_tiny_champion, _write_clip

from tests.hostile_media import claims_hours_mp4, lying_jpeg, one_pixel_video

pytestmark = pytest.mark.slow


def _audio_only(path: Path) -> str:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    return str(path)


def _plain_video(path: Path, seconds: int, width: int = 64, height: int = 48) -> str:
    """A 2 fps video of flat frames (cheap to write at any length or size)."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=2)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * 2):
            img = np.full((height, width, 3), (i * 7) % 255, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return str(path)


def _faststart_clip(path: Path, scene: np.ndarray) -> str:
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=8)
        s.width, s.height, s.pix_fmt = 180, 320, "yuv420p"
        bg = cv2.resize(scene, (180, 320), interpolation=cv2.INTER_AREA)
        for i in range(48):
            img = np.roll(bg, i * 3, axis=1)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return str(path)


@pytest.fixture
def hostile_lake(cfg, lake, tmp_path):
    """(expected errors {video_id: (stage, reason)}, good ids, truncated id) after writing the campaign."""
    from skimage import data

    media = Path(cfg.media_root)
    (media / "odd").mkdir(parents=True)
    coffee = data.coffee()
    product = str(media / "coffee.png")
    cv2.imwrite(product, cv2.cvtColor(coffee, cv2.COLOR_RGB2BGR))
    good_clip = _write_clip(media / "good.mp4", data.astronaut(), coffee)

    rows: list[tuple] = []  # (video_id, video_uri, product_image_uri)
    expected: dict[str, tuple[str, str]] = {}

    def bad(vid, uri, stage, reason, image=product):
        rows.append((vid, uri, image))
        expected[vid] = (stage, reason)

    # --- good rows: plain, odd names, hostile-looking ids, a 12-minute video (scored over its window only)
    good = {"good": good_clip}
    for name in ("café ☕ 視頻.mp4", "take #2.mp4", "what?.mp4"):
        shutil.copy(good_clip, media / "odd" / name)
        good[f"odd-{len(good)}"] = str(media / "odd" / name)
    good["x'); DROP TABLE pe_scores; --"] = good_clip
    good["<script>alert(1)</script>"] = good_clip
    good["long-12min"] = _plain_video(media / "long.mp4", 12 * 60)
    rows += [(vid, uri, product) for vid, uri in good.items()]
    truncated_src = Path(_faststart_clip(media / "streamable.mp4", data.chelsea())).read_bytes()
    (media / "truncated.mp4").write_bytes(truncated_src[: int(len(truncated_src) * 0.55)])
    rows.append(("truncated", str(media / "truncated.mp4"), product))
    # 2 s of video in a file whose container claims 4 hours (its audio track's headers): scored, flagged
    rows.append(("claims-4h", claims_hours_mp4(media / "claims-4h.mp4", hours=4), product))

    # --- bad videos
    (media / "zero.mp4").write_bytes(b"")
    bad("zero-byte", str(media / "zero.mp4"), "decode", "empty_file")
    (media / "notes.mp4").write_text("not a video\n" * 100)
    bad("text-as-video", str(media / "notes.mp4"), "decode", "unreadable")
    bad("audio-only", _audio_only(media / "voice.mp4"), "decode", "no_video_stream")
    src = bytearray(Path(good_clip).read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.choice(len(src), int(0.4 * len(src)), replace=False):
        src[i] = rng.integers(0, 256)
    (media / "corrupt.mp4").write_bytes(bytes(src))
    bad("corrupt-40pct", str(media / "corrupt.mp4"), "decode", "unreadable")
    cv2.imwrite(str(media / "photo.jpg"), cv2.cvtColor(coffee, cv2.COLOR_RGB2BGR))
    shutil.copy(media / "photo.jpg", media / "photo-renamed.mp4")
    bad("jpeg-as-mp4", str(media / "photo-renamed.mp4"), "decode", "format_not_allowed")
    bad("one-pixel", one_pixel_video(media / "one-pixel.mp4"), "decode", "too_small")
    big = _plain_video(media / "big.mp4", 2, 640, 640)  # frames over the model's clip.max_pixels (set below)
    bad("huge-frames", big, "decode", "too_large")
    bad("missing-file", str(media / "missing.mp4"), "fetch", "not_found")
    bad("dev-zero", "/dev/zero", "validate", "video_uri_root")  # outside the roots before it is a device
    bad("hash-in-uri", f"file://{media / 'odd' / 'take #2.mp4'}", "fetch", "not_found")
    bad("traversal", str(media / ".." / ".." / ".." / ".." / "etc" / "hostname"), "validate", "video_uri_root")
    outside = tmp_path / "outside.mp4"
    shutil.copy(good_clip, outside)
    os.symlink(outside, media / "link-out.mp4")
    bad("symlink-out", str(media / "link-out.mp4"), "validate", "video_uri_root")  # the gate resolves links
    bad("http-scheme", "http://example.com/v.mp4", "validate", "video_uri_scheme")
    # file://HOST/... names another machine's file: never the local file of the same path
    bad("file-uri-host", f"file://evil.example.com{good_clip}", "validate", "video_uri_scheme")
    # --- bad product images
    blank = media / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 300, 3), 255, np.uint8))
    bad("blank-product", good_clip, "product", "product_no_features", str(blank))
    tiny = media / "tiny.png"
    cv2.imwrite(str(tiny), cv2.resize(coffee, (12, 9)))
    bad("tiny-product", good_clip, "product", "product_no_features", str(tiny))
    bad("missing-product", good_clip, "validate", "product_image_uri_present", None)
    jpg = (media / "photo.jpg").read_bytes()
    (media / "cut.jpg").write_bytes(jpg[: len(jpg) // 3])
    bad("corrupt-product", good_clip, "product", "product_image_unreadable", str(media / "cut.jpg"))
    # the header says 4900x4900, the data holds 381x480: libjpeg only warns and fills the rest with grey
    liar = lying_jpeg(media / "liar.jpg", cv2.resize(coffee, (381, 480)), header=(4900, 4900))
    bad("header-lies-product", good_clip, "product", "product_image_corrupt", liar)
    cv2.imwrite(str(media / "huge.png"), np.zeros((5200, 5000), np.uint8))  # 26 MP, tiny on disk
    bad("huge-product", good_clip, "product", "too_large", str(media / "huge.png"))
    # --- bad ids (labels in scoring_errors name the file). NULL cannot reach the table: the contract's NOT NULL
    # refuses it at write time (tests/jobs/test_lake.py); empty and whitespace-only ids can
    rows += [("", good_clip + "#empty-id", product), ("   ", good_clip + "#blank-id", product)]
    rows += [("dup", good_clip, product), ("dup", good_clip, product)]
    expected["dup"] = ("validate", "id_unique")

    now = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    lake.write_arrow("campaign_videos", pd.DataFrame({
        "video_id": [r[0] for r in rows], "video_uri": [r[1] for r in rows], "product_id": "p-coffee",
        "product_image_uri": [r[2] for r in rows], "influencer_id": "inf-1", "campaign_id": "c-1",
        "own_product": False, "published_at": now, "ingested_at": now}))
    cfg.clip.max_seconds = 10  # the scoring window; the model below trained on 10 s
    cfg.clip.max_pixels = 400 * 400  # saved with the model: 640x640 frames are "huge" here
    _register_tiny_champion(cfg)
    return expected, set(good), {"truncated", "claims-4h"}


def test_every_bad_row_is_one_error_with_its_reason_every_good_row_is_scored(cfg, lake, spark, hostile_lake):
    from jobs.scoring.nightly import run_score

    expected, good, truncated_ids = hostile_lake
    summary = run_score(cfg, spark=spark, validate_outputs=False)

    scores = lake.read_pandas("pe_scores").set_index("video_id")
    assert set(scores.index) == good | truncated_ids
    assert scores.loc["long-12min", "n_seconds"] == 10  # a 12-minute video costs its window, nothing more
    truncated = "truncated"
    warning = scores.loc[truncated, "input_warnings"]
    assert bool(scores.loc[truncated, "input_truncated"]) and ("ends at" in warning or "stopped early" in warning)
    assert 1 <= scores.loc[truncated, "n_seconds"] < 6
    claimed = scores.loc["claims-4h"]
    assert bool(claimed["input_truncated"]) and claimed["n_seconds"] == 2
    assert "the container states 14400.00 s" in claimed["input_warnings"]
    assert not scores.loc[sorted(good), "input_truncated"].any()
    assert summary.truncated == len(truncated_ids)

    errors = lake.read_pandas("scoring_errors")
    assert errors["video_id"].is_unique, "one error row per bad row"
    null_ids = errors[errors["video_id"].str.startswith("<")]
    assert sorted(null_ids["video_id"].str.split(":").str[0]) == ["<blank video_id", "<blank video_id"]
    assert null_ids["reason"].eq("video_id_present").all()
    got = {r.video_id: (r.stage, r.reason) for r in errors.itertuples() if not r.video_id.startswith("<")}
    mismatched = {vid: (got.get(vid), want) for vid, want in expected.items()
                  if got.get(vid) is None or got[vid][0] != want[0] or want[1] not in got[vid][1]}
    assert not mismatched, f"(got, expected) per bad row: {mismatched}"
    assert set(got) == set(expected), f"unexpected error rows: {set(got) - set(expected)}"
    hint = errors.set_index("video_id").loc["hash-in-uri", "message"]
    assert "%23" in hint, hint
    assert (summary.scored, summary.errors) == (len(good) + len(truncated_ids), len(expected) + 2)

    versions = {n: lake.version(n) for n in ("pe_scores", "pe_seconds", "scoring_errors")}
    again = run_score(cfg, spark=spark, validate_outputs=False)
    assert again.scored == 0 and {n: lake.version(n) for n in versions} == versions
