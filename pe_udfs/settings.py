"""Settings of the per-video computation (part of the one config object, :class:`jobs.config.PEConfig`).

The clip settings are saved with every model and are what scoring uses to make clips."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StrictSettings(BaseModel):
    """Base of every config section: unknown keys and wrong types are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class ClipSettings(StrictSettings):
    """How a video becomes a clip tensor (S, 3, size, size); saved with every model."""

    fps: float = Field(1.0, gt=0, le=60)
    max_seconds: int = Field(60, ge=1, le=3600)
    size: int = Field(224, ge=16, le=1024)
    match_max_width: int = Field(640, ge=64)  # frames for feature matching are capped at this width
    max_duration_s: float = Field(3600.0, gt=0)  # longer videos are rejected (reason: too_long)
    max_pixels: int = Field(4096 * 4096, ge=1)  # larger frames are rejected (reason: too_large)


class DecodeSettings(StrictSettings):
    """What counts as a video (checked for every decode; not saved with the model).

    ``allowed_formats``: FFmpeg demuxer names a file's container must match (one of the comma-separated names
    FFmpeg reports, e.g. 'mov,mp4,m4a,3gp,3g2,mj2'); a JPEG renamed .mp4 opens as 'jpeg_pipe' and is refused.
    ``min_frames``: fewer decoded frames than this is not a video; ``min_frame_side``: the least frame side in
    pixels. ``on_truncated``: a video whose decoding
    stops early (corrupt or cut-off data) is scored from its good seconds and flagged (``flag``: pe_scores
    .input_truncated and .input_warnings) or rejected with reason ``truncated`` (``fail``)."""

    allowed_formats: list[str] = Field(default_factory=lambda: [
        "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "flv", "mpegts", "mpeg", "ogg"],
        min_length=1)
    min_frames: int = Field(2, ge=1, le=10_000)
    # frames whose shorter side is below this many pixels are refused (reason too_small): a 1x1 video
    # upscaled to the model's size shows no product
    min_frame_side: int = Field(16, ge=1, le=4096)
    on_truncated: Literal["flag", "fail"] = "flag"


class ProductSettings(StrictSettings):
    # a matcher registered in pe_udfs.product.MATCHERS (sift, orb_hull); the config (jobs.config.PEConfig)
    # refuses any other name
    method: str = "sift"
    # the product region (sift): the listing's silhouette (its non-background pixels) projected by the
    # homography, or the whole projected listing rectangle, white margins included (for comparison)
    region: Literal["silhouette", "listing_rect"] = "silhouette"
    # background model of the listing photo: pixels within this distance (max over RGB, 0-255) of the
    # border's median colour and connected to the border are background
    background_tolerance: int = Field(28, ge=1, le=255)
    ratio: float = Field(0.75, gt=0, lt=1)
    min_inliers: int = Field(10, ge=4)
    ransac_reproj_px: float = Field(5.0, gt=0)
    min_area_share: float = Field(0.002, ge=0, le=1)  # of the frame
    max_area_share: float = Field(0.95, gt=0, le=1)
    listing_max_side: int = Field(800, ge=64)
    # ours, beyond the gates: RANSAC iterations; a quad whose shortest side is below this share of
    # its longest is rejected (near-singular homographies give needle-thin quads)
    ransac_max_iters: int = Field(2000, ge=10)
    min_side_ratio: float = Field(0.05, ge=0, lt=1)
    # a flat product seen by a phone: opposite sides of its outline differ by the ratio of their distances
    # to the camera, under 2 unless held at the lens at a steep angle; chance matches (e.g. caption text
    # against the packaging's text) give wildly foreshortened quads
    max_opposite_side_ratio: float = Field(2.0, gt=1)
    max_frame_features: int = Field(0, ge=0)  # SIFT keypoints kept per frame (strongest first); 0 = all
    # orb_hull (the paper's code, for replication): ORB keeps this many keypoints per image, scored with
    # ORB_FAST_SCORE, on the listing and every frame squashed to orb_size×orb_size grayscale (theirs: 1000, 224)
    orb_features: int = Field(1000, ge=10)
    orb_size: int = Field(224, ge=32)
    # orb_hull only: their two bugs, switchable for an exact replication. norm: the matcher's distance
    # ('l2' = theirs, cv2.BFMatcher's default, wrong for binary descriptors; 'hamming' = the fix).
    # drop_unmatched_seconds: a second whose matches give no hull (< 3 distinct points, or collinear) is
    # dropped, so later product masks pair with earlier engagement seconds (theirs); false = the fix: it is
    # kept with an empty mask. The sift method always uses L2 and never drops a second.
    norm: Literal["l2", "hamming"] = "l2"
    drop_unmatched_seconds: bool = True
    match_workers: int = Field(0, ge=0)  # threads matching frames of one video; 0 = one per CPU core
    # listing images over this many pixels are rejected (reason too_large) from their header, before decoding:
    # a 10000x10000 PNG of 7 MB decodes to 400 MB and its features to gigabytes
    max_image_pixels: int = Field(25_000_000, ge=1)


class SaliencySettings(StrictSettings):
    # a method registered in pe_udfs.saliency.METHODS (vanilla, smoothgrad, integrated_gradients, gradcam,
    # spectral_residual, density, ablation); the config (jobs.config.PEConfig) refuses any other name
    method: str = "vanilla"
    smoothgrad_samples: int = Field(8, ge=1)
    smoothgrad_stdev: float = Field(0.1, gt=0)
    ig_steps: int = Field(8, ge=1)  # integrated_gradients: steps from the black clip
    first_seconds: int = Field(6, ge=1)  # the paper's peak-attention window
    grid: int = Field(14, ge=1)  # coarse per-second engagement grid stored in pe_seconds
    # frames per backbone pass of the gradient (peak memory grows with it, not with the clip); 0 = auto: on
    # CUDA as many as fit in half the GPU's free memory, on the CPU 8
    frame_chunk: int = Field(0, ge=0)
    # backbone arithmetic of the gradient passes: float32 (exact), or bfloat16 autocast (GPU, or CPUs with
    # native bf16 kernels; heatmaps within the tolerance tests/pe_udfs/test_saliency.py states)
    precision: Literal["float32", "bfloat16"] = "float32"


@dataclass(frozen=True)
class ScoringPlan:
    """How a scoring run scores every video, resolved once from the run's config and the model's saved sampling.

    ``clip``: the model's sampling (fps, frame size, matching width, input limits: what its backbone and head
    were trained on) over the run's scoring window ``clip.max_seconds`` (the paper's 60 s), whatever window the
    model trained on (the head is convolutional with a global max pool); ``product``, ``saliency``, ``decode``:
    the run's settings. The executor memory plan, the ``scoring_config`` id and the per-video work all read this
    one object, so they cannot disagree about the window or the matching resolution."""

    clip: ClipSettings
    product: ProductSettings
    saliency: SaliencySettings
    decode: DecodeSettings

    @classmethod
    def resolve(cls, model_clip: ClipSettings, *, window_seconds: int, product: ProductSettings,
                saliency: SaliencySettings, decode: DecodeSettings) -> ScoringPlan:
        return cls(scoring_clip(model_clip, window_seconds), product, saliency, decode)

    @property
    def frames(self) -> int:
        """Frames of a video that fills the window (S of the clip tensor (S, 3, size, size))."""
        return max(1, math.ceil(self.clip.max_seconds * self.clip.fps))

    @property
    def config_id(self) -> str:
        """The ``scoring_config`` id stored with every score of this plan (:func:`scoring_config_id`)."""
        return scoring_config_id(self.saliency, self.product, self.clip)


class AdviceSettings(StrictSettings):
    """Edit advice from the per-second masses (``pe advise``, pe_udfs/advice.py); chosen on the validation seed.

    A second is a *missed moment* when its predicted engagement is at least the video's ``peak_quantile``
    quantile and the product is absent or holds under ``off_ratio`` × the video's own share of engagement.
    A suggestion's predicted PE assumes a shown product holds the video's own on-product share of each
    second's engagement, at least ``reference_share``."""

    # the registered edit kinds to suggest (pe_udfs.advice.EDITS); the config refuses any other name
    edits: list[str] = Field(default_factory=lambda: ["show_product", "show_earlier", "cut_off_product"])
    peak_quantile: float = Field(0.5, ge=0, le=1)
    off_ratio: float = Field(0.25, ge=0, le=1)
    reference_share: float = Field(0.1, ge=0, le=1)
    min_moment_seconds: int = Field(1, ge=1)
    max_gap_seconds: int = Field(0, ge=0)  # flagged runs this close are one moment
    max_cut_share: float = Field(0.25, ge=0, le=1)  # cut at most this share of the video's seconds
    min_gain: float = Field(0.005, ge=0)  # suggestions gaining less (rank_by, absolute) are dropped
    max_suggestions: int = Field(3, ge=1, le=10)
    rank_by: Literal["pe_share", "pe_share_6s"] = "pe_share"


def scoring_clip(model_clip: ClipSettings, max_seconds: int) -> ClipSettings:
    """The clip settings scoring samples a video with: the model's sampling (fps, size, limits; what its backbone
    and head were trained on) and the scoring window ``max_seconds`` (``clip.max_seconds``, the paper's 60 s),
    whatever window the model was trained on: the head is convolutional with a global max pool."""
    return model_clip.model_copy(update={"max_seconds": int(max_seconds)})


#: Product settings that change no stored result (threads, input limits): outside the scoring_config id.
RESULT_NEUTRAL_PRODUCT_SETTINGS = {"match_workers", "max_image_pixels"}


def scoring_config_id(saliency: SaliencySettings, product: ProductSettings, clip: ClipSettings) -> str:
    """What a stored score depends on besides the model version, as ``<saliency>/<product>/<window>s/<hash>``,
    e.g. ``vanilla/sift/60s/3f9a0c1e``: the hash covers every saliency and product setting that changes a result
    (not ``match_workers``, ``max_image_pixels`` nor ``frame_chunk``, which change no result), the window and the matching resolution. A new id makes videos candidates again."""
    # ig_steps was added later and changes only integrated_gradients: left out otherwise, so earlier ids stand
    neutral = {"frame_chunk"} | (set() if saliency.method == "integrated_gradients" else {"ig_steps"})
    payload = {"saliency": saliency.model_dump(exclude=neutral), "product": product.model_dump(exclude=RESULT_NEUTRAL_PRODUCT_SETTINGS),
               "window_s": clip.max_seconds, "match_max_width": clip.match_max_width}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:8]
    return f"{saliency.method}/{product.method}/{clip.max_seconds}s/{digest}"
