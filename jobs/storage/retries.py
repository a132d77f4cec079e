"""The retry policy of the lake's writes: a write or merge that lost a race to a concurrent writer.

Delta's optimistic concurrency lets two writers race; the one that commits second fails with a conflict
(``ConcurrentAppendException`` and its family). :func:`with_retries` runs the write again on a fresh snapshot
(``CONFLICT_RETRIES`` times, a short growing pause between) and then raises one :class:`LakeError` line naming
the writer that kept winning.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from jobs.storage.errors import LakeError, java_message

log = logging.getLogger("jobs.storage.lake")  # the lake's log: a retry is part of the lake's story

#: How often a write or merge that lost a race to a concurrent writer is retried on a fresh snapshot.
CONFLICT_RETRIES = 6


def with_retries(action, name: str, other_writer: Callable[[], str] | None = None) -> None:
    """Run a write; when a concurrent writer committed first in a conflicting way, retry on a fresh snapshot
    (the action re-reads the table: a merge by key re-applied is the same result) ``CONFLICT_RETRIES`` times,
    then one :class:`LakeError` line naming the writer that kept winning (``other_writer()``)."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            return action()
        except Exception as e:
            if not is_write_conflict(e):
                raise
            if attempt == CONFLICT_RETRIES - 1:
                other = _describe(other_writer)
                raise LakeError("write_conflict", f"'{name}': another writer{other} committed first {CONFLICT_RETRIES} "
                                f"times in a row ({java_message(e)}); nothing of this write was committed: let it "
                                f"finish, then run again") from None
            log.info("%s: concurrent writer (%s); retrying", name, type(e).__name__)
            time.sleep(0.2 * (attempt + 1))


def is_write_conflict(e: Exception) -> bool:
    """A Delta commit conflict (ConcurrentAppendException and its family), whichever way py4j delivered it."""
    import delta.exceptions as dx
    import delta.exceptions.captured  # noqa: F401  (makes py4j raise Delta's conflicts as their own types)

    if isinstance(e, tuple(getattr(dx, n) for n in dx.__all__)):
        return True
    text = str(e)[:4000]
    return "DELTA_CONCURRENT" in text or "io.delta.exceptions.Concurrent" in text or \
        "io.delta.exceptions.MetadataChangedException" in text or "io.delta.exceptions.ProtocolChangedException" in text


def _describe(other_writer: Callable[[], str] | None) -> str:
    if other_writer is None:
        return ""
    try:
        text = other_writer()
    except Exception:  # naming the winner is a courtesy: never hide the conflict behind another error
        return ""
    return f" ({text})" if text else ""
