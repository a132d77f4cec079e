"""pe_udfs.video: sampling times, frame choice, rotation, odd sizes, URIs and every decode error."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from pe_udfs.errors import DecodeError, FetchError, PEInputError
from pe_udfs.settings import ClipSettings, DecodeSettings
from pe_udfs.video import clip_tensor, sample_video


def indices(video, frame_index):
    return [frame_index(f) for f in video.match_frames]


def test_one_frame_per_second_from_a_constant_rate_video(make_video, frame_index):
    path = make_video("cfr.mp4", 35, fps=10)  # 3.5 s
    v = sample_video(str(path), ClipSettings())
    assert v.model_frames.shape == (4, 224, 224, 3) and v.model_frames.dtype == np.uint8
    assert np.allclose(v.timestamps, [0, 1, 2, 3])
    assert indices(v, frame_index) == [0, 10, 20, 30]
    assert [frame_index(f) for f in v.model_frames] == [0, 10, 20, 30]
    assert v.match_frames[0].shape == (48, 64, 3)
    assert (v.width, v.height, v.rotation, v.truncated) == (64, 48, 0, False)
    assert v.native_fps == pytest.approx(10)
    assert v.duration_s == pytest.approx(3.5)


def test_rate_and_length_are_configuration(make_video, frame_index):
    path = make_video("cfr.mp4", 35, fps=10)
    v = sample_video(str(path), ClipSettings(fps=2, max_seconds=2), with_match_frames=False)
    assert np.allclose(v.timestamps, [0, 0.5, 1, 1.5])
    assert [frame_index(f) for f in v.model_frames] == [0, 5, 10, 15]
    assert v.match_frames == []


def test_video_shorter_than_one_second_gives_its_first_frame(make_video, frame_index):
    v = sample_video(str(make_video("short.mp4", 4, fps=10)), ClipSettings())  # 0.4 s
    assert v.n_seconds == 1 and indices(v, frame_index) == [0] and v.timestamps.tolist() == [0.0]


def test_variable_frame_rate_takes_the_frame_on_screen_at_each_second(make_video, frame_index):
    times = [0.0, 0.1, 0.25, 0.9, 1.05, 2.4, 2.5]
    v = sample_video(str(make_video("vfr.mp4", len(times), times=times)), ClipSettings())
    # at t=1 the frame shown since 0.9 (index 3); at t=2 the one shown since 1.05 (index 4)
    assert indices(v, frame_index) == [0, 3, 4]
    assert np.allclose(v.timestamps, [0.0, 0.9, 1.05], atol=1e-3)


def test_audio_track_is_ignored(make_video, frame_index):
    v = sample_video(str(make_video("audio.mp4", 25, fps=10, audio=True)), ClipSettings())
    assert indices(v, frame_index) == [0, 10, 20]


@pytest.mark.parametrize("codec,pix_fmt", [("libx264", "yuv444p"), ("mpeg4", "yuv420p")])
def test_odd_frame_sizes(make_video, frame_index, codec, pix_fmt):
    v = sample_video(str(make_video("odd.mp4", 15, width=321, height=577, codec=codec, pix_fmt=pix_fmt)),
                     ClipSettings())
    assert v.match_frames[0].shape == (577, 321, 3)
    assert v.model_frames.shape == (2, 224, 224, 3)
    assert (v.width, v.height) == (321, 577)
    assert indices(v, frame_index) == [0, 10]


def test_wide_frames_are_capped_for_matching(make_video):
    v = sample_video(str(make_video("wide.mp4", 3, width=800, height=450)), ClipSettings())
    assert v.match_frames[0].shape == (360, 640, 3)


@pytest.mark.parametrize("rotation,width,height,marker_corner", [
    (90, 48, 64, "bottom_left"),    # display turns the frame 90° counterclockwise
    (-90, 48, 64, "top_right"),     # the usual phone-portrait case (clockwise)
    (180, 64, 48, "bottom_right"),
])
def test_rotated_video_comes_out_upright(make_video, rotation, width, height, marker_corner):
    path = make_video("rot.mp4", 3, width=64, height=48, rotation=rotation, marker=True)
    v = sample_video(str(path), ClipSettings())
    frame = v.match_frames[0]
    assert frame.shape == (height, width, 3) and (v.width, v.height) == (width, height)
    assert v.rotation == rotation % 360
    h, w = frame.shape[:2]
    corners = {"top_left": frame[: h // 8, : w // 8], "top_right": frame[: h // 8, -w // 8:],
               "bottom_left": frame[-h // 8:, : w // 8], "bottom_right": frame[-h // 8:, -w // 8:]}
    bright = {k: float(c.mean()) for k, c in corners.items()}
    assert max(bright, key=bright.get) == marker_corner
    assert bright[marker_corner] > 200 and all(b < 60 for k, b in bright.items() if k != marker_corner)


def test_short_gops_seek_and_give_the_same_frames(make_video, frame_index):
    import av

    path = make_video("gop.mp4", 52, fps=10, gop=3)  # keyframe every 0.3 s: the decoder seeks
    with av.open(str(path)) as c:
        keyframes = [e for e in c.streams.video[0].index_entries if e.is_keyframe]
    assert len(keyframes) >= 15
    v = sample_video(str(path), ClipSettings())
    assert indices(v, frame_index) == [0, 10, 20, 30, 40, 50]
    assert np.allclose(v.timestamps, [0, 1, 2, 3, 4, 5])


def test_truncated_file_without_index_is_unreadable(make_video, tmp_path):
    data = make_video("full.mp4", 30, fps=10).read_bytes()  # index (moov) at the end, as recorders write
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError) as e:
        sample_video(str(cut), ClipSettings())
    assert e.value.reason == "unreadable" and e.value.stage == "decode" and "cut.mp4" in str(e.value)


def test_truncated_streamable_file_keeps_the_good_seconds(make_video, tmp_path, frame_index):
    data = make_video("full.mp4", 50, fps=10, faststart=True, width=160, height=128).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.55)])
    v = sample_video(str(cut), ClipSettings())
    assert v.truncated and v.warnings
    assert 1 <= v.n_seconds < 5
    assert indices(v, frame_index) == [10 * k for k in range(v.n_seconds)]


def test_truncated_video_fails_when_the_policy_says_so(make_video, tmp_path):
    data = make_video("full.mp4", 50, fps=10, faststart=True, width=160, height=128).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.55)])
    with pytest.raises(DecodeError) as e:
        sample_video(str(cut), ClipSettings(), decode=DecodeSettings(on_truncated="fail"))
    assert e.value.reason == "truncated" and "cut.mp4" in str(e.value) and "on_truncated" in str(e.value)


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_still_image_renamed_mp4_is_not_a_video(tmp_path, ext):
    import cv2

    img = (np.random.default_rng(1).random((120, 160, 3)) * 255).astype(np.uint8)
    still = tmp_path / f"photo{ext}"
    cv2.imwrite(str(still), img)
    fake = tmp_path / "photo.mp4"
    fake.write_bytes(still.read_bytes())
    with pytest.raises(DecodeError) as e:
        sample_video(str(fake), ClipSettings())
    assert e.value.reason == "format_not_allowed" and "photo.mp4" in str(e.value)
    assert "pipe" in str(e.value)  # names what the file really is (jpeg_pipe / png_pipe)


def test_a_single_frame_is_not_a_video(make_video):
    path = make_video("one.mp4", 1, fps=10)
    with pytest.raises(DecodeError) as e:
        sample_video(str(path), ClipSettings())
    assert e.value.reason == "too_few_frames"
    assert sample_video(str(path), ClipSettings(), decode=DecodeSettings(min_frames=1)).n_seconds == 1


def test_container_allow_list_is_configurable(make_video):
    path = str(make_video("v.mp4", 20, fps=10))
    with pytest.raises(DecodeError) as e:
        sample_video(path, ClipSettings(), decode=DecodeSettings(allowed_formats=["matroska", "webm"]))
    assert e.value.reason == "format_not_allowed" and "mov,mp4" in str(e.value)


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(DecodeError) as e:
        sample_video(str(p), ClipSettings())
    assert e.value.reason == "empty_file"


def test_text_file_renamed_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 50)
    with pytest.raises(DecodeError) as e:
        sample_video(str(p), ClipSettings())
    assert e.value.reason == "unreadable" and "notes.mp4" in str(e.value)


def test_audio_only_file_has_no_video_stream(tmp_path):
    import av
    from pe_media import _write_tone

    p = tmp_path / "voice.mp4"
    with av.open(str(p), "w") as c:
        _write_tone(c, c.add_stream("aac", rate=16000), 1.0)
    with pytest.raises(DecodeError) as e:
        sample_video(str(p), ClipSettings())
    assert e.value.reason == "no_video_stream"


def test_length_and_resolution_limits(make_video):
    path = str(make_video("v.mp4", 25, fps=10))
    with pytest.raises(DecodeError) as e:
        sample_video(path, ClipSettings(max_duration_s=2.0))
    assert e.value.reason == "too_long"
    with pytest.raises(DecodeError) as e:
        sample_video(path, ClipSettings(max_pixels=64 * 48 - 1))
    assert e.value.reason == "too_large"


def test_fetch_errors(make_video, tmp_path):
    path = make_video("v.mp4", 5)
    with pytest.raises(FetchError) as e:
        sample_video(str(tmp_path / "missing.mp4"), ClipSettings())
    assert (e.value.stage, e.value.reason) == ("fetch", "not_found")
    with pytest.raises(FetchError) as e:
        sample_video("s3://bucket/v.mp4", ClipSettings())
    assert e.value.reason == "scheme_not_allowed"
    with pytest.raises(FetchError) as e:
        sample_video(str(path), ClipSettings(), allowed_roots=[str(tmp_path / "elsewhere")])
    assert e.value.reason == "outside_allowed_roots"
    with pytest.raises(FetchError) as e:  # ".." cannot climb out of an allowed root
        sample_video(str(tmp_path / "inside" / ".." / "v.mp4"), ClipSettings(), allowed_roots=[str(tmp_path / "inside")])
    assert e.value.reason == "outside_allowed_roots"


@pytest.mark.parametrize("char", ["#", "?"])
def test_hash_and_question_mark_in_file_names(make_video, tmp_path, frame_index, char):
    """A plain path works as is; an unencoded file:// URI says how to encode them; an encoded one works."""
    import shutil
    import urllib.parse

    named = tmp_path / f"take{char}2.mp4"
    shutil.copy(make_video("v.mp4", 15), named)
    assert indices(sample_video(str(named), ClipSettings()), frame_index) == [0, 10]
    with pytest.raises(FetchError) as e:
        sample_video(f"file://{named}", ClipSettings())
    assert e.value.reason == "not_found" and "%23" in str(e.value) and "%3F" in str(e.value)
    encoded = "file://" + urllib.parse.quote(str(named))
    assert indices(sample_video(encoded, ClipSettings()), frame_index) == [0, 10]


