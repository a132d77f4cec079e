"""Re-rendering an edited storyboard: only the edited seconds change."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from jobs.synth.edit import edited_frames, show_product
from jobs.synth.products import PRODUCT_KEYS, product_asset
from jobs.synth.render import render_video
from jobs.synth.storyboard import plan_video
from jobs.synth.truth import video_truth

FPS = 10


def _render(plan, product):
    digests = {}

    def hook(f, yuv):
        digests[f] = hashlib.sha256(yuv.tobytes()).hexdigest()

    rendered = render_video(plan, product.listing, product.alpha, None, frame_hook=hook)
    return digests, rendered


@pytest.mark.parametrize("scenario, seconds", [("wrong_reason", [2, 3]), ("no_product", [0, 4, 5])])
def test_every_unedited_frame_is_byte_identical_and_the_edited_ones_show_the_product(scenario, seconds):
    product = product_asset(PRODUCT_KEYS[0])
    aspect = product.alpha.shape[0] / product.alpha.shape[1]
    plan = plan_video(np.random.default_rng([5, 2, 0]), video_id="e", scenario=scenario, person="hopper",
                      n_seconds=6, width=180, height=320, fps=FPS, product_aspect=aspect, audio=False)
    edited = show_product(plan, seconds, np.random.default_rng(1), aspect)
    before, r0 = _render(plan, product)
    after, r1 = _render(edited, product)
    inside = {f for a, b in edited_frames(plan, seconds) for f in range(a, b)}
    assert inside == {f for s in seconds for f in range(s * FPS, (s + 1) * FPS)}
    assert len(before) == len(after) == plan.n_frames
    assert all(before[f] == after[f] for f in before if f not in inside)
    assert all(before[f] != after[f] for f in inside), "the edit shows the product in every edited frame"
    for s in seconds:
        assert r1.seconds[s].quad is not None and r1.seconds[s].view == "front"
    # the world's truth is measured on the edited video as on any other (its rules are not touched)
    t0 = video_truth(r0.seconds, 180, 320, product.alpha)
    t1 = video_truth(r1.seconds, 180, 320, product.alpha)
    assert [s.product_drive for i, s in enumerate(t0.seconds) if i not in seconds and i - 1 not in seconds] == \
        [s.product_drive for i, s in enumerate(t1.seconds) if i not in seconds and i - 1 not in seconds]


def test_no_seconds_or_seconds_past_the_end_leave_the_plan_as_it_is():
    product = product_asset(PRODUCT_KEYS[1])
    aspect = product.alpha.shape[0] / product.alpha.shape[1]
    plan = plan_video(np.random.default_rng(3), video_id="e", scenario="hero", person="hopper", n_seconds=3,
                      width=180, height=320, fps=FPS, product_aspect=aspect, audio=False)
    assert show_product(plan, [], np.random.default_rng(0), aspect) is plan
    assert show_product(plan, [7, 9], np.random.default_rng(0), aspect) is plan
