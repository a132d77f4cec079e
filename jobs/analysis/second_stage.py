"""Second stage: OLS of the first-stage lift on the PE, engagement and product scores (statsmodels).

The paper's six specifications, with pe, e, p min-max normalised across all videos of the panel::

    (1) lift ~ pe          (2) lift ~ e          (3) lift ~ p          (4) lift ~ e:p
    (5) lift ~ pe + e * p
    (6) (5) + controls (panel.controls) + fixed effects C(panel.fixed_effects)

Each is reported with conventional (the paper's), HC1 and HC3 standard errors, and clustered by influencer
where the panel knows the influencer. Conventional errors reproduce the paper; the robust ones are the ones
to believe when residuals are heteroskedastic.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from jobs.analysis.errors import AnalysisError
from jobs.analysis.first_stage import ok_lifts
from jobs.analysis.panel import SalesPanel

__all__ = ["Spec", "SpecFit", "paper_specs", "second_stage_frame", "fit_spec", "fit_specs", "SCORE_TERMS"]

#: Score columns of the second-stage frame (normalised PE, engagement and product scores).
SCORE_TERMS = ("pe", "e", "p")


@dataclass(frozen=True)
class Spec:
    """One specification: ``lift ~ rhs``; ``focus`` is the coefficient the headline table reports."""

    name: str
    rhs: str
    focus: str
    label: str

    @property
    def formula(self) -> str:
        return f"lift ~ {self.rhs}"


@dataclass
class SpecFit:
    """A fitted specification.

    coefs: one row per term (index: patsy term name) with coef, and se / p for each covariance:
        conventional ('se', 'p'), 'se_hc1', 'p_hc1', 'se_hc3', 'p_hc3', 'se_cluster', 'p_cluster' (NaN
        when the panel has no cluster variable).
    results: the conventional statsmodels results (for influence diagnostics); None when skipped.
    product_ids: the products (rows) the fit used, in the order of the results' observations.
    skipped: the reason the specification could not be fitted (too few products, no variation), else None.
    """

    spec: Spec
    n: int
    r2: float = float("nan")
    adj_r2: float = float("nan")
    coefs: pd.DataFrame = field(default_factory=pd.DataFrame)
    results: Any = None  # statsmodels' RegressionResultsWrapper (statsmodels ships no types)
    product_ids: list[str] = field(default_factory=list)
    skipped: str | None = None

    def focus(self, column: str = "coef") -> float:
        """A column (coef, se, se_hc1, p_hc1, ...) of the focus term (NaN when skipped)."""
        if self.skipped or self.spec.focus not in self.coefs.index:
            return float("nan")
        return float(self.coefs.loc[self.spec.focus, column])


def paper_specs(controls: Sequence[str] = (), fixed_effects: Sequence[str] = ()) -> list[Spec]:
    """The paper's specifications (1)–(6); (6) only when there are controls or fixed effects."""
    specs = [
        Spec("(1)", "pe", "pe", "PE score"),
        Spec("(2)", "e", "e", "engagement score"),
        Spec("(3)", "p", "p", "product score"),
        Spec("(4)", "e:p", "e:p", "engagement × product"),
        Spec("(5)", "pe + e * p", "pe", "PE with e, p, e×p"),
    ]
    extra = [*controls, *(f"C({f})" for f in fixed_effects)]
    if extra:
        specs.append(Spec("(6)", " + ".join(["pe + e * p", *extra]), "pe",
                          "(5) + covariates" + (" and fixed effects" if fixed_effects else "")))
    return specs


def second_stage_frame(lifts: pd.DataFrame, panel: SalesPanel) -> pd.DataFrame:
    """One row per product with an estimated lift and all three scores: lift, pe, e, p, e_p and the panel's
    product columns (controls, fixed effects, cluster). Index: product_id."""
    est = ok_lifts(lifts)[["lift", "se", "se_robust", "se_cluster2", "n"]]
    missing = [c for c in SCORE_TERMS if c not in panel.products]
    if missing:
        raise AnalysisError("no_scores", f"the panel has no {missing} scores for the second stage")
    frame = est.join(panel.products.drop(columns=["role"]), how="left")
    frame = frame[frame[list(SCORE_TERMS)].notna().all(axis=1)].copy()
    if frame.empty:
        raise AnalysisError("no_scores", f"none of the {len(est)} products with a lift has PE, engagement and "
                            "product scores (is the product's video scored by this model version?)")
    frame["e_p"] = frame["e"] * frame["p"]
    frame.index.name = "product_id"
    return frame


def _usable_fixed_effects(frame: pd.DataFrame, fixed_effects: Sequence[str]) -> list[str]:
    return [f for f in fixed_effects if f in frame and frame[f].nunique(dropna=True) > 1]


def fit_spec(frame: pd.DataFrame, spec: Spec, *, cluster: str | None = None) -> SpecFit:
    """Fit ``spec`` on ``frame`` (rows with a missing regressor are left out) with every covariance type."""
    import statsmodels.formula.api as smf

    model = smf.ols(spec.formula, frame, missing="drop")
    n, k = int(model.nobs), model.exog.shape[1]
    rank = np.linalg.matrix_rank(model.exog) if n else 0
    if n <= k:
        return SpecFit(spec, n, skipped=f"too_few_products: {n} products for {k} coefficients")
    if rank < k:
        return SpecFit(spec, n, skipped=f"no_variation: the regressors are collinear (rank {rank} < {k}); "
                       "a score or covariate does not vary across these products")
    rows = pd.Index(model.data.row_labels)  # the products left after dropping rows with missing regressors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv = model.fit()
        hc1 = model.fit(cov_type="HC1")
        hc3 = model.fit(cov_type="HC3")
        clu = None
        if cluster and cluster in frame:
            groups = frame.loc[rows, cluster]
            if groups.notna().all() and groups.nunique() > 1:
                codes = pd.factorize(groups)[0]
                clu = model.fit(cov_type="cluster", cov_kwds={"groups": codes})
    coefs = pd.DataFrame({
        "coef": conv.params, "se": conv.bse, "p": conv.pvalues,
        "se_hc1": hc1.bse, "p_hc1": hc1.pvalues, "se_hc3": hc3.bse, "p_hc3": hc3.pvalues,
        "se_cluster": clu.bse if clu is not None else np.nan, "p_cluster": clu.pvalues if clu is not None else np.nan,
    })
    return SpecFit(spec, n, float(conv.rsquared), float(conv.rsquared_adj), coefs, conv, [str(r) for r in rows])


def fit_specs(frame: pd.DataFrame, panel: SalesPanel) -> list[SpecFit]:
    """The paper's specifications on the second-stage frame; fixed effects with fewer than two levels among
    the products are left out of (6)."""
    specs = paper_specs(panel.controls, _usable_fixed_effects(frame, panel.fixed_effects))
    return [fit_spec(frame, s, cluster=panel.cluster) for s in specs]