def test_a_device_is_not_a_video_file():
    with pytest.raises(FetchError) as e:
        sample_video("/dev/zero", ClipSettings())
    assert e.value.reason == "not_found" and "not a regular file" in str(e.value)
    assert "does not exist" not in str(e.value)


def test_file_uri_and_fsspec_filesystem(make_video, tmp_path, frame_index):
    import fsspec

    path = make_video("v.mp4", 15)
    v = sample_video(path.as_uri(), ClipSettings(), allowed_roots=[str(tmp_path)])
    assert indices(v, frame_index) == [0, 10]
    fs = fsspec.filesystem("memory")
    fs.pipe("/bucket/v.mp4", path.read_bytes())
    v = sample_video("memory://bucket/v.mp4", ClipSettings(), allowed_schemes=["memory"],
                     allowed_roots=["memory://bucket"])
    assert indices(v, frame_index) == [0, 10]
    with pytest.raises(FetchError) as e:
        sample_video("memory://bucket/none.mp4", ClipSettings(), allowed_schemes=["memory"])
    assert e.value.reason == "not_found"


def test_errors_keep_stage_and_reason_when_pickled():
    err = pickle.loads(pickle.dumps(DecodeError("zero_frames", "x.mp4: no video frame", uri="x.mp4")))
    assert isinstance(err, PEInputError) and (err.stage, err.reason, err.message, err.uri) == \
        ("decode", "zero_frames", "x.mp4: no video frame", "x.mp4")


