"""The pe_seconds cross-table frame: each pe_scores row beside the sums of its per-second rows.

Per-second rows count only when their run's ``pe_scores`` row exists — the same (video_id, model_version)
and the same ``scoring_config``. The scoring job commits pe_seconds before pe_scores, so seconds without
their scores row are a run that has not finished (or was interrupted), and rows of another
``scoring_config`` (an earlier scoring with a longer window) are not part of the current score: readers see
only complete runs, and so does this check. A pe_scores row without seconds is an error.

    pe_seconds ─ inner join on (video_id, model_version, scoring_config) ─ group by video ─┐
    pe_scores ─────────────────────────────────────────────────────── left join ◄─────────┘─► pandas
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jobs.config import PEConfig
from jobs.quality.suites import SCORE_KEYS
from jobs.storage.views import complete_seconds


def pe_seconds_check_frame(seconds: Any, scores: Any, cfg: PEConfig) -> pd.DataFrame:
    """pe_seconds and pe_scores (Spark DataFrames) → one pandas row per pe_scores row (Spark aggregation and
    joins) with the columns in :data:`jobs.quality.suites.PE_SECONDS_CHECK_COLUMNS`."""
    from pyspark.sql import functions as F

    per_video = complete_seconds(seconds, scores).groupBy(*SCORE_KEYS).agg(
        F.count(F.lit(1)).alias("seconds_rows"),
        F.count_distinct("second").alias("distinct_seconds"),
        F.min("second").alias("first_second"),
        (F.max("second") - F.min("second") + 1).alias("seconds_span"),
        F.sum("e_mass").alias("e_mass_sum"),
        F.sum("pe_mass").alias("pe_mass_sum"),
        F.sum("p_mass").alias("p_mass_sum"),
    ).withColumn("in_pe_seconds", F.lit(True))
    scores = scores.select(*SCORE_KEYS, "n_seconds", "e_score", "p_score", "pe_raw")
    joined = scores.join(per_video, SCORE_KEYS, "left").fillna(False, subset=["in_pe_seconds"])
    return add_mismatch_columns(joined.toPandas(), cfg)


def add_mismatch_columns(frame: pd.DataFrame, cfg: PEConfig) -> pd.DataFrame:
    """Add ``e_score_mismatch``, ``pe_raw_mismatch``, ``p_score_mismatch``: |Σ per-second mass − the
    pe_scores value on the mass scale| / (atol + rtol·|value|); <= 1 is within tolerance, NaN when a side
    is missing. ``pe_raw`` is compared as pe_raw · n_seconds · size² (pixels per frame = clip.size²)."""
    frame = frame.copy()
    pixels = float(cfg.clip.size) ** 2
    expected = {
        "e_score_mismatch": ("e_mass_sum", frame["e_score"].astype(float)),
        "pe_raw_mismatch": ("pe_mass_sum", frame["pe_raw"].astype(float) * frame["n_seconds"].astype(float) * pixels),
        "p_score_mismatch": ("p_mass_sum", frame["p_score"].astype(float)),
    }
    for out, (col, ref) in expected.items():
        diff = (frame[col].astype(float) - ref).abs().to_numpy()
        scale = cfg.quality.sum_atol + cfg.quality.sum_rtol * ref.abs().to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            mismatch = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), np.where(diff > 0, np.inf, 0.0))
        mismatch[np.isnan(diff)] = np.nan
        frame[out] = mismatch
    return frame
