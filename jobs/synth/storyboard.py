"""The storyboard of one sample video: its shots, where the product is on screen, captions and lighting.

A :class:`VideoPlan` is drawn from a seeded random generator and is all the renderer needs, so the same
seed gives the same video. Positions and sizes are fractions of the frame (resolution independent);
times are frame indices at the video's fps.

Scenarios (the paper's cases, chosen so that the product's size on screen does not tell how much of the
engagement falls on it; :mod:`jobs.synth.truth` says what drives engagement):

* ``hero`` — the product is shown large, near the centre, moving and turning, most of the video;
* ``prop`` — a large, clearly visible product stands still beside the influencer, who talks to the camera
  (a large face) between quick cuts: big on screen, but nobody engages with it;
* ``held`` — a small product carries the video: swung, turned and moved through the centre of the frame
  over background shots or a small window of the influencer;
* ``wrong_reason`` — the influencer talks to the camera (a large face) while the product sits small and
  still in a corner: engaging, but not because of the product;
* ``occluded`` — the product is shown moving but partly hidden behind the influencer's window and stickers;
* ``mixed`` — the product comes and goes (enters, is shown, passes across, leaves) between other shots;
* ``no_product`` — the product never appears;
* ``turning`` (opt-in, :data:`OPT_IN_SCENARIOS`: never part of the default mix) — the product is shown at
  mid size and turns so that its side panel (the seller's second listing photo) faces the camera for part of
  each appearance, then turns back.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jobs.synth.footage import BACKGROUND_KEYS

SCENARIOS: tuple[str, ...] = ("hero", "prop", "held", "wrong_reason", "occluded", "mixed", "no_product")
#: scenarios a campaign uses only when asked for (``CampaignSpec.scenario``)
OPT_IN_SCENARIOS: tuple[str, ...] = ("turning",)
LAYOUTS: tuple[str, ...] = ("talk", "greenscreen", "broll")
#: people whose footage is too small for a full-frame talk shot: always shown in a window over a background
SMALL_FOOTAGE = frozenset({"carphone"})


@dataclass(frozen=True)
class Shot:
    """Frames [start, end) of one continuous shot.

    ``layout``: ``talk`` (the person's footage fills the frame), ``greenscreen`` (a background with the person
    in an oval window) or ``broll`` (background only). Camera parameters are fractions of the frame.
    """

    start: int
    end: int
    layout: str
    person: str | None
    background: str | None
    zoom: float = 1.0  # talk: how far the camera is zoomed in (1 = the footage just covers the frame)
    sway: tuple[float, float, float] = (0.0, 0.0, 1.0)  # talk: hand-held sway amplitude x, y (frame fractions), period (s)
    drift: tuple[float, float] = (0.0, 0.0)  # talk: slow camera drift over the shot, x, y (frame fractions)
    pan: tuple[float, float, float, float] = (0.5, 0.5, 0.0, 0.0)  # background: start u, v in [0,1]; du, dv /s
    clip_offset: float = 0.0  # background/person clips: start position, fraction of the clip
    window: tuple[float, float, float] = (0.5, 0.3, 0.4)  # greenscreen: centre x, y, height (frame fractions)


@dataclass(frozen=True)
class ProductTrack:
    """The product on screen in frames [start, end).

    ``keys`` (K, 7) float64 rows: frame, centre x, centre y (frame fractions), width (fraction of the frame
    width), yaw, pitch, roll (degrees); the pose between keys is a smoothstep interpolation.
    ``behind_person``: drawn under the person's window (occluded by it where they overlap).
    ``light`` (start, end): the product's own brightness gain, linearly interpolated.
    ``view``: which listing photo is drawn, 'front' or 'side' (the turning scenario's side panel).
    """

    start: int
    end: int
    style: str  # hero | corner | pass | prop | held | turn
    keys: np.ndarray
    behind_person: bool = False
    light: tuple[float, float] = (1.0, 1.0)
    view: str = "front"


@dataclass(frozen=True)
class Caption:
    """A TikTok-style caption box (dark, semi-opaque, white text) in frames [start, end); may occlude."""

    start: int
    end: int
    box: tuple[float, float, float, float]  # x, y, w, h (frame fractions)
    text: str
    opacity: float = 0.85


@dataclass(frozen=True)
class VideoPlan:
    video_id: str
    width: int
    height: int
    fps: int
    n_frames: int
    scenario: str
    shots: tuple[Shot, ...]
    tracks: tuple[ProductTrack, ...]
    captions: tuple[Caption, ...]
    #: (K, 4) rows: frame, global gain, red cast, blue cast (multipliers); linear interpolation
    lighting: np.ndarray = field(repr=False)
    audio: bool = True

    @property
    def n_seconds(self) -> int:
        """Number of sampled seconds (frames shown at t = 0, 1, 2 ... < duration)."""
        return -(-self.n_frames // self.fps)


_CAPTION_TEXTS = (
    "wait for it...", "you NEED this", "link in bio", "honest review", "day 3 of trying it", "POV: it arrived",
    "unboxing time!", "best buy of 2024?", "watch till the end", "my new favourite", "not sponsored (kidding)",
    "would you try it?", "restock alert", "gift idea", "comment your pick",
)


def _split_shots(rng: np.random.Generator, n_frames: int, fps: int, min_s: float, max_s: float) -> list[tuple[int, int]]:
    cuts, t = [], 0
    while t < n_frames:
        length = int(round(rng.uniform(min_s, max_s) * fps))
        end = min(n_frames, t + max(fps, length))
        if n_frames - end < fps:  # no shot shorter than a second at the end
            end = n_frames
        cuts.append((t, end))
        t = end
    return cuts


def _layout_weights(scenario: str) -> list[float]:
    return {  # talk, greenscreen, broll
        "hero": [0.25, 0.35, 0.40],
        "prop": [1.0, 0.0, 0.0],
        "held": [0.0, 0.35, 0.65],
        "wrong_reason": [0.80, 0.20, 0.0],
        "occluded": [0.0, 1.0, 0.0],
        "mixed": [0.35, 0.35, 0.30],
        "no_product": [0.40, 0.30, 0.30],
        "turning": [0.30, 0.35, 0.35],
    }[scenario]


def _make_shot(rng: np.random.Generator, start: int, end: int, layout: str, person: str, *,
               backgrounds: tuple[str, ...] = BACKGROUND_KEYS, close_up: bool = False, small_window: bool = False
               ) -> Shot:
    """One shot; ``close_up``: talk shots zoomed in on the face; ``small_window``: greenscreen windows small;
    the background, if any, one of ``backgrounds``."""
    if layout == "talk" and person in SMALL_FOOTAGE:
        layout = "greenscreen"
    background = None if layout == "talk" else str(rng.choice(backgrounds))
    zoom = float(rng.uniform(1.35, 1.7) if close_up else rng.uniform(1.0, 1.3))
    sway = (rng.uniform(0.004, 0.015), rng.uniform(0.003, 0.01), rng.uniform(1.5, 4.0))
    drift = (rng.uniform(-0.06, 0.06), rng.uniform(-0.04, 0.04))
    pan = (rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(-0.08, 0.08), rng.uniform(-0.05, 0.05))
    big = person in SMALL_FOOTAGE and layout == "greenscreen" and not small_window
    height = rng.uniform(0.2, 0.26) if small_window else rng.uniform(0.45, 0.6) if big else rng.uniform(0.32, 0.45)
    window = (rng.uniform(0.35, 0.65), rng.uniform(0.25, 0.4) if not small_window else rng.uniform(0.14, 0.2), height)
    return Shot(start, end, layout, person if layout != "broll" else None, background, zoom, sway, drift, pan,
                float(rng.uniform(0, 1)), window)


def _hero_track(rng: np.random.Generator, start: int, end: int, fps: int, aspect: float) -> ProductTrack:
    """Large, central, moving and turning; slides in from an edge and out again."""
    keys = []
    side = rng.choice([-1.0, 1.0])
    enter = min(end - start, int(rng.uniform(0.3, 0.6) * fps))
    w_max = min(0.72, 0.62 / aspect)  # keep the product's height under ~62% of a 9:16 frame
    w = rng.uniform(0.45, w_max)
    keys.append((start, 0.5 + side * 0.95, rng.uniform(0.45, 0.65), w, rng.uniform(-20, 20), 0.0, 0.0))
    t = start + enter
    while t < end:
        keys.append((t, rng.uniform(0.32, 0.68), rng.uniform(0.38, 0.66), float(np.clip(w * rng.uniform(0.75, 1.2), 0.4, w_max)),
                     rng.uniform(-35, 35), rng.uniform(-22, 22), rng.uniform(-14, 14)))
        t += int(rng.uniform(0.8, 2.0) * fps)
    if rng.uniform() < 0.5 and end - start > 3 * fps:  # leaves the frame at the end instead of a hard cut
        keys.append((end - 1, 0.5 - side * 0.95, keys[-1][2], keys[-1][3], 0.0, 0.0, 0.0))
    else:
        keys.append((end - 1, *keys[-1][1:]))
    return ProductTrack(start, end, "hero", np.array(keys, np.float64), light=(rng.uniform(0.8, 1.15), rng.uniform(0.8, 1.15)))


def _corner_track(rng: np.random.Generator, start: int, end: int, fps: int, aspect: float) -> ProductTrack:
    """Small and nearly still in a lower corner (or the top right), the 'engaging for the wrong reason' case."""
    cx, cy = [(0.8, 0.8), (0.2, 0.8), (0.8, 0.22)][int(rng.integers(0, 3))]
    w = rng.uniform(0.24, 0.32)
    cx = 0.5 + (cx - 0.5) * (1 - w) / 0.6  # keep it fully inside the frame
    yaw, pitch = rng.uniform(-12, 12), rng.uniform(-8, 8)
    keys = [(start, cx, cy, w, yaw, pitch, 0.0)]
    t = start + 2 * fps
    while t < end:
        keys.append((t, cx + rng.uniform(-0.015, 0.015), cy + rng.uniform(-0.01, 0.01), w * rng.uniform(0.95, 1.05),
                     yaw + rng.uniform(-4, 4), pitch + rng.uniform(-3, 3), rng.uniform(-3, 3)))
        t += 2 * fps
    keys.append((end - 1, *keys[-1][1:]))
    return ProductTrack(start, end, "corner", np.array(keys, np.float64), light=(rng.uniform(0.85, 1.1), rng.uniform(0.85, 1.1)))


def _pass_track(rng: np.random.Generator, start: int, end: int, fps: int, aspect: float) -> ProductTrack:
    """Carried across the frame from one side to the other, turning on the way."""
    side = rng.choice([-1.0, 1.0])
    w = rng.uniform(0.36, min(0.52, 0.55 / aspect))
    y0, y1 = rng.uniform(0.35, 0.7), rng.uniform(0.35, 0.7)
    mid = (start + end) // 2
    keys = [(start, 0.5 + side * 0.85, y0, w, -side * 30, rng.uniform(-10, 10), 0.0),
            (mid, 0.5 + rng.uniform(-0.08, 0.08), (y0 + y1) / 2, w * rng.uniform(1.0, 1.25), 0.0, rng.uniform(-15, 15), rng.uniform(-10, 10)),
            (end - 1, 0.5 - side * 0.85, y1, w, side * 30, rng.uniform(-10, 10), 0.0)]
    return ProductTrack(start, end, "pass", np.array(keys, np.float64), light=(rng.uniform(0.85, 1.1), rng.uniform(0.85, 1.1)))


def _prop_track(rng: np.random.Generator, start: int, end: int, fps: int, aspect: float) -> ProductTrack:
    """Large and standing still in the lower half, beside the talking influencer (no turning, no motion)."""
    w = rng.uniform(0.34, max(0.35, min(0.52, 0.7 / aspect)))  # its height under ~40% of a 9:16 frame
    cx = 0.5 + rng.choice([-1.0, 1.0]) * rng.uniform(0.12, 0.5 - w / 2)
    cy = 1.0 - (w * aspect * 9 / 16) / 2 - rng.uniform(0.02, 0.08)  # its bottom near the frame's (9:16)
    yaw, pitch = rng.uniform(-10, 10), rng.uniform(-6, 6)
    keys = [(start, cx, cy, w, yaw, pitch, 0.0), (end - 1, cx, cy, w, yaw, pitch, 0.0)]
    return ProductTrack(start, end, "prop", np.array(keys, np.float64), light=(rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1)))


def _held_track(rng: np.random.Generator, start: int, end: int, fps: int, aspect: float) -> ProductTrack:
    """Small, swung and turned through the centre of the frame (a new pose every 0.4-0.8 s)."""
    w = rng.uniform(0.16, 0.26)
    keys, t = [], start
    while t < end:
        keys.append((t, rng.uniform(0.3, 0.7), rng.uniform(0.32, 0.68), w * rng.uniform(0.85, 1.15),
                     rng.uniform(-40, 40), rng.uniform(-25, 25), rng.uniform(-25, 25)))
        t += int(rng.uniform(0.4, 0.8) * fps)
    keys.append((end - 1, *keys[-1][1:]))
    return ProductTrack(start, end, "held", np.array(keys, np.float64), light=(rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1)))


def _turning_tracks(rng: np.random.Generator, start: int, end: int, fps: int, aspect: float,
                    side_aspect: float) -> list[ProductTrack]:
    """One appearance of a turning product: front, a quarter turn to the side panel (held 1.5-4 s, facing
    the camera), and, when there is time, a turn back to the front. Contiguous tracks, one per face; the
    product keeps its on-screen height across the turn and drifts gently (a matcher's fair case)."""
    n = end - start
    sign = float(rng.choice([-1.0, 1.0]))
    w = rng.uniform(0.4, min(0.56, 0.55 / aspect))  # front width; its height stays under ~55% of a 9:16 frame
    widths = {"front": w, "side": min(0.72, w * aspect / side_aspect)}
    cuts = [start, start + int(n * rng.uniform(0.3, 0.45))]
    cuts.append(min(end, cuts[-1] + max(fps, int(rng.uniform(1.5, 4.0) * fps))))
    if end - cuts[-1] < fps:
        cuts[-1] = end
    if cuts[-1] < end:
        cuts.append(end)
    cx, cy, light = rng.uniform(0.4, 0.6), rng.uniform(0.42, 0.6), (rng.uniform(0.85, 1.1), rng.uniform(0.85, 1.1))
    tracks = []
    for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
        view = "side" if k == 1 else "front"
        turn = int(min(0.5 * fps, (b - a) / 3))  # frames spent turning at each end of a face's time
        keys = []
        for f, yaw in ((a, -sign * 55.0 if k else rng.uniform(-15, 15)), (a + turn, rng.uniform(-12, 12)),
                       (b - 1 - turn, rng.uniform(-12, 12)), (b - 1, sign * 55.0 if b < end else rng.uniform(-15, 15))):
            cx, cy = float(np.clip(cx + rng.uniform(-0.05, 0.05), 0.35, 0.65)), float(np.clip(cy + rng.uniform(-0.04, 0.04), 0.38, 0.62))
            keys.append((f, cx, cy, widths[view], yaw, rng.uniform(-8, 8), rng.uniform(-6, 6)))
        tracks.append(ProductTrack(a, b, "turn", np.array(keys, np.float64), light=light, view=view))
    return tracks


def _track_intervals(rng: np.random.Generator, n_frames: int, fps: int, cover: tuple[float, float],
                     min_len_s: float, max_len_s: float) -> list[tuple[int, int]]:
    """Disjoint intervals covering about ``cover`` of the video, each at least a second long."""
    target = rng.uniform(*cover) * n_frames
    out, free_start, total = [], int(rng.uniform(0, 0.25) * n_frames), 0
    while total < target and free_start < n_frames - fps:
        length = int(min(max(fps, rng.uniform(min_len_s, max_len_s) * fps), n_frames - free_start, target - total + fps))
        out.append((free_start, free_start + length))
        total += length
        free_start += length + int(rng.uniform(1.0, 4.0) * fps)
    return out


def plan_video(rng: np.random.Generator, *, video_id: str, scenario: str, person: str, n_seconds: int,
               width: int, height: int, fps: int, product_aspect: float, audio: bool = True,
               side_aspect: float | None = None, backgrounds: tuple[str, ...] = BACKGROUND_KEYS) -> VideoPlan:
    """Draw the storyboard of one video.

    ``backgrounds``: the background keys its shots may use (the influencer's cast, :mod:`jobs.synth.casting`).
    ``product_aspect`` is the listing photo's height / width (the product keeps it on screen);
    ``side_aspect`` the same for the side panel's photo (the turning scenario needs it).
    """
    if scenario not in SCENARIOS + OPT_IN_SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS + OPT_IN_SCENARIOS)}")
    if scenario == "turning" and side_aspect is None:
        raise ValueError("the turning scenario needs the side panel's aspect (side_aspect)")
    n_frames = n_seconds * fps
    layouts = np.array(LAYOUTS)
    close_up, small_window = scenario in ("prop", "wrong_reason"), scenario == "held"
    shot_s = (1.5, 3.5) if scenario == "prop" else (2.0, 7.0)  # prop: quick cuts keep the eye on the person
    shots = [_make_shot(rng, a, b, str(rng.choice(layouts, p=_layout_weights(scenario))), person,
                        backgrounds=backgrounds, close_up=close_up, small_window=small_window)
             for a, b in _split_shots(rng, n_frames, fps, *shot_s)]
    if scenario == "wrong_reason":  # the person must be on screen: no background-only shots
        shots = [s if s.layout != "broll" else _make_shot(rng, s.start, s.end, "talk", person, backgrounds=backgrounds)
                 for s in shots]

    tracks: list[ProductTrack] = []
    if scenario == "hero":
        for a, b in _track_intervals(rng, n_frames, fps, (0.6, 0.9), 3.0, 12.0):
            make = _pass_track if (b - a) <= 3 * fps and rng.uniform() < 0.4 else _hero_track
            tracks.append(make(rng, a, b, fps, product_aspect))
    elif scenario in ("wrong_reason", "prop"):
        a = int(rng.uniform(0, 0.15) * n_frames)
        b = n_frames - int(rng.uniform(0, 0.1) * n_frames)
        make = _corner_track if scenario == "wrong_reason" else _prop_track
        tracks.append(make(rng, a, max(b, min(n_frames, a + fps)), fps, product_aspect))
    elif scenario == "held":
        for a, b in _track_intervals(rng, n_frames, fps, (0.6, 0.9), 3.0, 12.0):
            tracks.append(_held_track(rng, a, b, fps, product_aspect))
    elif scenario == "occluded":
        for a, b in _track_intervals(rng, n_frames, fps, (0.5, 0.8), 3.0, 10.0):
            track = _hero_track(rng, a, b, fps, product_aspect)
            tracks.append(ProductTrack(track.start, track.end, track.style, track.keys, True, track.light))
    elif scenario == "turning":
        assert side_aspect is not None  # refused above without it
        for a, b in _track_intervals(rng, n_frames, fps, (0.6, 0.85), 4.0, 10.0):
            tracks.extend(_turning_tracks(rng, a, b, fps, product_aspect, side_aspect))
    elif scenario == "mixed":
        for a, b in _track_intervals(rng, n_frames, fps, (0.25, 0.55), 2.0, 6.0):
            make = _pass_track if rng.uniform() < 0.4 else _hero_track
            tracks.append(make(rng, a, b, fps, product_aspect))
    if scenario not in ("occluded", "prop", "turning"):
        tracks = [_maybe_behind_person(rng, t, shots) for t in tracks]

    captions = _captions(rng, n_frames, fps, tracks, width, height, product_aspect)
    lighting = _lighting(rng, n_frames, fps)
    return VideoPlan(video_id, width, height, fps, n_frames, scenario, tuple(shots), tuple(tracks),
                     tuple(captions), lighting, audio)