def test_clip_tensor_layout_and_range():
    frames = np.zeros((2, 4, 5, 3), np.uint8)
    frames[1, 0, 0] = [255, 0, 51]
    t = clip_tensor(frames)
    assert t.shape == (2, 3, 4, 5) and t.dtype == torch.float32
    assert t[1, :, 0, 0].tolist() == pytest.approx([1.0, 0.0, 0.2])


def test_a_container_claiming_far_more_than_decodes_is_flagged_truncated(tmp_path):
    from tests.hostile_media import claims_hours_mp4

    path = claims_hours_mp4(tmp_path / "claims-4h.mp4", hours=4)  # 2 s of video; its audio track claims 4 h
    v = sample_video(path, ClipSettings(max_seconds=10))
    assert v.n_seconds == 2 and v.truncated
    assert v.warnings == ["decodable video ends at 2.00 s, the container states 14400.00 s"]
    with pytest.raises(DecodeError) as e:
        sample_video(path, ClipSettings(max_seconds=10), decode=DecodeSettings(on_truncated="fail"))
    assert e.value.reason == "truncated"


def test_frames_below_the_minimum_side_are_refused_with_their_own_reason(tmp_path, make_video):
    from tests.hostile_media import one_pixel_video

    path = one_pixel_video(tmp_path / "one-pixel.mp4")
    with pytest.raises(DecodeError, match=r"1x1 is below decode\.min_frame_side = 16") as e:
        sample_video(path, ClipSettings())
    assert (e.value.stage, e.value.reason) == ("decode", "too_small")
    assert sample_video(path, ClipSettings(), decode=DecodeSettings(min_frame_side=1)).n_seconds == 3
    small = str(make_video("small.mp4", 10, fps=10, width=64, height=48))
    with pytest.raises(DecodeError, match="too small"):
        sample_video(small, ClipSettings(), decode=DecodeSettings(min_frame_side=49))
    assert sample_video(small, ClipSettings(), decode=DecodeSettings(min_frame_side=48)).n_seconds == 1
