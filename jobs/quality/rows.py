"""Row level, for input tables: which rows of a batch break their table's suite, and why, in words.

A scoring run rejects those rows (and records them in ``scoring_errors``, stage 'validate') and scores the
rest; nothing is written here.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jobs.config import PEConfig
from jobs.quality import ge
from jobs.quality.results import QualityError
from jobs.quality.suites import Check, run_suite, suite

#: video_id reported for input rows that have no (or an empty) video_id; scoring_errors' key is not null.
MISSING_ID = ""

_COLUMNS = ["video_id", "expectation", "message"]


def rejected_rows(frame: "pd.DataFrame | Any", table: str, cfg: PEConfig) -> pd.DataFrame:
    """Rows of input ``table`` that fail its suite: one row per rejected ``video_id``.

    ``frame``: pandas or Spark DataFrame with (at least) the suite's columns. Returns a pandas frame with
    columns ``video_id`` (``MISSING_ID`` = '' for rows without an id), ``expectation`` (the failed
    checks' names, e.g. ``id_unique`` or ``video_uri_root``, comma-joined when several failed; the scoring
    job's reason) and ``message`` ('; '-joined reasons).
    """
    s = suite(table, cfg)
    if not s.row_level:
        raise QualityError("not_input", f"{table} is an output table: validate it with validate_table()")
    frame = s.frame(frame).reset_index(drop=True)
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in _COLUMNS})
    validation = run_suite(ge.context(None), s, frame, "COMPLETE", docs=False, run_name=None)
    by_name = {c.name: c for c in s.checks}
    reasons: dict[int, list[tuple[str, str]]] = {}
    for er in validation.results:
        if er.success:
            continue
        info = er.exception_info or {}
        if info.get("raised_exception"):
            raise QualityError("expectation_error", f"{table}: expectation {er.expectation_config.type} could not "
                               f"run: {info.get('exception_message')}")
        check = by_name[er.expectation_config.meta["check"]]
        for i in er.result.get("unexpected_index_list") or []:
            i = int(i["index"]) if isinstance(i, dict) else int(i)
            reasons.setdefault(i, []).append((check.name, _row_message(check, frame.iloc[i])))
    per_id: dict[str, list[tuple[str, str]]] = {}
    for i in sorted(reasons):
        vid = frame.at[i, "video_id"]
        vid = MISSING_ID if vid is None or (isinstance(vid, float) and np.isnan(vid)) or not str(vid).strip() else str(vid)
        for item in reasons[i]:
            if item not in per_id.setdefault(vid, []):
                per_id[vid].append(item)
    rows = [(vid, ",".join(dict.fromkeys(e for e, _ in items)), "; ".join(dict.fromkeys(m for _, m in items)))
            for vid, items in sorted(per_id.items())]
    return pd.DataFrame(rows, columns=_COLUMNS)


def rejected_inputs(videos: "pd.DataFrame | Any", cfg: PEConfig) -> pd.DataFrame:
    """The ``campaign_videos`` rows the scoring job must not score (see :func:`rejected_rows`).

    ``videos``: pandas or Spark DataFrame (at most thousands of rows) with video_id, video_uri and
    product_image_uri. Returns columns video_id, expectation, message — one row per rejected video.
    """
    return rejected_rows(videos, "campaign_videos", cfg)


def _row_message(check: Check, row: pd.Series) -> str:
    values = {k: (None if _isnull(v) else ge.plain(v)) for k, v in row.items()}
    # counts read with nulls come as floats: show 5, not 5.0
    values = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in values.items()}
    try:
        return check.row.format(**values) if check.row else check.rule
    except (KeyError, IndexError, ValueError):
        return check.rule


def _isnull(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False
