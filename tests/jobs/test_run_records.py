"""The scoring run records behind the lake check (jobs/storage/integrity.py): written atomically, settled by a
later run, and the one-line description of a disagreement. No Spark needed."""
from __future__ import annotations

import json
from types import SimpleNamespace

from jobs.storage.integrity import RUNS_DIR, Disagreement, finished_runs, record_run


def test_records_are_kept_per_run_and_a_later_run_settles_versions_it_made_current(tmp_path):
    lake = SimpleNamespace(root=str(tmp_path))  # the records need only the lake's folder
    record_run(lake, "night-1", {"pe_seconds": 3, "pe_scores": 3}, model_version="2", videos=["b", "a"])
    (tmp_path / RUNS_DIR / "broken.json").write_text("{not json")
    runs = finished_runs(lake)
    assert [(r["run_id"], r["versions"], r["videos"]) for r in runs] == [
        ("night-1", {"pe_seconds": 3, "pe_scores": 3}, ["a", "b"])]
    # pe_scores was rolled back to 2 and a repair run committed version 2 again: night-1 is settled at 2
    record_run(lake, "night-2", {"pe_seconds": 4, "pe_scores": 2}, model_version="2", videos=["a", "b"])
    by_run = {r["run_id"]: r["versions"] for r in finished_runs(lake)}
    assert by_run == {"night-1": {"pe_seconds": 3, "pe_scores": 2}, "night-2": {"pe_seconds": 4, "pe_scores": 2}}
    assert not list((tmp_path / RUNS_DIR).glob("*.tmp"))
    record_run(SimpleNamespace(root="s3a://bucket/lake"), "x", {"pe_scores": 1})  # remote lakes keep no records
    assert json.loads((tmp_path / RUNS_DIR / "night-2.json").read_text())["model_version"] == "2"


def test_a_disagreement_is_one_line_with_a_few_examples():
    found = Disagreement(rolled_back=["pe_scores is at version 0 but run r1 committed version 1 (…)"],
                         rolled_back_videos=[("v9", "2")],
                         seconds_only=[(f"v{i}", "2", "r1") for i in range(5)], finished={"v0"})
    line = found.line()
    assert "\n" not in line and line.startswith("pe_scores and pe_seconds disagree: pe_scores is at version 0")
    assert "5 video(s) have pe_seconds of a run without its pe_scores row ('v0' v2 run r1" in line
    assert line.endswith("and 2 more)") and found.serious
    assert found.videos("2") == ["v0", "v1", "v2", "v3", "v4", "v9"] and found.videos("3") == []
    assert not Disagreement() and not Disagreement().serious


def test_a_removed_commit_leaves_no_checksum_behind_to_break_the_next_commit_of_its_version(tmp_path):
    from jobs.storage.integrity import drop_stale_log_files

    log = tmp_path / "pe_scores" / "_delta_log"
    log.mkdir(parents=True)
    kept = ["00000000000000000000.json", "00000000000000000000.crc", ".00000000000000000000.json.crc",
            ".00000000000000000000.crc.crc", "_staged_commits"]
    # version 1's commit was deleted by hand; its Delta checksum and Hadoop's hidden sidecars stayed
    stale = ["00000000000000000001.crc", ".00000000000000000001.json.crc", ".00000000000000000001.crc.crc"]
    for name in kept + stale:
        (log / name).write_text("x")
    lake = SimpleNamespace(root=str(tmp_path), path=lambda name: str(tmp_path / name))
    assert drop_stale_log_files(lake, "pe_scores") == 3
    assert sorted(p.name for p in log.iterdir()) == sorted(kept)
    assert drop_stale_log_files(lake, "pe_scores") == 0
    assert drop_stale_log_files(lake, "no_such_table") == 0
