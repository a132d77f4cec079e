"""First stage: each treated product's sales lift, a two-way fixed-effects difference in differences.

For one treated product k (the paper's design)::

    daily_sales[i,t] = β · post[i,t] + δ · search[i,t] + α_i + γ_t + ε[i,t]
    over i ∈ {k} ∪ controls, observed days t;  post = k's treatment flag (0 for every control)

α_i (product) and γ_t (calendar day) are absorbed with linearmodels' ``AbsorbingLS`` (alternating
projections, pyhdfe); the lift is β̂ (sales per day, in the panel's sales unit). Standard errors, each with the
degrees of freedom of the absorbed effects (as R's lfe::felm): ``se`` conventional, ``se_robust``
heteroskedasticity-robust (White), ``se_cluster2`` clustered two-way by product and calendar day (Cameron,
Gelbach & Miller: V_product + V_day − V_product×day; the paper's choice). With a single treated product the
product dimension has one treated cluster, so the two-way error leans on the day clusters.

Each product's regression is independent: :func:`estimate_lifts` takes any subset of products, so a caller
can run the subsets in parallel (``jobs/analysis/analyze.py`` does it with Spark) and concatenate the frames.
"""
from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np
import pandas as pd

from jobs.analysis.panel import SalesPanel

__all__ = ["LIFT_COLUMNS", "LIFT_SCHEMA", "estimate_lift", "estimate_lifts", "lift_summary", "ok_lifts"]

#: Columns of :func:`estimate_lifts`' frame: one row per treated product. status 'ok' or 'skipped' (with a
#: reason code: no_pre_period, no_post_period, no_observed_days, estimation_failed: <error>).
LIFT_COLUMNS = ["product_id", "lift", "se", "se_robust", "se_cluster2", "n", "n_treated_days", "n_post_days", "n_controls",
                "status", "reason"]
#: The same as a Spark DDL schema (for mapInPandas).
LIFT_SCHEMA = ("product_id string, lift double, se double, se_robust double, se_cluster2 double, n long, n_treated_days long, "
               "n_post_days long, n_controls long, status string, reason string")


def estimate_lift(product_rows: pd.DataFrame, control_rows: pd.DataFrame) -> dict:
    """β̂ of one treated product. Both frames: observed product-days with product_id, date, daily_sales,
    treated (0/1; the controls' already 0), search. Returns one :data:`LIFT_COLUMNS` record."""
    from linearmodels.iv.absorbing import AbsorbingLS

    pid = str(product_rows["product_id"].iloc[0])
    post = int(product_rows["treated"].sum())
    rec = {"product_id": pid, "lift": np.nan, "se": np.nan, "se_robust": np.nan, "se_cluster2": np.nan, "n": 0,
           "n_treated_days": int(len(product_rows)), "n_post_days": post,
           "n_controls": int(control_rows["product_id"].nunique()), "status": "skipped", "reason": None}
    if post == 0:
        rec["reason"] = "no_post_period"
        return rec
    if post == len(product_rows):
        rec["reason"] = "no_pre_period"
        return rec
    data = pd.concat([product_rows, control_rows], ignore_index=True)
    exog_cols = ["treated"] + (["search"] if data["search"].nunique() > 1 else [])
    absorb = pd.DataFrame({"product": pd.Categorical(data["product_id"]), "day": pd.Categorical(data["date"])})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # absorbed-variable notices; a failure raises below
            model = AbsorbingLS(data["daily_sales"], data[exog_cols], absorb=absorb, drop_absorbed=True)
            conventional = model.fit(cov_type="unadjusted", debiased=True)
            robust = model.fit(cov_type="robust", debiased=True)
            two_way = pd.DataFrame({"product": absorb["product"].cat.codes, "day": absorb["day"].cat.codes})
            clustered = model.fit(cov_type="clustered", debiased=True, clusters=two_way)
    except Exception as e:  # singular design, numerical failure: a reasoned skip, not a crash of the batch
        rec["reason"] = f"estimation_failed: {type(e).__name__}: {e}"[:300]
        return rec
    if "treated" not in conventional.params.index:
        rec["reason"] = "estimation_failed: the post-video flag is absorbed by the fixed effects"
        return rec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a two-way variance of the search term can come out negative (NaN SE)
        ses = {col: float(fit.std_errors["treated"]) for col, fit in (("se", conventional), ("se_robust", robust),
                                                                     ("se_cluster2", clustered))}
    rec.update(lift=float(conventional.params["treated"]), **ses, n=int(conventional.nobs), status="ok")
    return rec


def estimate_lifts(panel: SalesPanel, product_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """The first stage for ``product_ids`` (default: every treated product), one row each (:data:`LIFT_COLUMNS`).

    Regressions use the observed product-days; the controls' post flag is 0 (they were all treated before
    the window or never, so they carry no within-window change).
    """
    treated = set(panel.treated_ids)
    ids = sorted(treated) if product_ids is None else [str(p) for p in product_ids]
    unknown = [p for p in ids if p not in treated]
    if unknown:
        raise KeyError(f"not treated products of this panel: {unknown[:5]}")
    cols = ["product_id", "date", "daily_sales", "treated", "search"]
    observed = panel.days.loc[panel.days["observed"], cols]
    observed = observed[np.isfinite(observed["daily_sales"])]
    controls = observed[observed["product_id"].isin(set(panel.control_ids))].assign(treated=0.0)
    wanted = observed[observed["product_id"].isin(set(ids))]
    groups = dict(tuple(wanted.groupby("product_id", sort=False)))
    records = []
    for pid in ids:
        rows = groups.get(pid)
        if rows is None or rows.empty:
            records.append({**dict.fromkeys(LIFT_COLUMNS), "product_id": pid, "n": 0, "n_treated_days": 0,
                            "n_post_days": 0, "n_controls": int(controls["product_id"].nunique()),
                            "status": "skipped", "reason": "no_observed_days"})
            continue
        records.append(estimate_lift(rows, controls))
    return pd.DataFrame.from_records(records, columns=LIFT_COLUMNS).astype(
        {"lift": float, "se": float, "se_robust": float, "se_cluster2": float, "n": "int64", "n_treated_days": "int64",
         "n_post_days": "int64", "n_controls": "int64"})


def ok_lifts(lifts: pd.DataFrame) -> pd.DataFrame:
    """The estimated rows (status 'ok') indexed by product_id."""
    return lifts[lifts["status"] == "ok"].set_index("product_id")


def lift_summary(lifts: pd.DataFrame) -> dict[str, float]:
    """Table 4 of the paper: N, mean, SD (n − 1), min, median, max of the estimated lifts."""
    x = ok_lifts(lifts)["lift"].astype(np.float64)
    return {"n": int(len(x)), "mean": float(x.mean()), "sd": float(x.std(ddof=1)) if len(x) > 1 else float("nan"),
            "min": float(x.min()), "median": float(x.median()), "max": float(x.max())}
