"""Edits of a sample video's storyboard, for re-rendering a video as an advertiser would re-cut it.

:func:`show_product` returns a copy of a :class:`~jobs.synth.storyboard.VideoPlan` whose product is shown, held
and moving (the storyboard's own ``held`` track: swung and turned through the centre of the frame), in given
seconds. Nothing about the world changes: the renderer and the truth rules (:mod:`jobs.synth.truth`) are the
same, so the edited video's true product engagement is measured as any other video's.

The edit's tracks come first in the plan's ``tracks``: the render loop draws the first track that covers a
frame, so inside the edited seconds the edit replaces whatever product was there, and outside them every
original track is untouched (same keys, same span, same brightness ramp) — every frame outside the edited
seconds is byte-identical to the unedited video's (tests/jobs/test_synth_edit.py renders both and compares).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from jobs.synth.storyboard import VideoPlan, _held_track

__all__ = ["show_product", "edited_frames"]


def _runs(seconds: Sequence[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s in sorted(set(int(s) for s in seconds)):
        if out and s == out[-1][1]:
            out[-1] = (out[-1][0], s + 1)
        else:
            out.append((s, s + 1))
    return out


def edited_frames(plan: VideoPlan, seconds: Sequence[int]) -> list[tuple[int, int]]:
    """Frame spans [start, end) of the video seconds ``seconds`` (second s: frames [s·fps, (s+1)·fps))."""
    return [(a * plan.fps, min(b * plan.fps, plan.n_frames)) for a, b in _runs(seconds)
            if a * plan.fps < plan.n_frames]


def show_product(plan: VideoPlan, seconds: Sequence[int], rng: np.random.Generator, product_aspect: float
                 ) -> VideoPlan:
    """``plan`` with the product shown, held and moving, in video ``seconds`` (a held track per run of
    consecutive seconds, drawn with ``rng``); ``product_aspect``: the listing's height / width. Seconds past
    the video's end are ignored; an empty list gives the plan unchanged."""
    spans = edited_frames(plan, seconds)
    if not spans:
        return plan
    added = [_held_track(rng, a, b, plan.fps, product_aspect) for a, b in spans]
    return dataclasses.replace(plan, tracks=tuple(added) + plan.tracks)
