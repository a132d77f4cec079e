"""How much to trust a second-stage coefficient: influence, robustness, rank correlations, out-of-fold R².

* :func:`influence` — Cook's distance, leverage (hat values) and DFBETAS per product (statsmodels
  ``OLSInfluence``); a product is flagged when its Cook's distance exceeds 4/n.
* :func:`robustness` — the focus coefficient refitted: without the flagged products, with the lift
  winsorised at 1/99 % (scipy), and as a median regression (statsmodels ``QuantReg``).
* :func:`spearman` — rank correlations of the lift with each score (scipy).
* :func:`out_of_fold_r2` — predictive R² of a specification, only ever out of fold (repeated K-fold,
  scikit-learn splits): 1 − Σ(y − ŷ_oof)² / Σ(y − ȳ)².
* :func:`measurement_error` — the lift is itself an estimate: how much of its spread is first-stage
  sampling noise under each first-stage standard error, and the focus coefficient refitted with the
  weights of Lewis & Linzer (2005) for an estimated dependent variable.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from jobs.analysis.second_stage import SpecFit, fit_spec

__all__ = ["influence", "robustness", "spearman", "out_of_fold_r2", "measurement_error", "INFLUENCE_COLUMNS",
           "FIRST_STAGE_SE"]

#: The first-stage standard errors stored with every lift (sales_lift), column → what they assume.
FIRST_STAGE_SE = {"se": "conventional", "se_robust": "heteroskedasticity-robust",
                  "se_cluster2": "two-way cluster (product, day)"}

INFLUENCE_COLUMNS = ["cooks_d", "leverage", "dfbetas", "flagged"]


def influence(fit: SpecFit) -> pd.DataFrame:
    """Per product of ``fit``: cooks_d, leverage, dfbetas (of the focus term), flagged (cooks_d > 4/n).
    Index: product_id. Empty when the fit was skipped."""
    if fit.results is None:
        return pd.DataFrame(columns=INFLUENCE_COLUMNS)
    from statsmodels.stats.outliers_influence import OLSInfluence

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        infl = OLSInfluence(fit.results)
        cooks = np.asarray(infl.cooks_distance[0])
        dfbetas = np.asarray(infl.dfbetas)
    names = list(fit.results.params.index)
    col = names.index(fit.spec.focus) if fit.spec.focus in names else 0
    out = pd.DataFrame({"cooks_d": cooks, "leverage": np.asarray(infl.hat_matrix_diag),
                        "dfbetas": dfbetas[:, col]}, index=pd.Index(fit.product_ids, name="product_id"))
    out["flagged"] = out["cooks_d"] > 4.0 / fit.n
    return out


def robustness(frame: pd.DataFrame, fit: SpecFit, flagged: pd.Series | None = None, *,
               cluster: str | None = None) -> pd.DataFrame:
    """The focus coefficient of ``fit`` under alternatives; one row each: check, n, coef, se, p, se_kind.

    rows: 'OLS' (as fitted; HC1), 'drop Cook's D > 4/n' (HC1), 'lift winsorised 1/99 %' (HC1),
    'median regression' (QuantReg, its default kernel SE).
    """
    import statsmodels.formula.api as smf
    from scipy.stats.mstats import winsorize

    spec, rows = fit.spec, []
    if fit.skipped:
        return pd.DataFrame(columns=["check", "n", "coef", "se", "p", "se_kind"])
    used = frame.loc[fit.product_ids]

    def ols_row(check: str, f: SpecFit) -> dict:
        return {"check": check, "n": f.n, "coef": f.focus("coef"), "se": f.focus("se_hc1"), "p": f.focus("p_hc1"),
                "se_kind": "HC1", "skipped": f.skipped}

    rows.append(ols_row("OLS", fit))
    if flagged is not None:
        keep = ~flagged.reindex(used.index).fillna(False).astype(bool)
        rows.append(ols_row(f"drop Cook's D > 4/n ({int((~keep).sum())} products)",
                            fit_spec(used[keep], spec, cluster=cluster)))
    w = used.copy()
    w["lift"] = np.asarray(winsorize(w["lift"].to_numpy(np.float64), limits=(0.01, 0.01)))
    rows.append(ols_row("lift winsorised 1/99 %", fit_spec(w, spec, cluster=cluster)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            q = smf.quantreg(spec.formula, used).fit(q=0.5)
        rows.append({"check": "median regression", "n": int(q.nobs), "coef": float(q.params.get(spec.focus, np.nan)),
                     "se": float(q.bse.get(spec.focus, np.nan)), "p": float(q.pvalues.get(spec.focus, np.nan)),
                     "se_kind": "QuantReg", "skipped": None})
    except (ValueError, np.linalg.LinAlgError) as e:
        rows.append({"check": "median regression", "n": fit.n, "coef": np.nan, "se": np.nan, "p": np.nan,
                     "se_kind": "QuantReg", "skipped": f"estimation_failed: {e}"})
    return pd.DataFrame(rows)


def spearman(frame: pd.DataFrame, columns: tuple[str, ...] = ("pe", "e", "p", "e_p")) -> pd.DataFrame:
    """Spearman's ρ of the lift with each score column: score, rho, p, n."""
    from scipy.stats import spearmanr

    rows = []
    for c in columns:
        ok = frame[["lift", c]].dropna()
        if len(ok) < 3 or ok[c].nunique() < 2 or ok["lift"].nunique() < 2:
            rows.append({"score": c, "rho": np.nan, "p": np.nan, "n": len(ok)})
            continue
        r = spearmanr(ok["lift"], ok[c])
        rows.append({"score": c, "rho": float(r.statistic), "p": float(r.pvalue), "n": len(ok)})
    return pd.DataFrame(rows)