def _maybe_behind_person(rng: np.random.Generator, track: ProductTrack, shots: list[Shot]) -> ProductTrack:
    """Sometimes the product sits behind the person's window (partial occlusion in greenscreen shots)."""
    overlaps = any(s.layout == "greenscreen" and s.start < track.end and track.start < s.end for s in shots)
    if overlaps and track.style not in ("corner", "held") and rng.uniform() < 0.35:
        return ProductTrack(track.start, track.end, track.style, track.keys, True, track.light)
    return track


def _captions(rng: np.random.Generator, n_frames: int, fps: int, tracks: list[ProductTrack],
              width: int, height: int, aspect: float) -> list[Caption]:
    caps = []
    t = int(rng.uniform(0, 2) * fps)
    while t < n_frames - fps:  # ordinary captions in the top or bottom band
        length = int(rng.uniform(1.5, 4.0) * fps)
        y = rng.choice([0.08, 0.86])
        w = rng.uniform(0.5, 0.85)
        caps.append(Caption(t, min(n_frames, t + length), (0.5 - w / 2, float(y), w, 0.06), str(rng.choice(_CAPTION_TEXTS))))
        t += length + int(rng.uniform(2.0, 6.0) * fps)
    for tr in tracks:  # an occlusion event: a sticker covering part of the product for 1-2.5 s
        if tr.end - tr.start < 2 * fps or rng.uniform() > 0.5:
            continue
        a = int(rng.uniform(tr.start, tr.end - fps))
        b = min(tr.end, a + int(rng.uniform(1.0, 2.5) * fps))
        k = int(np.clip(np.searchsorted(tr.keys[:, 0], (a + b) / 2), 0, len(tr.keys) - 1))
        _, cx, cy, w, *_ = tr.keys[k]
        h = w * aspect * width / height
        cover = rng.uniform(0.2, 0.4)  # share of the product's width the sticker hides
        side = rng.choice([-1.0, 1.0])
        bw = w * cover + 0.1  # reaches 0.1 of the frame beyond the product's right (or left) edge
        bx = cx + w / 2 - w * cover if side > 0 else cx - w / 2 + w * cover - bw
        caps.append(Caption(a, b, (float(bx), float(cy - h * 0.35), float(bw), float(h * 0.5)),
                            str(rng.choice(_CAPTION_TEXTS)), 0.92))
    return caps


def _lighting(rng: np.random.Generator, n_frames: int, fps: int) -> np.ndarray:
    keys, t = [], 0
    while t < n_frames:
        keys.append((t, rng.uniform(0.72, 1.15), rng.uniform(0.92, 1.08), rng.uniform(0.92, 1.08)))
        t += int(rng.uniform(2.0, 6.0) * fps)
    keys.append((n_frames - 1, *keys[-1][1:]))
    if rng.uniform() < 0.2 and n_frames > 3 * fps:  # a quick light change (lamp switched, cloud)
        f = int(rng.uniform(fps, n_frames - 2 * fps))
        keys += [(f, 1.0, 1.0, 1.0), (f + 3, 0.6, 1.0, 1.05), (f + fps, 0.62, 1.0, 1.05), (f + fps + 3, 1.0, 1.0, 1.0)]
        keys.sort(key=lambda k: k[0])
        dedup = {int(k[0]): k for k in keys}
        keys = [dedup[k] for k in sorted(dedup)]
    return np.array(keys, np.float64)
