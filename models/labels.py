"""Training labels and the train/validation/test split, fitted so that no held-out video shapes a training label.

One row per labelled video (pandas; a campaign has hundreds to thousands) ─► split by influencer ─► label::

    split   every influencer's videos go to ONE split: influencers are ordered by u = SHA-256("seed:influencer")
            and taken in that order into test until it holds ≥ test_fraction of the videos, then into
            validation (≥ val_fraction), the rest into train. Deterministic; a video without an influencer is
            its own group.
    label   y = log1p(count) (shares or likes);
            *_resid_influencer: r = y − mean(y over the influencer's videos) — the within (fixed effects)
            transformation. Every influencer lies in one split, so a video's fixed effect is estimated from
            videos of its own split only: a test label never uses a training video and vice versa.
            Influencers with one video (and videos without an influencer) have r ≡ 0: no within-influencer
            variation, no label information after fixed effects, so they are left out (counted in
            ``single_video_excluded``).
            then standardised with the mean and SD of r over the TRAINING rows only, applied to every split.

Evaluation in the same space: a residualised label says how a video does *relative to its influencer*, so
predictions are compared after the same within transformation (:func:`within_groups` on the held-out
influencer's own predictions — no label involved): the influencer's level, which no model can know for an
influencer it never saw, is absorbed as the paper's fixed effects absorb it.

The old job demeaned over all videos and split by video, so a test label was minus the sum of its siblings'
labels in train (three videos per influencer) and standardisation used test rows.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from pe_udfs.errors import PEError

__all__ = ["LABEL_COUNTS", "LabelError", "group_key", "split_by_group", "build_labels", "within_groups",
           "is_within_influencer"]

LABEL_COUNTS = {"log1p_shares_resid_influencer": "shares", "log1p_shares": "shares", "log1p_likes": "likes"}
SPLITS = ("train", "val", "test")


class LabelError(PEError):
    """The labelled videos cannot give a usable training label (the message says why)."""

    stage = "train"


def group_key(df: pd.DataFrame) -> pd.Series:
    """The split unit of each row: its influencer_id, or ``video:<video_id>`` when it has none."""
    inf = df["influencer_id"].astype(object)
    return inf.where(inf.notna() & (inf.astype(str) != ""), "video:" + df["video_id"].astype(str)).astype(str)


def _u(seed: int, key: str) -> float:
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 2**32


def split_by_group(df: pd.DataFrame, *, seed: int, val_fraction: float, test_fraction: float) -> pd.Series:
    """'train' | 'val' | 'test' per row of ``df`` (needs video_id, influencer_id), whole influencers at a time.

    Groups in order of their hash fill test up to ``test_fraction`` of the rows, then validation up to
    ``val_fraction``; the group that crosses a target still goes in, so the held-out sets are never smaller
    than asked. The order of influencers depends only on ``seed`` and their ids."""
    if val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction + test_fraction must be below 1")
    keys = group_key(df)
    sizes = keys.value_counts()
    order = sorted(sizes.index, key=lambda k: (_u(seed, k), k))
    n = len(df)
    split_of, taken = {}, 0
    for k in order:
        split_of[k] = ("test" if taken < test_fraction * n else
                       "val" if taken < (test_fraction + val_fraction) * n else "train")
        taken += int(sizes[k])
    return keys.map(split_of).rename("split")


def build_labels(df: pd.DataFrame, definition: str, split: pd.Series) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``df`` (video_id, influencer_id, the definition's count column) with ``split`` per row → the rows that
    carry a label, with columns ``label`` and ``split`` added, and the statistics to log (definition, count
    column, n, train mean/SD of the residual before standardising, videos per split, excluded videos).

    Raises :class:`LabelError` when no training row varies (nothing to standardise)."""
    if definition not in LABEL_COUNTS:
        raise LabelError("unknown_label", f"unknown label definition {definition!r}; known: {', '.join(LABEL_COUNTS)}")
    count = LABEL_COUNTS[definition]
    d = df.assign(split=split.values)
    valid = d[count].notna() & (pd.to_numeric(d[count], errors="coerce") >= 0)
    d = d[valid].copy()
    y = np.log1p(d[count].astype(np.float64))
    single = 0
    if is_within_influencer(definition):
        keys = group_key(d)
        sizes = keys.map(keys.value_counts())
        r = y - y.groupby(keys).transform("mean")
        keep = sizes >= 2
        single = int((~keep).sum())
        d, r = d[keep], r[keep]
    else:
        r = y
    train = r[d["split"] == "train"]
    mean, sd = float(train.mean()) if len(train) else float("nan"), float(train.std(ddof=1)) if len(train) > 1 else 0.0
    if not np.isfinite(sd) or sd == 0:
        raise LabelError("too_few_videos", f"label '{definition}' needs at least 2 training videos with different {count} "
                         f"(found {len(train)} training videos{', after fixed effects' if single or len(r) else ''})")
    out = d.assign(label=(r - mean) / sd)
    info = {"definition": definition, "count_column": count, "n": int(len(out)), "mean": mean, "sd": sd,
            "standardised_on": "train", "split_unit": "influencer",
            "single_video_excluded": single, "invalid_count_excluded": int((~valid).sum()),
            **{f"n_{s}": int((out["split"] == s).sum()) for s in SPLITS}}
    return out, info


def is_within_influencer(definition: str) -> bool:
    """True for labels residualised on influencer fixed effects (compared within influencer)."""
    return definition.endswith("_resid_influencer")


def within_groups(values: np.ndarray, groups: list[str]) -> np.ndarray:
    """``values`` (N,) minus the mean of their group (the within transformation), e.g. predictions of held-out
    videos minus the mean prediction of the same influencer's held-out videos."""
    v = pd.Series(np.asarray(values, dtype=np.float64))
    return (v - v.groupby(np.asarray(groups)).transform("mean")).to_numpy()
