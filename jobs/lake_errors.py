"""The lake's errors, and how Delta's (Java) failures become them.

:class:`LakeError` and its subclasses carry a message that says what is wrong and what to do. Delta's NOT NULL
violation becomes :class:`NotNullViolation`; a write that lost a race to a concurrent writer is retried on a
fresh snapshot (``CONFLICT_RETRIES`` times) before it becomes a :class:`LakeError` naming the other writer.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from pe_udfs.errors import PEError

log = logging.getLogger("jobs.lake")  # the lake's log, as before these helpers left jobs/lake.py

#: How often a write or merge that lost a race to a concurrent writer is retried on a fresh snapshot.
CONFLICT_RETRIES = 6


class LakeError(PEError):
    """Base class for lake errors; the message says what is wrong and what to do."""

    stage = "lake"


class TableNotFound(LakeError):
    """A table the operation needs does not exist under the lake root."""


class SchemaMismatch(LakeError):
    """A write's columns are missing, extra or cannot be cast to the table's contract; nothing was written."""


class NotNullViolation(LakeError):
    """A write would put NULL into a NOT NULL column of the table's contract; nothing was written."""


def save(writer, path: str, name: str) -> None:
    not_null_checked(lambda: writer.save(path), name)


def not_null_checked(action, name: str) -> None:
    """Run a write; Delta's NOT NULL violation becomes :class:`NotNullViolation` (one clear line)."""
    try:
        action()
    except Exception as e:
        if "DELTA_NOT_NULL_CONSTRAINT_VIOLATED" in str(e):  # Delta's error class, as the JVM raised it
            raise NotNullViolation("not_null", f"cannot write to '{name}': {java_message(e)} (nothing was written)") from None
        raise


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


def java_message(e: Exception) -> str:
    """The first line that says something of a (possibly Java) exception: its error class and message."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if "[" in ln and "]" in ln and not ln.startswith("at "):
            return ln.split("Exception: ", 1)[-1]
    return lines[0] if lines else type(e).__name__
