"""Edit advice for one video from its per-second masses (pure: no Spark, no tables, no model).

    pe_seconds rows of one video (S rows: second, e_mass, pe_mass, p_mass[, e_grid g·g][, quad_224])
      └► missed moments  runs of seconds whose predicted engagement is high (≥ the video's ``peak_quantile``)
      │                  while the product is absent or holds < ``off_ratio`` × the video's own share of it
      │                  └► where the attention went: the engagement grid's peak in words (upper left, centre,
      │                     ...), "on a face" when OpenCV's Haar cascade finds a face there (frames optional)
      └► suggestions     registered edit kinds (``EDITS``), each with the PE it would reach, recomputed from
                         the edited per-second masses by :func:`pe_udfs.pe_math.scores_from_sums`; ranked by
                         the gain in ``rank_by``, at most ``max_suggestions``

What an edit would reach is a prediction from the masses, not a measurement: a product shown in a second is
assumed to hold the video's own on-product share of that second's engagement (its seconds with a product
region: Σpe / Σe), at least ``reference_share``. ``bench/advice.py`` checks the advice by re-rendering edits
in the sample world.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd

from pe_udfs.errors import UsageError
from pe_udfs.pe_math import SecondSums, scores_from_sums
from pe_udfs.settings import AdviceSettings

__all__ = ["MissedMoment", "Suggestion", "VideoAdvice", "EditKind", "EDITS", "register_edit", "advise_video",
           "missed_moments", "region_words", "sums_from_seconds", "GRID_PIXELS"]

#: pixels of the grid the masses were summed over (pe_seconds: the 224 × 224 model frame)
GRID_PIXELS = 224 * 224


@dataclass(frozen=True)
class MissedMoment:
    """Seconds [start_s, end_s) of high predicted engagement off the product.

    e_share: the moment's share of the video's predicted engagement; product_shown: the product has a region
    in some of its seconds (then it is off the engaged region, else absent); region: where the engagement
    was, in words (None without a grid); peak_xy: that place on the 224 × 224 frame; on_face: a face was
    found there (None: no frame to look at)."""

    start_s: int
    end_s: int
    e_share: float
    product_shown: bool
    region: str | None
    peak_xy: tuple[float, float] | None
    on_face: bool | None = None

    @property
    def seconds(self) -> list[int]:
        return list(range(self.start_s, self.end_s))

    def words(self) -> str:
        where = ("on a face, " if self.on_face else "") + (self.region or "elsewhere in the frame")
        what = "the product is off the engaged region" if self.product_shown else "the product is not shown"
        return f"{self.start_s}-{self.end_s} s: {what}; attention goes to the {where}"


@dataclass(frozen=True)
class Suggestion:
    """One edit: ``kind`` (a name in ``EDITS``) changing ``seconds`` (video seconds), with the scores now
    and after (pe_share, pe_share_6s, in [0, 1]) and ``gain`` = after − now of the ranking score."""

    kind: str
    text: str
    seconds: tuple[int, ...]
    pe_share_now: float
    pe_share_after: float
    pe_share_6s_now: float
    pe_share_6s_after: float
    gain: float
    moment: int | None = None  # index into VideoAdvice.moments, for edits about one moment

    @property
    def start_s(self) -> int:
        return min(self.seconds)

    @property
    def end_s(self) -> int:
        return max(self.seconds) + 1


@dataclass
class VideoAdvice:
    """The advice for one video: its missed moments and up to ``max_suggestions`` suggestions, best first."""

    n_seconds: int
    pe_share: float
    pe_share_6s: float
    reference_share: float
    moments: list[MissedMoment] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def best_gain(self) -> float:
        return self.suggestions[0].gain if self.suggestions else 0.0


@dataclass(frozen=True)
class AdviceContext:
    """What every edit kind reads: the sums, the flagged seconds and moments, the settings."""

    sums: SecondSums
    flagged: np.ndarray  # (S,) bool: seconds of high engagement off the product
    moments: list[MissedMoment]
    reference_share: float
    product_area: float  # Σp of a second showing the product (the video's median, or 5 % of the frame)
    settings: AdviceSettings
    first_seconds: int

    def scores(self, sums: SecondSums) -> dict[str, float]:
        return scores_from_sums(sums, self.first_seconds)

    def suggestion(self, kind: str, text: str, seconds, after: SecondSums, moment: int | None = None) -> Suggestion:
        now, new = self.scores(self.sums), self.scores(after)
        key = self.settings.rank_by
        return Suggestion(kind, text, tuple(int(s) for s in seconds), now["pe_share"], new["pe_share"],
                          now["pe_share_6s"], new["pe_share_6s"], new[key] - now[key], moment)

    def shown(self, seconds) -> SecondSums:
        """The sums with the product shown in ``seconds``: it holds the reference share of their engagement
        (never less than it holds now)."""
        idx = np.asarray(list(seconds), int)
        pe, p = self.sums.pe_mass.copy(), self.sums.p_mass.copy()
        pe[idx] = np.maximum(pe[idx], self.sums.e_mass[idx] * self.reference_share)
        p[idx] = np.maximum(p[idx], self.product_area)
        return SecondSums(self.sums.e_mass, pe, p, self.sums.pixels)


class EditKind:
    """One kind of edit: ``suggest(ctx)`` → its candidate suggestions (any number; the caller ranks them)."""

    name: ClassVar[str]

    def suggest(self, ctx: AdviceContext) -> list[Suggestion]:
        raise NotImplementedError


#: name → edit kind, in the order the documentation lists them
EDITS: dict[str, EditKind] = {}


def register_edit(cls: type[EditKind]) -> type[EditKind]:
    EDITS[cls.name] = cls()
    return cls


@register_edit
class ShowProduct(EditKind):
    """Show the product in one missed moment (one suggestion per moment)."""

    name = "show_product"

    def suggest(self, ctx: AdviceContext) -> list[Suggestion]:
        out = []
        for i, m in enumerate(ctx.moments):
            verb = "move the product onto the action" if m.product_shown else "show the product, moving, near the centre"
            where = f" (attention is on the {'face, ' if m.on_face else ''}{m.region})" if m.region else ""
            out.append(ctx.suggestion(self.name, f"{m.start_s}-{m.end_s} s: {verb}{where}", m.seconds,
                                      ctx.shown(m.seconds), moment=i))
        return out


@register_edit
class ShowEarlier(EditKind):
    """Bring the product's first appearance forward: show it from 0 s up to its first second (within the
    first ``first_seconds`` s, the window the ``_6s`` scores and a viewer's first impression cover)."""

    name = "show_earlier"

    def suggest(self, ctx: AdviceContext) -> list[Suggestion]:
        present = np.flatnonzero(ctx.sums.p_mass > 0)
        first = int(present[0]) if len(present) else ctx.sums.n_seconds
        end = min(first, ctx.first_seconds, ctx.sums.n_seconds)
        if end <= 0:
            return []
        text = (f"0-{end} s: show the product from the start (it first appears at {first} s)" if len(present)
                else f"0-{end} s: show the product from the start (it is never found in the video)")
        return [ctx.suggestion(self.name, text, range(end), ctx.shown(range(end)))]


