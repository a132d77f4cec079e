"""The sample campaign's products as their sellers list them: a listing photo (the object on white) and its
silhouette per product and variant, and the printed side panel of its packaging (a second, 'side' view).

Made from real photos shipped inside installed packages (:mod:`jobs.synth.assets`): the espresso cup cut out of
``skimage.data.coffee()`` with GrabCut, matplotlib's gift-box clip art, and printed retail boxes whose front label
and side panel carry photos no person or background uses. Cached per process; deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from jobs.synth.assets import AssetError, mpl_sample, read_only, skimage_photo, tinted


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
    img = skimage_photo("coffee")
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
    return read_only(*_on_white(img, cv2.GaussianBlur(filled, (5, 5), 0)))


@lru_cache(maxsize=None)
def _gift_box() -> tuple[np.ndarray, np.ndarray]:
    """matplotlib's gift-box clip art (RGBA), with a printed gift tag so it has texture to match."""
    import matplotlib.image as mpimg

    rgba = mpimg.imread(str(mpl_sample("Minduka_Present_Blue_Pack.png")))
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
    return read_only(*_on_white(rgb, alpha))


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
    photo = skimage_photo(photo_name)
    if key == "coin-set":
        photo = tinted(photo, (1.0, 0.85, 0.55))
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
    photo = _cover(skimage_photo(_SIDE_PHOTOS[key]), inner, h - 30 - white.shape[0])  # the panel's printed photo
    y = 10
    for block in ((white, photo) if rng.integers(0, 2) else (photo, white)):
        panel[y:y + block.shape[0], x0:x0 + block.shape[1]] = block
        y += block.shape[0] + 10
    return read_only(*_on_white(panel, np.full((h, w), 255, np.uint8), margin=0.03))
