"""The lake's errors, and how Delta's (Java) failures become them.

:class:`LakeError` and its subclasses carry a message that says what is wrong and what to do. Delta's NOT NULL
violation becomes :class:`NotNullViolation`. A write that lost a race to a concurrent writer is retried by
:mod:`jobs.storage.retries` before it becomes a :class:`LakeError` naming the other writer.
"""
from __future__ import annotations

from pe_udfs.errors import PEError


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


def java_message(e: Exception) -> str:
    """The first line that says something of a (possibly Java) exception: its error class and message."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines:
        if "[" in ln and "]" in ln and not ln.startswith("at "):
            return ln.split("Exception: ", 1)[-1]
    return lines[0] if lines else type(e).__name__
