"""``pe score-video FILE --product IMAGE [--product VIEW=IMAGE ...]``: score one video on this machine, no Spark,
no tables.

One ``--product`` is the product's listing image; several are its views (front, side, packaging...), each
second matched against all of them and the best confident match kept (as ``pe score`` does with
``product_images``), the view named in each second's ``matched_view``. ``VIEW=IMAGE`` names a view; a plain
image is named after its file (``main`` when it is the only one).

The model is the registered ``@champion`` unless ``--model URI`` names another (``models:/name/3``,
``models:/name@alias``, ``runs:/<id>/model``); the video is scored under the same ScoringPlan as ``pe score``
(PEConfig.scoring_plan: the model's fps, size and matching width over the scoring window ``clip.max_seconds``,
whatever window the model trained on), so the same video and settings report the same ``scoring_config``. ``--product-only``
skips the engagement model and reports the product heatmap alone, over the same window.
"""
from __future__ import annotations

import json
import os
from typing import Any

from jobs.config import PEConfig
from pe_udfs.errors import UsageError
from pe_udfs.product_views import DEFAULT_VIEW, ListingCache
from pe_udfs.saliency import resolve_device
from pe_udfs.score import score_video

__all__ = ["score_one", "named_views", "render_text", "render_json"]


def score_one(cfg: PEConfig, video: str, product_images: str | list[str], *, model_uri: str | None = None,
              product_only: bool = False) -> dict[str, Any]:
    """Score ``video`` against the product's listing image(s) (``[VIEW=]IMAGE`` each); returns a JSON-ready
    report: product_image (the first), product_views ({view: image}), model (name/version/run_id/uri, or None),
    device, then the fields of :meth:`pe_udfs.score.VideoScore.to_dict` (scores, seconds, timings, ...)."""
    device = str(resolve_device(cfg.device))
    model_info: dict[str, Any] | None = None
    module = None
    plan = cfg.scoring_plan(None)
    views = named_views([product_images] if isinstance(product_images, str) else list(product_images))
    if not product_only:
        loaded = _load_model(cfg, model_uri)
        module, plan, device = loaded.module, cfg.scoring_plan(loaded.clip), loaded.device
        model_info = {"name": loaded.name, "version": loaded.version, "run_id": loaded.run_id, "uri": loaded.uri}
    schemes = cfg.io.allowed_schemes
    listings = ListingCache(max_size=len(views)).views(views, plan.product, allowed_schemes=schemes)
    result = score_video(video, listings, model=module, clip=plan.clip, product=plan.product,
                         saliency=plan.saliency, device=device, product_only=product_only, allowed_schemes=schemes,
                         decode=plan.decode)
    return {"product_image": views[0][1], "product_views": dict(views), "model": model_info, "device": device,
            "window_seconds": plan.clip.max_seconds, "scoring_config": plan.config_id, **result.to_dict()}


def named_views(args: list[str]) -> list[tuple[str, str]]:
    """``[VIEW=]IMAGE`` arguments → (view name, image) pairs: ``front=a.png`` names its view; a plain image is
    named after its file stem, or ``main`` when it is the only view. Raises :class:`~pe_udfs.errors.UsageError` for no
    image, an empty name or image, or a view named twice."""
    if not args:
        raise UsageError("no_product_image", "give the product's listing image: --product IMAGE")
    pairs = []
    for arg in args:
        name, sep, image = arg.partition("=")
        if not sep or "/" in name or ":" in name:  # a path or URI that merely contains '='
            name, image = (DEFAULT_VIEW if len(args) == 1 else os.path.splitext(os.path.basename(arg))[0]), arg
        if not name.strip() or not image.strip():
            raise UsageError("bad_product_view", f"--product '{arg}': expected IMAGE or VIEW=IMAGE")
        pairs.append((name.strip(), image))
    names = [n for n, _ in pairs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError("duplicate_view", f"view name(s) {', '.join(twice)} given twice; name each view: "
                                "--product front=IMAGE --product side=IMAGE")
    return pairs


def _load_model(cfg: PEConfig, model_uri: str | None):
    from models.promotion_text import champion_explained
    from models.registry import ModelLoadError

    registry = cfg.model_registry()
    with champion_explained(registry,
                            hint=" For the product heatmap alone, use --product-only; another model: --model URI."):
        try:
            return registry.load(model_uri, device=cfg.device)
        except ValueError as e:  # a model URI of an unsupported form
            raise ModelLoadError("bad_model_uri", f"cannot load the engagement model: {e}") from e


def render_json(report: dict[str, Any]) -> str:
    """One JSON document (strict: no NaN/Infinity)."""
    return json.dumps(report, indent=2, allow_nan=False)


def render_text(report: dict[str, Any]) -> str:
    """Scores, then one line per sampled second: second, product_found, inliers, e_mass, pe_mass, quad."""
    meta = report["video"]
    lines = [f"video:   {meta['uri']}",
             f"         {meta['width']}x{meta['height']}, {meta['duration_s']:.1f} s"
             + (f", rotated {meta['rotation']}°" if meta.get("rotation") else "")
             + (" (truncated)" if meta.get("truncated") else ""),
             "product: " + ", ".join(f"{name} {image}" if len(report["product_views"]) > 1 else image
                                     for name, image in report["product_views"].items())]
    model = report.get("model")
    if model:
        lines.append(f"model:   {model['name']} v{model['version']} (run {model['run_id'] or '-'}) on "
                     f"{report['device']}, saliency {report['saliency_method']}")
    else:
        lines.append("model:   none (product heatmap only)")
    s = report["scores"]
    lines.append(f"seconds: {report['n_seconds']} sampled (window {report['window_seconds']} s), product found in "
                 f"{report['product_found_seconds']}")
    if not report["product_only"]:
        lines.append(f"predicted engagement: {report['predicted_engagement']:.4f}")
        lines.append("scores          all seconds   first 6 s")
        for name in ("pe_share", "pe_lift", "pe_raw", "e_score", "p_score"):
            lines.append(f"  {name:<12}  {s[name]:>11.4f}  {s[name + '_6s']:>10.4f}")
    else:
        lines.append(f"p_score: {s['p_score']:.0f} (first 6 s: {s['p_score_6s']:.0f})")
    lines.append("")
    several = len(report["product_views"]) > 1
    width = max([4, *(len(n) for n in report["product_views"])])
    view_head = f"  {'view':<{width}}" if several else ""
    lines.append(f"second  found  inliers      e_mass     pe_mass{view_head}  quad (x0,y0 x1,y1 x2,y2 x3,y3 on the "
                 "224 grid)")
    for r in report["seconds"]:
        quad = r["quad_224"]
        quad_txt = " ".join(f"{quad[i]:.0f},{quad[i + 1]:.0f}" for i in range(0, 8, 2)) if quad else "-"
        e = f"{r['e_mass']:>10.1f}" if r["e_mass"] is not None else f"{'-':>10}"
        pe = f"{r['pe_mass']:>10.1f}" if r["pe_mass"] is not None else f"{'-':>10}"
        view = f"  {r.get('matched_view') or '-':<{width}}" if several else ""
        lines.append(f"{r['second']:>6}  {'yes' if r['product_found'] else 'no':>5}  {r['inliers']:>7}  {e}  {pe}{view}"
                     f"  {quad_txt}")
    t = report["timings"]
    lines.append("")
    lines.append("time: " + ", ".join(f"{k} {t[k]:.2f} s" for k in ("decode", "product", "saliency", "pe", "total")
                                       if k in t))
    return "\n".join(lines)
