"""Fixtures for the per-video tests (the media helpers live in pe_media.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from pe_media import index_of, write_video


@pytest.fixture
def make_video(tmp_path) -> Callable[..., Path]:
    """make_video(name, n_frames, **write_video options) → path of a new MP4 in tmp_path."""
    def make(name: str, n_frames: int, **kw) -> Path:
        return write_video(tmp_path / name, n_frames, **kw)
    return make


@pytest.fixture
def frame_index() -> Callable[[np.ndarray], int]:
    return index_of
