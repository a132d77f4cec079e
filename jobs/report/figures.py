"""The pure pieces of a report page: a frame with its heatmap and product quad overlaid, which seconds a strip
shows, a video's percentiles among its campaign, and the per-second curves (numpy, OpenCV and matplotlib; no Spark,
no lake). Images are (H, W, 3) uint8 RGB at the video's own aspect ratio."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

#: Scores whose percentile within the campaign is shown.
PERCENTILE_FIELDS = ("pe_share", "pe_raw", "pe_lift", "e_score", "p_score")


def heat_vmax(grids: Sequence[Sequence[float] | None]) -> float:
    """The largest engagement cell over all seconds of a video (so the overlay's colours compare across
    seconds); 0 when there is no grid."""
    vals = [float(np.max(g)) for g in grids if g is not None and len(g)]
    return max(vals) if vals else 0.0


def overlay_frame(frame: np.ndarray, e_grid: Sequence[float] | None, quad: Sequence[float] | None, *,
                  quad_size: int | None = None, vmax: float | None = None, alpha: float = 0.6,
                  cmap: str = "jet") -> np.ndarray:
    """One sampled frame with the engagement heatmap and the product quad drawn on it, at the frame's own
    size and aspect ratio.

    frame: (H, W, 3) uint8 RGB — the video's frame as shown (any aspect), or the square model frame.
    e_grid: grid·grid engagement means over the model frame, row-major (None: no heatmap). quad: x0, y0, …,
    x3, y3 (None: not found), in the frame's pixel coordinates, or with ``quad_size`` on the quad_size ×
    quad_size model frame. The model frame is the whole video frame squashed to a square, so both map back
    by scaling each axis: the heatmap is upsampled bicubically to H×W, the quad scaled by (W, H)/quad_size.
    The heat is scaled by ``vmax`` (default: its own max), coloured with ``cmap`` and blended with opacity
    ``alpha``·heat, so cold areas keep the frame visible. Returns (H, W, 3) uint8 RGB.
    """
    import cv2
    from matplotlib import colormaps

    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be (H, W, 3), got {frame.shape}")
    h, w = frame.shape[:2]
    out = frame.astype(np.float32) / 255.0
    if e_grid is not None and len(e_grid):
        g = int(round(math.sqrt(len(e_grid))))
        if g * g != len(e_grid):
            raise ValueError(f"e_grid must hold grid·grid values, got {len(e_grid)}")
        grid = np.asarray(e_grid, np.float32).reshape(g, g)
        top = float(vmax) if vmax else float(grid.max())
        heat = np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC) / top, 0, 1) if top > 0 \
            else np.zeros((h, w), np.float32)
        colour = colormaps[cmap](heat)[..., :3].astype(np.float32)
        a = (alpha * heat)[..., None]
        out = out * (1 - a) + colour * a
    img = np.ascontiguousarray((np.clip(out, 0, 1) * 255).round().astype(np.uint8))
    if quad is not None and len(quad) == 8 and all(v is not None and np.isfinite(v) for v in quad):
        pts = np.asarray(quad, np.float64).reshape(4, 2)
        if quad_size:
            pts = pts * np.array([w, h], np.float64) / float(quad_size)
        cv2.polylines(img, [np.round(pts).astype(np.int32).reshape(-1, 1, 2)], True, (0, 255, 0), 2, cv2.LINE_AA)
    return img


def strip_seconds(n_seconds: int, k: int) -> list[int]:
    """``k`` seconds spread evenly over 0..n_seconds-1 (all of them when there are fewer)."""
    if n_seconds <= 0 or k <= 0:
        return []
    if n_seconds <= k:
        return list(range(n_seconds))
    return sorted({int(round(x)) for x in np.linspace(0, n_seconds - 1, k)})


def percentiles(video_row: pd.Series, campaign: pd.DataFrame, fields: Sequence[str] = PERCENTILE_FIELDS
                ) -> pd.DataFrame:
    """Per score: the video's value, its rank (1 = highest) and percentile (% of campaign videos with a value
    ≤ it) among ``campaign`` (the scores of the campaign's videos, this one included)."""
    rows = []
    for f in fields:
        if f not in campaign or f not in video_row or pd.isna(video_row[f]):
            continue
        vals = campaign[f].dropna().to_numpy(np.float64)
        v = float(video_row[f])
        rows.append({"score": f, "value": v, "rank": int((vals > v).sum()) + 1, "of": int(len(vals)),
                     "percentile": 100.0 * float((vals <= v).sum()) / len(vals) if len(vals) else float("nan")})
    return pd.DataFrame(rows, columns=["score", "value", "rank", "of", "percentile"])


def curves_figure(seconds: pd.DataFrame, path: str, *, title: str = "") -> str:
    """Per-second curves (engagement Σe, product presence Σp with the seconds the product was found shaded,
    PE Σe·p) from ``pe_seconds`` rows; saved as PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    s = seconds.sort_values("second")
    x = s["second"].to_numpy()
    fig, axes = plt.subplots(3, 1, figsize=(8, 5.5), dpi=100, sharex=True)
    series = [("e_mass", "engagement Σe", "#4c72b0"), ("p_mass", "product presence Σp", "#55a868"),
              ("pe_mass", "PE Σe·p", "#c44e52")]
    found = s["product_found"].fillna(False).astype(bool).to_numpy() if "product_found" in s else np.zeros(len(s), bool)
    for ax, (col, label, colour) in zip(axes, series):
        y = pd.to_numeric(s[col], errors="coerce").to_numpy(np.float64) if col in s else np.full(len(s), np.nan)
        ax.plot(x, y, color=colour, marker="o", ms=3, lw=1.5)
        for sec in x[found]:
            ax.axvspan(sec - 0.5, sec + 0.5, color="#55a868", alpha=0.12, lw=0)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
        if np.all(np.isnan(y)):
            ax.text(0.5, 0.5, "not computed (product-only scoring)", transform=ax.transAxes, ha="center",
                    fontsize=8, color="#666")
    axes[-1].set_xlabel("second (green: product found)")
    if title:
        axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def save_png(img: np.ndarray, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.imsave(path, img)
    return path


def engagement_pe_figure(board: pd.DataFrame, path: str, *, engagement: str = "predicted_engagement",
                         pe: str = "pe_share") -> str:
    """A campaign's videos as points: predicted engagement (x) against PE (y, share of the engagement on the
    product, in %), split at the campaign's medians; the quadrant of high engagement and low PE ("liked but
    not selling": people watch, but not the product) shaded. Saved as PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    x = pd.to_numeric(board[engagement], errors="coerce").to_numpy(np.float64) if engagement in board else \
        np.full(len(board), np.nan)
    y = 100 * pd.to_numeric(board[pe], errors="coerce").to_numpy(np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=100)
    if ok.any():
        mx, my = float(np.median(x[ok])), float(np.median(y[ok]))
        pad_x = max(float(np.ptp(x[ok])) * 0.05, 1e-6)
        pad_y = max(float(np.ptp(y[ok])) * 0.05, 1e-6)
        x0, x1 = float(x[ok].min()) - pad_x, float(x[ok].max()) + pad_x
        y0, y1 = float(y[ok].min()) - pad_y, float(y[ok].max()) + pad_y
        ax.fill_between([mx, x1], y0, my, color="#c44e52", alpha=0.12, lw=0)
        ax.text(x1, y0, "liked but not selling", ha="right", va="bottom", fontsize=9, color="#c44e52")
        ax.axvline(mx, color="#999", lw=0.8, ls="--")
        ax.axhline(my, color="#999", lw=0.8, ls="--")
        ax.scatter(x[ok], y[ok], s=18, color="#4c72b0")
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    else:
        ax.text(0.5, 0.5, "no video has both scores", transform=ax.transAxes, ha="center", color="#666")
    ax.set_xlabel("predicted engagement (the model's, standardised)")
    ax.set_ylabel("PE: engagement on the product (%)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