def out_of_fold_r2(frame: pd.DataFrame, fit: SpecFit, *, n_splits: int = 5, n_repeats: int = 20,
                   seed: int = 0) -> dict[str, float]:
    """Predictive R² of ``fit``'s specification from repeated K-fold: each product predicted by a model that
    never saw it. Returns mean and sd over repeats, and n. The design matrix is built once on all rows
    (dummy coding only), so a fold missing a category level gets the minimum-norm (pinv) solution."""
    import patsy
    import statsmodels.api as sm
    from sklearn.model_selection import RepeatedKFold

    if fit.skipped or fit.n < 2 * n_splits:
        return {"mean": float("nan"), "sd": float("nan"), "n": fit.n}
    used = frame.loc[fit.product_ids]
    y, X = patsy.dmatrices(fit.spec.formula, used, return_type="dataframe")
    y, X = y.to_numpy()[:, 0], X.to_numpy()
    scores, pred = [], np.empty_like(y)
    splitter = RepeatedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=seed)
    for i, (train, test) in enumerate(splitter.split(X)):
        with warnings.catch_warnings():  # a fold without some category level is rank-deficient: pinv, as said
            warnings.simplefilter("ignore")
            pred[test] = sm.OLS(y[train], X[train]).fit().predict(X[test])
        if (i + 1) % n_splits == 0:  # one complete repeat: every product predicted once
            scores.append(1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))
    return {"mean": float(np.mean(scores)), "sd": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
            "n": fit.n}


def measurement_error(frame: pd.DataFrame, fit: SpecFit) -> pd.DataFrame:
    """One row per first-stage SE kind of :data:`FIRST_STAGE_SE` present in ``frame``: se_kind, n (lifts with
    a finite SE of that kind), undefined (lifts without: a two-way variance V_product + V_day − V_het can come
    out negative), median_se, noise_share = mean(se²) / var(lift) (the share of the lifts' variance that is
    first-stage sampling noise), significant = share of lifts with |lift / se| > 1.96, and ``fit``'s focus
    coefficient refitted on those n lifts by WLS with weights 1 / (σ̂² + se²), σ̂² the variance of the lift left
    once the noise is taken out (Lewis & Linzer 2005, eq. 8): coef, se (HC1), p. Empty when the fit was skipped."""
    import statsmodels.api as sm

    columns = ["se_kind", "n", "undefined", "median_se", "noise_share", "significant", "coef", "se", "p"]
    if fit.results is None:
        return pd.DataFrame(columns=columns)
    used = frame.loc[fit.product_ids]
    names = list(fit.results.params.index)
    col = names.index(fit.spec.focus) if fit.spec.focus in names else 0
    rows = []
    for column, kind in FIRST_STAGE_SE.items():
        if column not in used:
            continue
        se = used[column].to_numpy(np.float64)
        ok = np.isfinite(se)
        X, y, omega2 = fit.results.model.exog[ok], fit.results.model.endog[ok], se[ok] ** 2
        n, k = X.shape
        if n <= k:
            continue
        resid2 = float(np.sum(sm.OLS(y, X).fit().resid ** 2))
        sigma2 = max(0.0, (resid2 - omega2.sum() + np.trace(np.linalg.pinv(X.T @ X) @ (X.T * omega2) @ X)) / (n - k))
        wls = sm.WLS(y, X, weights=1.0 / (sigma2 + omega2)).fit(cov_type="HC1")
        rows.append({"se_kind": kind, "n": n, "undefined": int((~ok).sum()), "median_se": float(np.median(se[ok])),
                     "noise_share": float(omega2.mean() / np.var(y, ddof=1)),
                     "significant": float(np.mean(np.abs(y) > 1.96 * se[ok])),
                     "coef": float(wls.params[col]), "se": float(wls.bse[col]), "p": float(wls.pvalues[col])})
    return pd.DataFrame(rows, columns=columns)
