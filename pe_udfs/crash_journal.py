"""Which video killed its worker: a mark per video in flight, left behind only when the process dies.

A scoring worker (a Python process under Spark) can be killed mid-video — by the kernel's out-of-memory
killer, a decoder crash — and nothing in the process can record why. Spark retries the task; without help
the retry meets the same video and dies again, until the whole job fails. So before a video is worked on,
a mark file is created in a folder every attempt of the task can see, and it is removed when the video's
rows are out. A mark still there on the next attempt is a crash of that video; after ``max_crashes`` of
them the video is given up as one error row (stage ``worker``, reason ``worker_crashed``) and the rest of
the night goes on.

    begin(video)  ──►  <folder>/<sha1(video_id)>.<attempt uuid>      (work on the video)
    end(token)    ──►  every mark of that video removed              (its rows were yielded)
    crashes(video) = marks left by attempts that died

No Spark here: plain files, testable on their own.
"""
from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Mark:
    video_id: str
    path: str


class CrashJournal:
    """Marks of videos in flight under ``folder`` (shared by every attempt of a scoring run)."""

    def __init__(self, folder: str, max_crashes: int = 2):
        self.folder = folder
        self.max_crashes = max_crashes
        os.makedirs(folder, exist_ok=True)

    @staticmethod
    def _stem(video_id: str) -> str:
        return hashlib.sha1(video_id.encode("utf-8", "surrogatepass")).hexdigest()

    def crashes(self, video_id: str) -> int:
        """How many earlier attempts died while working on ``video_id``."""
        stem = self._stem(video_id) + "."
        try:
            return sum(name.startswith(stem) for name in os.listdir(self.folder))
        except FileNotFoundError:
            return 0

    def gave_up(self, video_id: str) -> bool:
        return self.crashes(video_id) >= self.max_crashes

    def begin(self, video_id: str) -> Mark:
        path = os.path.join(self.folder, f"{self._stem(video_id)}.{uuid.uuid4().hex}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(video_id)
        return Mark(video_id, path)

    def end(self, mark: Mark) -> None:
        """The video is done (scored or recorded as an error): forget every mark of it."""
        stem = self._stem(mark.video_id) + "."
        for name in os.listdir(self.folder):
            if name.startswith(stem):
                try:
                    os.remove(os.path.join(self.folder, name))
                except FileNotFoundError:
                    pass
