"""Hand-made sales panels with known answers for the jobs.analysis tests: a product-day panel whose lifts are
given (``synthetic_sales``) and lake-shaped frames whose lift is 40 · true PE (``lake_frames``)."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

START = dt.date(2024, 3, 1)


def rolling_from_daily(daily: np.ndarray) -> np.ndarray:
    """30-day rolling sums of ``daily`` whose unseen 29 days before day 0 equal day 0 — the one history for
    which the paper's imputation recovers the daily series exactly."""
    padded = np.concatenate([np.full(29, daily[0]), daily])
    return np.convolve(padded, np.ones(30), mode="valid")


def synthetic_sales(*, lifts: dict[str, float], n_controls: int = 12, days: int = 70, noise: float = 0.0,
                    search_effect: float = 2.0, seed: int = 0, gaps: bool = False) -> pd.DataFrame:
    """A product-day panel (build_panel's columns plus daily_sales) with daily sales
    α_i + γ_t + lift_i · post + search_effect · search + noise; treated products post from a product-specific
    day, controls never. With ``gaps`` a few days of each product are missing (the recursion still sees them
    forward-filled)."""
    rng = np.random.default_rng(seed)
    day_effect = 5 * np.sin(np.arange(days) / 4.0) + rng.normal(0, 1, days)
    rows = []
    ids = list(lifts) + [f"C{i:02d}" for i in range(n_controls)]
    for k, pid in enumerate(ids):
        alpha = rng.uniform(20, 60)
        search = np.round(np.maximum(0, rng.normal(1, 1, days)), 2)
        start = 20 + 3 * k if pid in lifts else days + 1
        post = (np.arange(days) >= start).astype(float)
        daily = alpha + day_effect + lifts.get(pid, 0.0) * post + search_effect * search + rng.normal(0, noise, days)
        frame = pd.DataFrame({"product_id": pid, "day": np.arange(days),
                              "date": pd.Timestamp(START) + pd.to_timedelta(np.arange(days), unit="D"),
                              "rolling_sales": rolling_from_daily(daily), "daily_sales": daily, "treated": post,
                              "search": search})
        if gaps:
            frame = frame.drop(index=[5, 6, 41]).reset_index(drop=True)  # rows of days 5, 6, 41 missing
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def lake_frames(*, n_treated: int = 8, n_controls: int = 10, days: int = 60, seed: int = 1):
    """taobao_sales / campaign_videos / pe_scores frames where the lift is 40 · true PE (+ small noise)."""
    rng = np.random.default_rng(seed)
    pe = rng.uniform(0.05, 0.6, n_treated)
    lifts = {f"T{i:02d}": float(40 * pe[i] + rng.normal(0, 0.5)) for i in range(n_treated)}
    s = synthetic_sales(lifts=lifts, n_controls=n_controls, days=days, noise=0.3, seed=seed)
    sales = pd.DataFrame({"product_id": s["product_id"], "date": s["date"].dt.date,
                          "rolling_sales_30d": s["rolling_sales"], "daily_sales": s["daily_sales"],
                          "price": 10.0, "discount": 1.0, "search_index": s["search"],
                          "advertised": s["treated"].astype(bool)})
    first_post = s[s["treated"] == 1].groupby("product_id")["date"].min()
    videos = pd.DataFrame({"video_id": [f"v-{p}" for p in lifts], "product_id": list(lifts),
                           "influencer_id": [f"inf{i % 3}" for i in range(n_treated)],
                           "campaign_id": "camp-1", "video_uri": None,
                           "published_at": [first_post[p].tz_localize("UTC") + pd.Timedelta(hours=9) for p in lifts]})
    e = rng.uniform(1e3, 5e3, n_treated)
    scores = pd.DataFrame({"video_id": videos["video_id"], "model_version": "3", "pe_raw": pe / 100,
                           "pe_share": pe, "e_score": e, "p_score": rng.uniform(1e4, 1e5, n_treated)})
    return sales, videos, scores, lifts

