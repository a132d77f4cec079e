"""Engagement counts (views, likes, comments, shares) from each video's true engagement and its influencer.

Model (z = (true_engagement - 2.5) / 1.0, the video's standardised visual drive, see
:mod:`jobs.synth.truth`); per influencer i: followers F_i ~ logNormal(12, 1.1), reach effect
u_i ~ N(0, 0.4), audience-engagement effect v_i ~ N(0, 0.35); per video independent noise e ~ N(0, sd):

* log views  = 0.9 log F_i - 1 + 0.5 z + u_i + e(0.35)
* shares     ~ Binomial(views, min(0.2, exp(-5.0 + 0.8 z + v_i + e(0.25))))
* likes      ~ Binomial(views, min(0.6, exp(-2.9 + 0.5 z + v_i + e(0.25))))
* comments   ~ Binomial(views, min(0.1, exp(-5.3 + 0.45 z + 0.8 v_i + e(0.3))))

so counts are non-negative and shares, likes, comments <= views; within an influencer, log shares rise
with the video's visual drive, which is what the engagement model has to learn from the frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

E_REF, E_SCALE = 2.5, 1.0


@dataclass(frozen=True)
class Influencer:
    influencer_id: str
    person: str  # the PersonAsset key whose footage shows them
    followers: int
    reach: float  # u_i
    affinity: float  # v_i


def draw_influencers(rng: np.random.Generator, ids: list[str], persons: tuple[str, ...]) -> list[Influencer]:
    """Influencers with followers and random effects; each is shown by one person's footage."""
    out = []
    for k, iid in enumerate(ids):
        out.append(Influencer(iid, persons[k % len(persons)], int(round(np.exp(rng.normal(12.0, 1.1)))),
                              float(rng.normal(0, 0.4)), float(rng.normal(0, 0.35))))
    return out


def engagement_counts(rng: np.random.Generator, true_engagement: np.ndarray, influencers: list[Influencer]) -> pd.DataFrame:
    """Counts for videos with ``true_engagement`` (n,) made by ``influencers`` (n, one per video).

    Returns a frame with columns views, likes, comments, shares (int64), one row per video, in order.
    """
    e = np.asarray(true_engagement, np.float64)
    n = len(e)
    if len(influencers) != n:
        raise ValueError(f"{n} videos but {len(influencers)} influencers")
    z = (e - E_REF) / E_SCALE
    followers = np.array([i.followers for i in influencers], np.float64)
    u = np.array([i.reach for i in influencers])
    v = np.array([i.affinity for i in influencers])
    views = np.maximum(1, np.round(np.exp(0.9 * np.log(followers) - 1.0 + 0.5 * z + u + rng.normal(0, 0.35, n)))).astype(np.int64)
    share_rate = np.minimum(0.2, np.exp(-5.0 + 0.8 * z + v + rng.normal(0, 0.25, n)))
    like_rate = np.minimum(0.6, np.exp(-2.9 + 0.5 * z + v + rng.normal(0, 0.25, n)))
    comment_rate = np.minimum(0.1, np.exp(-5.3 + 0.45 * z + 0.8 * v + rng.normal(0, 0.3, n)))
    return pd.DataFrame({
        "views": views,
        "likes": rng.binomial(views, like_rate).astype(np.int64),
        "comments": rng.binomial(views, comment_rate).astype(np.int64),
        "shares": rng.binomial(views, share_rate).astype(np.int64),
    })
