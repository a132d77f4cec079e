"""Typed errors for bad per-video inputs.

Every input a scoring run rejects raises a :class:`PEInputError` subclass that carries the pipeline ``stage``
where it failed and a short machine ``reason`` code; ``str(e)`` is a human message naming the input. The
scoring job stores ``stage``, ``reason`` (as the error class) and the message in ``scoring_errors``.

    stage    reasons
    fetch    not_found, scheme_not_allowed, outside_allowed_roots, fetch_failed
    decode   empty_file, unreadable, no_video_stream, zero_frames, too_long, too_large
    product  not_found, product_image_unreadable, product_no_features
    model    model_failed, bad_clip
    worker   worker_crashed (the video killed its worker process on repeated attempts)
"""
from __future__ import annotations

from typing import ClassVar


class PEInputError(Exception):
    """Base of every per-video input error: ``stage`` ('fetch' | 'decode' | 'product' | 'model'), ``reason``."""

    stage: ClassVar[str] = "input"

    def __init__(self, reason: str, message: str, *, uri: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.uri = uri
        self.message = message

    def __reduce__(self):  # keep stage/reason across pickling (Spark workers, thread pools)
        return (_rebuild, (type(self), self.reason, self.message, self.uri))

    def to_dict(self) -> dict[str, str | None]:
        """The fields a ``scoring_errors`` row needs."""
        return {"stage": self.stage, "reason": self.reason, "error_class": type(self).__name__,
                "message": self.message, "uri": self.uri}


def _rebuild(cls, reason, message, uri):
    return cls(reason, message, uri=uri)


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
