"""The project's one error root, and the typed errors for bad per-video inputs.

Every error PE-score raises on purpose derives from :class:`PEError`, constructed the same way everywhere:
``SomeError(reason, message)``. It carries

    stage      where it happened: a class attribute ('config', 'lake', 'fetch', 'decode', 'train', ...)
    reason     a short, stable machine code ('not_found', 'bad_size', ...) that callers and tests match on
    message    one human line naming the input and, where there is one, what to do
    exit_code  the ``pe`` command's exit status (2: a mistake in the command or its inputs; 1: anything else)

``str(e)`` is ``<message> [<reason>]``; the ``pe`` command line catches it once and prints
``error: <stage>: <message> [<reason>]``. The root lives
here because ``pe_udfs`` and ``models`` must not import ``jobs``; every layer can import ``pe_udfs``.

Per-video input errors (:class:`PEInputError`) are what a scoring run rejects and records in
``scoring_errors`` (stage, reason as the error class, message):

    stage    reasons
    fetch    not_found, scheme_not_allowed, file_host_not_allowed, outside_allowed_roots, fetch_failed
    decode   empty_file, unreadable, format_not_allowed, no_video_stream, zero_frames, too_few_frames,
             truncated, too_long, too_large, too_small (frames under decode.min_frame_side)
    product  not_found, product_image_unreadable, product_image_corrupt (decoder warnings or a decoded size
             other than the header's), product_no_features, too_large
    model    model_failed, bad_clip
    worker   worker_crashed (the video killed its worker process on repeated attempts)
"""
from __future__ import annotations

from typing import Any, ClassVar


class PEError(Exception):
    """Root of every PE-score error: ``stage`` (class attribute), ``reason`` (code), message, ``exit_code``."""

    stage: ClassVar[str] = "pe"
    exit_code: ClassVar[int] = 1

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} [{self.reason}]"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle every attribute whatever a subclass's ``__init__`` takes (Spark workers, process pools)."""
        return (_restore, (type(self), self.message), self.__dict__)


def _restore(cls: type[PEError], message: str) -> PEError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


class UsageError(PEError):
    """A value given to a command or a function is not allowed (the message names it and what is)."""

    stage = "usage"
    exit_code = 2


class DeviceUnavailable(PEError):
    """The configured device (e.g. 'cuda') is not present on this machine."""

    stage = "device"
    exit_code = 2


class PEInputError(PEError):
    """Base of every per-video input error: ``stage`` ('fetch' | 'decode' | 'product' | 'model'), ``reason``."""

    stage = "input"
    #: the crash-journal mark of the attempt that raised it (set by the scoring worker, pe_udfs.udf)
    mark: Any = None

    def __init__(self, reason: str, message: str, *, uri: str | None = None) -> None:
        super().__init__(reason, message)
        self.uri = uri

    def to_dict(self) -> dict[str, str | None]:
        """The fields a ``scoring_errors`` row needs."""
        return {"stage": self.stage, "reason": self.reason, "error_class": type(self).__name__,
                "message": self.message, "uri": self.uri}


class FetchError(PEInputError):
    """The input could not be located or opened (missing file, scheme or root not allowed)."""

    stage = "fetch"


class DecodeError(PEInputError):
    """The bytes were fetched but are not a usable video (empty, corrupt, no video stream, over limits)."""

    stage = "decode"


class ProductImageError(PEInputError):
    """The product listing image is missing, unreadable or has too few local features to match."""

    stage = "product"


class ModelError(PEInputError):
    """The engagement model failed on a clip (wrong output shape, non-finite values, runtime error)."""

    stage = "model"


class WorkerCrashed(PEInputError):
    """The video's worker process died (killed, out of memory, a native crash) on every recent attempt."""

    stage = "worker"