@register_edit
class CutOffProduct(EditKind):
    """Cut the flagged seconds (high engagement, product absent or off it), most engaging first, at most
    ``max_cut_share`` of the video."""

    name = "cut_off_product"

    def suggest(self, ctx: AdviceContext) -> list[Suggestion]:
        s = ctx.sums
        budget = int(np.floor(ctx.settings.max_cut_share * s.n_seconds))
        flagged = np.flatnonzero(ctx.flagged)
        if budget < 1 or not len(flagged):
            return []
        cut = np.sort(flagged[np.argsort(-s.e_mass[flagged], kind="stable")][:budget])
        keep = np.setdiff1d(np.arange(s.n_seconds), cut)
        after = SecondSums(s.e_mass[keep], s.pe_mass[keep], s.p_mass[keep], s.pixels)
        text = f"cut {len(cut)} s where the attention is away from the product ({_spans(cut)})"
        return [ctx.suggestion(self.name, text, cut, after)]


def _spans(seconds: np.ndarray) -> str:
    """'3-5 s, 9 s' for seconds [3, 4, 9] (ends exclusive, as the moments)."""
    runs = _runs(np.isin(np.arange(int(seconds.max()) + 1), seconds), gap=0)
    return ", ".join(f"{a}-{b} s" if b - a > 1 else f"{a} s" for a, b in runs)


