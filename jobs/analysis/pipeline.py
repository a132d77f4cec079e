"""The whole analysis on a prepared panel, as pure pandas: first-stage lifts in, every table of the report out.

    SalesPanel ──► estimate_lifts (per product; parallel in jobs/analysis/analyze.py) ──► lifts
    lifts + panel.products ──► second_stage_frame ──► six specifications × {conv, HC1, HC3, cluster}
                                                     ├─► influence (Cook's D, leverage, DFBETAS; > 4/n)
                                                     ├─► robustness (drop flagged, winsorise, median)
                                                     ├─► Spearman correlations
                                                     ├─► first-stage noise: per first-stage SE, WLS 1/(σ²+se²)
                                                     └─► out-of-fold R²
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from jobs.analysis.diagnostics import influence, measurement_error, out_of_fold_r2, robustness, spearman
from jobs.analysis.first_stage import estimate_lifts, lift_summary
from jobs.analysis.panel import SalesPanel
from jobs.analysis.second_stage import SpecFit, fit_specs, second_stage_frame

__all__ = ["AnalysisResult", "analyze_panel", "second_stage", "HEADLINE_SPEC", "sales_lift_rows"]

#: The specification whose influence diagnostics are stored with each product in ``sales_lift``.
HEADLINE_SPEC = "(1)"


@dataclass
class AnalysisResult:
    """Everything the report shows. ``lifts``: one row per treated product (status ok/skipped);
    ``summary``: Table 4; ``frame``: the second-stage data (one row per product); ``fits``: the
    specifications; ``influence`` / ``robustness`` / ``oof_r2``: per specification name;
    ``measurement_error``: :func:`~jobs.analysis.diagnostics.measurement_error` of the headline specification."""

    panel: SalesPanel
    lifts: pd.DataFrame
    summary: dict[str, float]
    frame: pd.DataFrame
    fits: list[SpecFit]
    influence: dict[str, pd.DataFrame] = field(default_factory=dict)
    robustness: dict[str, pd.DataFrame] = field(default_factory=dict)
    spearman: pd.DataFrame = field(default_factory=pd.DataFrame)
    oof_r2: dict[str, dict[str, float]] = field(default_factory=dict)
    measurement_error: pd.DataFrame = field(default_factory=pd.DataFrame)

    def fit(self, name: str) -> SpecFit:
        for f in self.fits:
            if f.spec.name == name:
                return f
        raise KeyError(f"no specification {name}; have {[f.spec.name for f in self.fits]}")

    @property
    def skipped_products(self) -> pd.DataFrame:
        return self.lifts[self.lifts["status"] != "ok"]


def second_stage(panel: SalesPanel, lifts: pd.DataFrame, *, oof_repeats: int = 20) -> AnalysisResult:
    """Second stage and diagnostics on first-stage ``lifts`` (:func:`estimate_lifts`' frame)."""
    frame = second_stage_frame(lifts, panel)
    fits = fit_specs(frame, panel)
    result = AnalysisResult(panel, lifts, lift_summary(lifts), frame, fits, spearman=spearman(frame))
    for f in fits:
        infl = influence(f)
        result.influence[f.spec.name] = infl
        result.robustness[f.spec.name] = robustness(frame, f, infl["flagged"] if len(infl) else None,
                                                    cluster=panel.cluster)
        result.oof_r2[f.spec.name] = out_of_fold_r2(frame, f, n_repeats=oof_repeats)
    result.measurement_error = measurement_error(frame, result.fit(HEADLINE_SPEC))
    return result


def analyze_panel(panel: SalesPanel, *, lift_fn: Callable[[SalesPanel], pd.DataFrame] | None = None,
                  oof_repeats: int = 20) -> AnalysisResult:
    """First and second stage on ``panel``. ``lift_fn(panel)`` computes the first stage (default: every
    treated product in this process, :func:`estimate_lifts`)."""
    lifts = (lift_fn or estimate_lifts)(panel)
    return second_stage(panel, lifts, oof_repeats=oof_repeats)


def sales_lift_rows(result: AnalysisResult, *, analysis_run: str, analyzed_at, method: str) -> pd.DataFrame:
    """Rows of the ``sales_lift`` table: one per treated product (estimated or skipped, with the reason),
    with its video's scores and the headline specification's influence diagnostics."""
    lifts = result.lifts.set_index("product_id")
    prod = result.panel.products.reindex(lifts.index)
    infl = result.influence.get(HEADLINE_SPEC, pd.DataFrame()).reindex(lifts.index)

    def col(frame: pd.DataFrame, name: str, dtype=object):
        return frame[name] if name in frame else pd.Series(np.nan if dtype is float else None, index=frame.index)

    out = pd.DataFrame({
        "product_id": lifts.index.astype(str),
        "analysis_run": analysis_run,
        "lift": lifts["lift"].to_numpy(np.float64),
        "se": lifts["se"].to_numpy(np.float64),
        "se_robust": lifts["se_robust"].to_numpy(np.float64),
        "se_cluster2": lifts["se_cluster2"].to_numpy(np.float64),
        "n": lifts["n"].to_numpy(np.int64),
        "n_treated_days": lifts["n_treated_days"].to_numpy(np.int64),
        "n_post_days": lifts["n_post_days"].to_numpy(np.int64),
        "n_controls": lifts["n_controls"].to_numpy(np.int64),
        "status": lifts["status"].to_numpy(object),
        "reason": lifts["reason"].to_numpy(object),
        "method": method,
        "video_id": col(prod, "video_id").to_numpy(object),
        "campaign_id": col(prod, "campaign_id").to_numpy(object),
        "influencer_id": col(prod, "influencer_id").to_numpy(object),
        "model_version": col(prod, "model_version").to_numpy(object),
        "pe_raw": col(prod, "pe_raw", float).to_numpy(np.float64),
        "pe_share": col(prod, "pe_share", float).to_numpy(np.float64),
        "e_score": col(prod, "e_score", float).to_numpy(np.float64),
        "p_score": col(prod, "p_score", float).to_numpy(np.float64),
        "pe_norm": col(prod, "pe", float).to_numpy(np.float64),
        "e_norm": col(prod, "e", float).to_numpy(np.float64),
        "p_norm": col(prod, "p", float).to_numpy(np.float64),
        "cooks_d": col(infl, "cooks_d", float).to_numpy(np.float64),
        "leverage": col(infl, "leverage", float).to_numpy(np.float64),
        "influential": col(infl, "flagged").map(lambda v: None if v is None or v != v else bool(v)).to_numpy(object),
        "analyzed_at": analyzed_at,
    })
    from jobs.storage.contracts import contract

    return out[contract("sales_lift").columns].reset_index(drop=True)
