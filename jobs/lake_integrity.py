"""Do pe_scores and pe_seconds still tell one story? A rolled-back table or an interrupted run says no.

Every finished `pe score` run records the versions it committed (``<lake>/_pe_runs/<run_id>.json``, local lakes).
Two checks follow, for `pe validate` and for the start of `pe score`:

* rolled back: a table is now at a lower version than a finished run committed (its newest commits were removed
  from ``_delta_log``, or the folder was restored from an older copy); Delta itself reads such a table silently;
* runs that disagree: a video's pe_seconds rows come from a run whose pe_scores row is not there (pe_scores lost
  the commit, or the run was interrupted between its two commits), or its pe_scores row names a run that has no
  pe_seconds rows (pe_seconds lost it).

`pe score` repairs a disagreement by scoring those videos again (the merge by key replaces both sides);
`pe validate` fails naming it when a finished run is involved (an interrupted one is the next run's business).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobs.lake_errors import LakeError

if TYPE_CHECKING:
    from jobs.lake import Lake

RUNS_DIR = "_pe_runs"
#: The tables whose versions a finished scoring run records.
SCORE_TABLES = ("pe_seconds", "pe_scores", "scoring_errors")
#: Videos named in a message; the rest are counted.
SHOWN = 3


@dataclass
class Disagreement:
    """What :func:`check_score_tables` found: tables behind a finished run's version, and the videos whose
    pe_scores and pe_seconds rows come from different runs (``finished``: those involving a finished run)."""

    rolled_back: list[str] = field(default_factory=list)
    seconds_only: list[tuple[str, str, str]] = field(default_factory=list)  # (video_id, model_version, run_id)
    scores_only: list[tuple[str, str, str]] = field(default_factory=list)
    finished: set[str] = field(default_factory=set)  # video_ids of the above whose run had finished

    @property
    def videos(self) -> set[str]:
        return {v for v, _, _ in self.seconds_only} | {v for v, _, _ in self.scores_only}

    def __bool__(self) -> bool:
        return bool(self.rolled_back or self.seconds_only or self.scores_only)

    @property
    def serious(self) -> bool:
        """A finished run's commits are missing (not merely an interrupted run's second commit)."""
        return bool(self.rolled_back or self.finished)

    def line(self) -> str:
        """One line: what disagrees, with a few examples."""
        parts = list(self.rolled_back)
        if self.seconds_only:
            parts.append(f"{len(self.seconds_only)} video(s) have pe_seconds of a run without its pe_scores row "
                         f"({_examples(self.seconds_only)})")
        if self.scores_only:
            parts.append(f"{len(self.scores_only)} pe_scores row(s) name a run without pe_seconds rows "
                         f"({_examples(self.scores_only)})")
        return "pe_scores and pe_seconds disagree: " + "; ".join(parts)


class TablesDisagree(LakeError):
    """pe_scores and pe_seconds tell different stories about a finished run (or a table was rolled back)."""


def require_agreement(lake: "Lake") -> Disagreement:
    """For `pe validate`: raise :class:`TablesDisagree` (one line) when a finished run's commits are missing;
    return what was found (an interrupted run's leftovers only: the next `pe score` repairs them)."""
    found = check_score_tables(lake)
    if found.serious:
        raise TablesDisagree("rolled_back" if found.rolled_back else "tables_disagree",
                             f"{found.line()}; `pe score` scores the videos concerned again")
    return found


def _examples(rows: list[tuple[str, str, str]]) -> str:
    shown = ", ".join(f"{v!r} v{mv} run {r}" for v, mv, r in sorted(rows)[:SHOWN])
    return shown + (f", and {len(rows) - SHOWN} more" if len(rows) > SHOWN else "")


def _runs_dir(lake: "Lake") -> str | None:
    return None if "://" in lake.root else os.path.join(lake.root, RUNS_DIR)


def record_run(lake: "Lake", run_id: str, versions: dict[str, int]) -> None:
    """Remember that scoring run ``run_id`` finished with these table versions (local lakes; atomic)."""
    folder = _runs_dir(lake)
    if folder is None:
        return
    os.makedirs(folder, exist_ok=True)
    record = {"run_id": run_id, "versions": versions, "finished_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    os.replace(tmp, os.path.join(folder, f"{_safe(run_id)}.json"))


def _safe(run_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)[:200]


def finished_runs(lake: "Lake") -> list[dict]:
    """The records of finished scoring runs (unreadable records are skipped)."""
    folder = _runs_dir(lake)
    if folder is None or not os.path.isdir(folder):
        return []
    out = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            try:
                with open(os.path.join(folder, name)) as f:
                    record = json.load(f)
                if isinstance(record, dict) and isinstance(record.get("versions"), dict):
                    out.append(record)
            except (OSError, ValueError):
                continue
    return out


def check_score_tables(lake: "Lake") -> Disagreement:
    """Compare pe_scores with pe_seconds (runs per video) and each table's version with the finished runs'."""
    from pyspark.sql import functions as F

    found = Disagreement()
    runs = finished_runs(lake)
    for table in SCORE_TABLES:
        recorded = [(int(r["versions"][table]), str(r.get("run_id"))) for r in runs if table in r["versions"]]
        if recorded and lake.exists(table):
            version, run = max(recorded)
            now = lake.version(table)
            if now < version:
                found.rolled_back.append(f"{table} is at version {now} but run {run} committed version {version} "
                                         f"(its newest commits are gone from _delta_log)")
    if not (lake.exists("pe_scores") and lake.exists("pe_seconds")):
        return found
    keys = ["video_id", "model_version"]
    seconds = lake.read("pe_seconds").select(*keys, "scoring_config", "run_id").distinct()
    scores = lake.read("pe_scores").select(*keys, "scoring_config", "run_id")
    # seconds of a run whose pe_scores row is missing, or replaced by another run's row of the same config
    # (seconds of another scoring_config are an earlier scoring's leftovers, which readers already ignore)
    same_config = scores.select(*keys, "scoring_config", F.col("run_id").alias("_scores_run"))
    orphan_seconds = (seconds.join(same_config, [*keys, "scoring_config"], "left")
                      .where(F.col("_scores_run").isNull() | ~F.col("_scores_run").eqNullSafe(F.col("run_id")))
                      .join(scores.select(*keys).withColumn("_scored", F.lit(True)), keys, "left")
                      .where(F.col("_scores_run").isNotNull() | F.col("_scored").isNull())
                      .select(*keys, "run_id").distinct())
    orphan_scores = scores.join(seconds, [*keys, "scoring_config", "run_id"], "left_anti").select(*keys, "run_id")
    found.seconds_only = [(r[0], r[1], r[2]) for r in orphan_seconds.collect()]
    found.scores_only = [(r[0], r[1], r[2]) for r in orphan_scores.collect()]
    done = {str(r.get("run_id")) for r in runs}
    found.finished = {v for v, _, run in found.seconds_only + found.scores_only if run in done}
    if found.rolled_back:
        found.finished |= found.videos
    return found