def _runs(flags: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """[start, end) runs of True in ``flags`` (S,), runs at most ``gap`` seconds apart merged."""
    out: list[tuple[int, int]] = []
    for i in np.flatnonzero(flags):
        if out and i - out[-1][1] <= gap:
            out[-1] = (out[-1][0], int(i) + 1)
        else:
            out.append((int(i), int(i) + 1))
    return out


def sums_from_seconds(seconds: pd.DataFrame, pixels: int = GRID_PIXELS) -> SecondSums:
    """One video's ``pe_seconds`` rows (any order; columns second, e_mass, pe_mass, p_mass) → sums in the order
    of ``second``; missing masses (product-only scoring) are refused."""
    missing = {"second", "e_mass", "pe_mass", "p_mass"} - set(seconds.columns)
    if missing:
        raise UsageError("bad_seconds", f"per-second rows lack the columns {sorted(missing)}")
    rows = seconds.sort_values("second")
    if rows[["e_mass", "pe_mass", "p_mass"]].isna().any().any():
        raise UsageError("no_engagement", "the video was scored without an engagement model (product only): "
                         "no engagement masses to advise from")
    return SecondSums(rows["e_mass"].to_numpy(np.float64), rows["pe_mass"].to_numpy(np.float64),
                      rows["p_mass"].to_numpy(np.float64), pixels)


def region_words(grid: np.ndarray) -> tuple[str, tuple[float, float]]:
    """Where a (g, g) engagement grid peaks, in words ('upper left', 'centre', 'lower right', ...) and as
    (x, y) on the 224 × 224 frame. The grid is box-blurred over 3 × 3 cells first, so a single hot cell
    does not outvote a hot area."""
    g = np.asarray(grid, np.float64)
    k = g.shape[0]
    padded = np.pad(g, 1, mode="edge")
    blurred = np.stack([padded[i:i + k, j:j + k] for i in range(3) for j in range(3)]).mean(axis=0)
    # ties of the blurred grid (a lone hot cell blurs into a flat 3 × 3) go to the hottest cell itself
    r, c = np.unravel_index(int(np.argmax(blurred + 1e-9 * g)), g.shape)
    y, x = (r + 0.5) / k, (c + 0.5) / k
    row = "upper" if y < 1 / 3 else "lower" if y > 2 / 3 else ""
    col = "left" if x < 1 / 3 else "right" if x > 2 / 3 else "centre"
    words = f"{row} {col}".strip() if (row or col != "centre") else "centre"
    return words, (float(x * 224), float(y * 224))


def _on_face(frame: np.ndarray, xy: tuple[float, float]) -> bool:
    """A face (OpenCV's frontal Haar cascade) covers ``xy`` (on the 224 frame) of ``frame`` (H, W, 3) RGB."""
    import cv2

    from pe_udfs.baselines import detect_faces  # the cascade the face_distance baseline uses

    gray = cv2.cvtColor(np.ascontiguousarray(frame, np.uint8), cv2.COLOR_RGB2GRAY)
    h, w = gray.shape
    x, y = xy[0] * w / 224, xy[1] * h / 224
    for fx, fy, fw, fh in detect_faces(gray[None])[0]:
        # grown by a quarter: the grid's peak cell is coarse and the eyes draw gradients at the face's edge
        if fx - fw / 4 <= x <= fx + fw * 1.25 and fy - fh / 4 <= y <= fy + fh * 1.25:
            return True
    return False


def missed_moments(sums: SecondSums, settings: AdviceSettings, grids: np.ndarray | None = None,
                   frames: Mapping[int, np.ndarray] | None = None) -> tuple[np.ndarray, list[MissedMoment]]:
    """(flagged (S,) bool, moments): seconds whose e_mass is at least the video's ``peak_quantile`` and whose
    product is absent or holds under ``off_ratio`` × the video's share; runs of them (gaps up to
    ``max_gap_seconds`` merged) of at least ``min_moment_seconds``. ``grids`` (S, g, g) names the region;
    ``frames`` {second: (H, W, 3) RGB} lets a face be looked for at each moment's most engaged second."""
    e, pe, p = sums.e_mass, sums.pe_mass, sums.p_mass
    total = float(e.sum())
    if sums.n_seconds == 0 or total <= 0:
        return np.zeros(sums.n_seconds, bool), []
    video_share = float(pe.sum()) / total
    share = np.divide(pe, e, out=np.zeros_like(e), where=e > 0)
    peak = e >= np.quantile(e, settings.peak_quantile)
    off = (p <= 0) | (share < settings.off_ratio * video_share)
    flagged = peak & off & (e > 0)
    moments = []
    for a, b in _runs(flagged, settings.max_gap_seconds):
        if b - a < settings.min_moment_seconds:
            continue
        region = xy = None
        if grids is not None:
            w = e[a:b] / max(float(e[a:b].sum()), 1e-12)
            region, xy = region_words(np.tensordot(w, grids[a:b], axes=1))
        top = a + int(np.argmax(e[a:b]))
        on_face = _on_face(frames[top], xy) if frames is not None and top in frames and xy is not None else None
        moments.append(MissedMoment(a, b, float(e[a:b].sum()) / total, bool((p[a:b] > 0).any()), region, xy,
                                    on_face))
    return flagged, moments


def advise_video(seconds: pd.DataFrame, settings: AdviceSettings | None = None, *, first_seconds: int = 6,
                 frames: Mapping[int, np.ndarray] | None = None, pixels: int = GRID_PIXELS) -> VideoAdvice:
    """The advice for one video from its ``pe_seconds`` rows (columns second, e_mass, pe_mass, p_mass; e_grid
    (g·g floats, row-major) optional). ``frames`` {second: (H, W, 3) uint8 RGB}, optional, for the face check.
    ``first_seconds``: the ``_6s`` window (saliency.first_seconds). Raises UsageError for unusable rows or an
    edit kind that is not registered."""
    settings = settings or AdviceSettings()
    unknown = [k for k in settings.edits if k not in EDITS]
    if unknown:
        raise UsageError("unknown_edit", f"unknown edit kinds {unknown}; known: {', '.join(EDITS)}")
    sums = sums_from_seconds(seconds, pixels)
    grids = _grids(seconds)
    flagged, moments = missed_moments(sums, settings, grids, frames)
    on = sums.p_mass > 0
    own = float(sums.pe_mass[on].sum() / sums.e_mass[on].sum()) if on.any() and sums.e_mass[on].sum() > 0 else 0.0
    area = float(np.median(sums.p_mass[on])) if on.any() else 0.05 * pixels
    ctx = AdviceContext(sums, flagged, moments, max(own, settings.reference_share), area, settings, first_seconds)
    candidates = [s for kind in settings.edits for s in EDITS[kind].suggest(ctx) if s.gain >= settings.min_gain]
    candidates.sort(key=lambda s: -s.gain)
    now = scores_from_sums(sums, first_seconds)
    return VideoAdvice(sums.n_seconds, now["pe_share"], now["pe_share_6s"], ctx.reference_share, moments,
                       candidates[: settings.max_suggestions])


def _grids(seconds: pd.DataFrame) -> np.ndarray | None:
    """(S, g, g) engagement grids in the order of ``second``, or None when any second lacks one."""
    if "e_grid" not in seconds.columns:
        return None
    cells: list[Any] = list(seconds.sort_values("second")["e_grid"])
    if not cells or any(c is None or len(c) == 0 for c in cells):
        return None
    g = int(round(len(cells[0]) ** 0.5))
    if g * g != len(cells[0]) or any(len(c) != g * g for c in cells):
        return None
    return np.stack([np.asarray(c, np.float64).reshape(g, g) for c in cells])
