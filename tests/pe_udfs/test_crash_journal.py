"""The crash journal: marks left by dead attempts are counted per video; a finished video leaves none."""
from __future__ import annotations

import pytest

from pe_udfs.crash_journal import CrashJournal
from pe_udfs.errors import WorkerCrashed
from pe_udfs.settings import ClipSettings, DecodeSettings, ProductSettings, SaliencySettings, ScoringPlan
from pe_udfs.udf import ScoringTask, _decode


def test_marks_count_crashes_per_video_and_end_forgets_them(tmp_path):
    journal = CrashJournal(str(tmp_path / "j"), max_crashes=2)
    assert journal.crashes("v1") == 0
    journal.begin("v1")  # an attempt that died: its mark stays
    journal.begin("v 2/../é")  # hostile ids are hashed, never used as paths
    assert journal.crashes("v1") == 1 and not journal.gave_up("v1")
    journal.begin("v1")
    assert journal.crashes("v1") == 2 and journal.gave_up("v1") and journal.crashes("v 2/../é") == 1
    done = journal.begin("v3")
    journal.end(done)
    assert journal.crashes("v3") == 0
    journal.end(journal.begin("v1"))  # v1 finally went through: its old marks go too
    assert journal.crashes("v1") == 0


def _no_model(device: str):
    raise AssertionError("a given-up video loads no model")


def test_a_video_that_killed_its_worker_twice_is_given_up_before_any_work(tmp_path):
    journal = CrashJournal(str(tmp_path / "j"), max_crashes=2)
    journal.begin("bad")
    journal.begin("bad")
    plan = ScoringPlan(ClipSettings(), ProductSettings(), SaliencySettings(), DecodeSettings())
    task = ScoringTask(load_model=_no_model, plan=plan, crash_journal=journal.folder)
    row = {"video_id": "bad", "video_uri": str(tmp_path / "never-opened.mp4"), "product_image_uri": None}
    with pytest.raises(WorkerCrashed) as e:
        _decode(row, task, clip=None, journal=journal)
    assert (e.value.stage, e.value.reason) == ("worker", "worker_crashed")
    assert journal.crashes("bad") == 2  # no new mark: nothing was attempted
