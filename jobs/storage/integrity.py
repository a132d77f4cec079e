"""Do pe_scores and pe_seconds still tell one story? A rolled-back table or a lost commit says no.

Every finished `pe score` run records the versions it committed and the videos it scored
(``<lake>/_pe_runs/<run_id>.json``, local lakes). Three checks follow, for `pe validate` and the start of `pe score`:

* rolled back: a table is now at a lower version than a finished run committed (its newest commits were removed
  from ``_delta_log``, or the folder was restored from an older copy); Delta itself reads such a table silently.
  The videos that run scored are suspect;
* seconds without scores: a video's pe_seconds rows have no pe_scores row at all (pe_scores lost the commit, or
  the run was interrupted between its two commits);
* scores without seconds: a pe_scores row has no pe_seconds rows of its scoring_config (pe_seconds lost them).

The row comparison is skipped when pe_scores and pe_seconds are still at the very commits of a finished run
that found them in agreement when it started (its record's ``agreed_commits``): that run then committed both,
and nothing has written either since. (Any other commit, an OPTIMIZE included, brings the full comparison
back; so does a lake that is not on a local disk.)

Rows are compared by (video_id, model_version, scoring_config), not by run_id: a merge that changes nothing
keeps a row's run_id (a volatile column), so two tables' run ids may differ for the same scoring.
`pe score` repairs by scoring the videos concerned again (the merge by key replaces both sides) and then
settles the records; `pe validate` fails naming it when a finished run is involved (an interrupted one is the
next run's business).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobs.storage.errors import LakeError

if TYPE_CHECKING:
    from jobs.storage.lake import Lake

RUNS_DIR = "_pe_runs"
#: The two tables that must tell one story.
PAIR = ("pe_scores", "pe_seconds")
#: The tables whose versions a finished scoring run records.
SCORE_TABLES = ("pe_seconds", "pe_scores", "scoring_errors")
#: Videos named in a message; the rest are counted.
SHOWN = 3


@dataclass
class Disagreement:
    """What :func:`check_score_tables` found: tables behind a finished run's version (and that run's videos),
    videos whose pe_scores and pe_seconds do not match (``finished``: those involving a finished run)."""

    rolled_back: list[str] = field(default_factory=list)
    rolled_back_videos: list[tuple[str, str]] = field(default_factory=list)  # (video_id, model_version)
    seconds_only: list[tuple[str, str, str]] = field(default_factory=list)  # (video_id, model_version, run_id)
    scores_only: list[tuple[str, str, str]] = field(default_factory=list)
    finished: set[str] = field(default_factory=set)  # video_ids of the above whose run had finished
    versions: dict[str, int] = field(default_factory=dict)  # the score tables' versions when checked

    def videos(self, model_version: str | None = None) -> list[str]:
        """The videos to score again (of ``model_version`` when given)."""
        rows = [(v, mv) for v, mv, _ in self.seconds_only + self.scores_only] + self.rolled_back_videos
        return sorted({v for v, mv in rows if model_version is None or mv == model_version})

    def __bool__(self) -> bool:
        return bool(self.rolled_back or self.seconds_only or self.scores_only)

    @property
    def serious(self) -> bool:
        """A finished run's commits are missing (not merely an interrupted run's second commit)."""
        return bool(self.rolled_back or self.finished or self.scores_only)

    def line(self) -> str:
        """One line: what disagrees, with a few examples."""
        parts = list(self.rolled_back)
        if self.seconds_only:
            parts.append(f"{len(self.seconds_only)} video(s) have pe_seconds of a run without its pe_scores row "
                         f"({_examples(self.seconds_only)})")
        if self.scores_only:
            parts.append(f"{len(self.scores_only)} pe_scores row(s) have no pe_seconds rows of their scoring "
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


def record_run(lake: "Lake", run_id: str, versions: dict[str, int], *, model_version: str = "",
               videos: list[str] | None = None, agreed: bool = False) -> None:
    """Remember that scoring run ``run_id`` finished with these table versions, having scored ``videos``
    (local lakes; atomic), and settle older records a repair has made current again. ``agreed``: the run's
    lake check found pe_scores and pe_seconds in agreement, so the tables agree at the commits it leaves."""
    folder = _runs_dir(lake)
    if folder is None:
        return
    os.makedirs(folder, exist_ok=True)
    for record in finished_runs(lake):  # the tables are consistent at these versions now: nothing is behind
        behind = {t: v for t, v in record["versions"].items() if t in versions and int(v) > versions[t]}
        if behind and record.get("run_id") != run_id:
            record["versions"] = {**record["versions"], **{t: versions[t] for t in behind}}
            _write(folder, record)
    record = {"run_id": run_id, "versions": versions, "model_version": model_version, "videos": sorted(videos or []),
              "finished_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    commits = _pair_commits(lake) if agreed else None
    if commits is not None:
        record["agreed_commits"] = commits
    _write(folder, record)


def _pair_commits(lake: "Lake") -> dict[str, str] | None:
    """The commit ids of pe_scores and pe_seconds (None unless both are local tables)."""
    out: dict[str, str] = {}
    for table in PAIR:
        commit = lake.commit_id(table) if lake.exists(table) else None
        if commit is None:
            return None
        out[table] = commit
    return out


def _write(folder: str, record: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    os.replace(tmp, os.path.join(folder, f"{_safe(str(record.get('run_id')))}.json"))


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


def drop_stale_log_files(lake: "Lake", table: str) -> int:
    """Remove the checksum files a removed commit left in ``table``'s ``_delta_log`` (local lakes): Delta's
    ``N.crc`` of a version with no ``N.json``, and Hadoop's hidden ``.NAME.crc`` sidecars whose NAME is gone.
    Left there, the next commit of version N is read against the old commit's checksum and fails
    (``ChecksumException``), so a rolled-back table could not be written again. Returns how many went."""
    if "://" in lake.root:
        return 0
    log = os.path.join(lake.path(table), "_delta_log")
    try:
        names = set(os.listdir(log))
    except OSError:
        return 0
    stale = {n for n in names if n.endswith(".crc") and not n.startswith(".")
             and n[:-4].isdigit() and f"{n[:-4]}.json" not in names}
    names -= stale
    stale |= {n for n in names if n.startswith(".") and n.endswith(".crc") and n[1:-4] not in names}
    for name in stale:
        try:
            os.remove(os.path.join(log, name))
        except FileNotFoundError:
            pass
    return len(stale)


def check_score_tables(lake: "Lake") -> Disagreement:
    """Compare pe_scores with pe_seconds (by video, model version and scoring config) and each table's version
    with the finished runs' records."""
    from pyspark.sql import functions as F

    found = Disagreement()
    runs = finished_runs(lake)
    for table in SCORE_TABLES:
        if not lake.exists(table):
            continue
        now = found.versions[table] = lake.version(table)
        behind = [r for r in runs if int(r["versions"].get(table, -1)) > now]
        if behind:
            version, run = max((int(r["versions"][table]), str(r.get("run_id"))) for r in behind)
            found.rolled_back.append(f"{table} is at version {now} but run {run} committed version {version} "
                                     f"(its newest commits are gone from _delta_log)")
            found.rolled_back_videos += [(str(v), str(r.get("model_version", ""))) for r in behind
                                         for v in r.get("videos", [])]
    if not (lake.exists("pe_scores") and lake.exists("pe_seconds")):
        return found
    now_commits = _pair_commits(lake)
    if now_commits is not None and any(r.get("agreed_commits") == now_commits for r in runs):
        return found  # untouched since a run found them in agreement and committed both
    keys = ["video_id", "model_version"]
    seconds = lake.read("pe_seconds").groupBy(*keys, "scoring_config").agg(F.min("run_id").alias("run_id"))
    scores = lake.read("pe_scores").select(*keys, "scoring_config", "run_id")
    # seconds of a video no pe_scores row speaks for (rows of another scoring_config beside a score are an
    # earlier scoring's leftovers, which readers already ignore)
    orphan_seconds = seconds.join(scores.select(*keys), keys, "left_anti").select(*keys, "run_id").distinct()
    orphan_scores = scores.alias("p").join(seconds.alias("s"), [
        F.col(f"p.{k}").eqNullSafe(F.col(f"s.{k}")) for k in (*keys, "scoring_config")], "left_anti")
    found.seconds_only = sorted({(r[0], r[1], r[2]) for r in orphan_seconds.collect()})
    found.scores_only = [(r["video_id"], r["model_version"], r["run_id"]) for r in orphan_scores.collect()]
    done = {str(r.get("run_id")) for r in runs}
    found.finished = {v for v, _, run in found.seconds_only if run in done}
    return found
