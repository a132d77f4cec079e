"""First stage: each treated product's sales lift, a two-way fixed-effects difference in differences.

For one treated product k (the paper's design)::

    daily_sales[i,t] = β · post[i,t] + δ · search[i,t] + α_i + γ_t + ε[i,t]
    over i ∈ {k} ∪ controls, observed days t;  post = k's treatment flag (0 for every control)

α_i (product) and γ_t (calendar day) are absorbed; the lift is β̂ (sales per day, in the panel's sales unit).
Two methods give the same numbers (:data:`FIRST_STAGE_METHODS`, looked up by name):

* ``schur`` (the default): the normal equations of the two-way effects solved exactly. The product effects
  are eliminated analytically (each product's own means), which leaves a T × T system for the day effects
  (T = observed days, a few hundred) — the Schur complement of the product block. It is a sum over products,
  so the controls' part (the same for every treated product) is built once; each treated product adds its
  own rows, solves the small system and residualises y, post and search on all rows (Frisch–Waugh–Lovell).
  The covariances are then those of linearmodels on the residualised regressors, with its conventions.
* ``absorbing``: linearmodels' ``AbsorbingLS`` (alternating projections, pyhdfe) on the rows of k and all
  controls, re-absorbing the controls' effects for every product: the reference, much slower.

Standard errors, each with the degrees of freedom of the absorbed effects (as R's lfe::felm): ``se``
conventional, ``se_robust`` heteroskedasticity-robust (White), ``se_cluster2`` clustered two-way by product and calendar day (Cameron,
Gelbach & Miller: V_product + V_day − V_product×day; the paper's choice). With a single treated product the
product dimension has one treated cluster, so the two-way error leans on the day clusters.

Each product's regression is independent: :func:`estimate_lifts` takes any subset of products, so a caller
can run the subsets in parallel (``jobs/analysis/analyze.py`` does it with Spark) and concatenate the frames.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import ClassVar, Iterable, Protocol

import numpy as np
import pandas as pd

from jobs.analysis.panel import SalesPanel

__all__ = ["LIFT_COLUMNS", "LIFT_SCHEMA", "FIRST_STAGE_METHODS", "DEFAULT_FIRST_STAGE", "FirstStageMethod",
           "AbsorbingLift", "SchurLift", "first_stage_method", "estimate_lift", "estimate_lifts", "lift_summary",
           "ok_lifts"]

#: Columns of :func:`estimate_lifts`' frame: one row per treated product. status 'ok' or 'skipped' (with a
#: reason code: no_pre_period, no_post_period, no_observed_days, estimation_failed: <error>).
LIFT_COLUMNS = ["product_id", "lift", "se", "se_robust", "se_cluster2", "n", "n_treated_days", "n_post_days", "n_controls",
                "status", "reason"]
#: The same as a Spark DDL schema (for mapInPandas).
LIFT_SCHEMA = ("product_id string, lift double, se double, se_robust double, se_cluster2 double, n long, n_treated_days long, "
               "n_post_days long, n_controls long, status string, reason string")


#: The message linearmodels raises when every regressor is absorbed (the fast method says the same).
_ALL_ABSORBED = ("All columns in exog have been fully absorbed by the included effects. This model cannot be "
                 "estimated.")
#: linearmodels' test of an absorbed regressor: less than this share of its norm is left.
_ABSORBED_TOL = 1e-5
_TREATED_ABSORBED = "estimation_failed: the post-video flag is absorbed by the fixed effects"


class FirstStageMethod(Protocol):
    """One way to compute the first stage. Built once with the control products' rows (product_id, date,
    daily_sales, treated, search); :meth:`lift` then gives one treated product's :data:`LIFT_COLUMNS` record.
    Every method returns the same numbers, statuses and reasons; they differ in speed only."""

    name: ClassVar[str]
    #: How the effects are absorbed, for the ``method`` column of sales_lift and the report.
    description: ClassVar[str]
    n_controls: int  # control products the regressions compare against

    def __init__(self, control_rows: pd.DataFrame) -> None: ...

    def lift(self, product_rows: pd.DataFrame) -> dict: ...


def _record(product_rows: pd.DataFrame, n_controls: int) -> tuple[dict, bool]:
    """The record before estimation and whether to estimate (a product needs pre- and post-video days)."""
    post = int(product_rows["treated"].sum())
    rec = {"product_id": str(product_rows["product_id"].iloc[0]), "lift": np.nan, "se": np.nan, "se_robust": np.nan,
           "se_cluster2": np.nan, "n": 0, "n_treated_days": int(len(product_rows)), "n_post_days": post,
           "n_controls": n_controls, "status": "skipped", "reason": None}
    if post == 0:
        rec["reason"] = "no_post_period"
    elif post == len(product_rows):
        rec["reason"] = "no_pre_period"
    return rec, rec["reason"] is None


def _failed(rec: dict, e: Exception) -> dict:
    rec["reason"] = f"estimation_failed: {type(e).__name__}: {e}"[:300]
    return rec


class AbsorbingLift:
    """The reference: linearmodels ``AbsorbingLS`` on the rows of the product and every control, three fits
    (unadjusted, robust, two-way clustered; all debiased)."""

    name: ClassVar[str] = "absorbing"
    description: ClassVar[str] = "linearmodels AbsorbingLS"

    def __init__(self, control_rows: pd.DataFrame) -> None:
        self.control_rows = control_rows
        self.n_controls = int(control_rows["product_id"].nunique())

    def lift(self, product_rows: pd.DataFrame) -> dict:
        from linearmodels.iv.absorbing import AbsorbingLS

        rec, estimable = _record(product_rows, self.n_controls)
        if not estimable:
            return rec
        data = pd.concat([product_rows, self.control_rows], ignore_index=True)
        exog_cols = ["treated"] + (["search"] if data["search"].nunique() > 1 else [])
        absorb = pd.DataFrame({"product": pd.Categorical(data["product_id"]), "day": pd.Categorical(data["date"])})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # absorbed-variable notices; a failure raises below
                model = AbsorbingLS(data["daily_sales"], data[exog_cols], absorb=absorb, drop_absorbed=True)
                conventional = model.fit(cov_type="unadjusted", debiased=True)
                robust = model.fit(cov_type="robust", debiased=True)
                # int64: linearmodels numbers the product×day clusters product · (days + 1) + day in the codes'
                # own dtype, and int8/int16 category codes overflow there (merging unrelated product-days)
                two_way = pd.DataFrame({"product": absorb["product"].cat.codes.astype(np.int64),
                                        "day": absorb["day"].cat.codes.astype(np.int64)})
                clustered = model.fit(cov_type="clustered", debiased=True, clusters=two_way)
        except Exception as e:  # singular design, numerical failure: a reasoned skip, not a crash of the batch
            return _failed(rec, e)
        if "treated" not in conventional.params.index:
            rec["reason"] = _TREATED_ABSORBED
            return rec
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a two-way variance of the search term can come out negative (NaN SE)
            ses = {col: float(fit.std_errors["treated"]) for col, fit in (("se", conventional), ("se_robust", robust),
                                                                         ("se_cluster2", clustered))}
        rec.update(lift=float(conventional.params["treated"]), **ses, n=int(conventional.nobs), status="ok")
        return rec


class SchurLift:
    """The two-way effects' normal equations solved exactly, the controls' part built once.

    For a variable v on rows (i, t), the least-squares product and day effects satisfy
    α_i = mean_i(v) − mean_{t∈S_i} γ_t and A γ = b with A = Σ_i [diag(c_i) − c_i c_iᵀ / n_i] and
    b = Σ_i (day sums of v − mean_i(v) over i's rows), where c_i counts product i's rows per day and n_i = Σ c_i.
    Both are sums over products, so the controls' A and b are computed once and each treated product adds its
    own. A is singular (a constant shifts γ against α; a day nobody observes is empty), so it is solved by least
    squares on the observed days: every solution gives the same residuals. The residuals of y, post and search
    on all rows are v − mean_i(v) − γ_t + mean_{s∈S_i} γ_s; β̂ and its three covariances are then computed as
    linearmodels does on residualised data: a regressor whose residual keeps less than 1e-5 of its norm (or
    that is collinear with the one before it) is dropped, the debiased scale n / (n − k − d) counts
    d = products + days − 1 absorbed degrees of freedom (linearmodels' count of the dummy columns), and the
    clustered one is g (n − 1) / ((g − 1) (n − k − d)) per dimension, two-way as product + day − product×day.
    """

    name: ClassVar[str] = "schur"
    description: ClassVar[str] = "exact normal equations, day effects by the Schur complement of the product effects"

    def __init__(self, control_rows: pd.DataFrame) -> None:
        c = control_rows
        self.n_controls = int(c["product_id"].nunique())
        pc, products = pd.factorize(c["product_id"], sort=False)
        dc, days = pd.factorize(pd.to_datetime(c["date"]), sort=True)
        self._days = pd.DatetimeIndex(days)
        self._pc, self._dc = pc.astype(np.int64), dc.astype(np.int64)
        n_p, n_t = len(products), len(days)
        self._n_p, self._n_t = n_p, n_t
        # y, post, search: the controls' post flag as given (estimate_lifts sets it to 0)
        v = np.column_stack([c["daily_sales"].to_numpy(np.float64), c["treated"].to_numpy(np.float64),
                             c["search"].to_numpy(np.float64)]) if len(c) else np.empty((0, 3))
        if not np.isfinite(v).all():
            raise ValueError("the control rows have non-finite daily_sales, treated or search values")
        n_i = np.bincount(pc, minlength=n_p).astype(np.float64)
        means = np.column_stack([np.bincount(pc, weights=v[:, j], minlength=n_p) for j in range(3)]) / n_i[:, None] \
            if n_p else np.empty((0, 3))
        self._n_i = n_i
        self._vd = v - means[pc]  # each control's rows less its own means
        self._b = np.column_stack([np.bincount(dc, weights=self._vd[:, j], minlength=n_t) for j in range(3)]) \
            if n_t else np.empty((0, 3))
        counts = np.bincount(pc * n_t + dc, minlength=n_p * n_t).reshape(n_p, n_t).astype(np.float64)
        self._counts = counts  # rows per control and day
        self._day_rows = counts.sum(axis=0)
        self._a = np.diag(self._day_rows) - (counts.T / n_i) @ counts
        pairs = pc * n_t + dc
        self._pair_codes = np.unique(pairs, return_inverse=True)[1].astype(np.int64)
        self._n_pairs = int(self._pair_codes.max()) + 1 if len(pairs) else 0
        self._pairs_unique = self._n_pairs == len(pairs)
        self._raw_sq = (v ** 2).sum(axis=0)  # squared norms before absorbing: the absorbed-regressor test's scale
        search = c["search"].dropna().unique()
        self._search_values = search[:2]  # two distinct values settle "search varies"

    def lift(self, product_rows: pd.DataFrame) -> dict:
        rec, estimable = _record(product_rows, self.n_controls)
        if not estimable:
            return rec
        try:
            with _one_blas_thread():
                fit = self._fit(product_rows)
        except (ValueError, np.linalg.LinAlgError) as e:
            return _failed(rec, e)
        if fit is None:
            rec["reason"] = _TREATED_ABSORBED
            return rec
        rec.update(fit, status="ok")
        return rec

    def _search_varies(self, product_search: pd.Series) -> bool:
        # as pandas' nunique over the product's and the controls' rows together (NaN not counted)
        values = pd.unique(np.concatenate([self._search_values, product_search.dropna().unique()[:2]]))
        return len(values) > 1

    def _fit(self, rows: pd.DataFrame) -> dict | None:
        n_c, n_p, n_t = len(self._pc), self._n_p, self._n_t
        vk = np.column_stack([rows["daily_sales"].to_numpy(np.float64), rows["treated"].to_numpy(np.float64),
                              rows["search"].to_numpy(np.float64)])
        if not np.isfinite(vk).all():
            raise ValueError("the product's rows have non-finite daily_sales, treated or search values")
        dates = pd.DatetimeIndex(pd.to_datetime(rows["date"]))
        kd = self._days.get_indexer(dates).astype(np.int64)
        new = kd < 0
        if new.any():  # days that no control observes get their own effects after the controls' days
            extra, inverse = np.unique(dates[new].asi8, return_inverse=True)
            kd[new] = n_t + inverse
            t = n_t + len(extra)
        else:
            t = n_t
        nk = len(rows)
        vkd = vk - vk.mean(axis=0)
        ck = np.bincount(kd, minlength=t).astype(np.float64)
        a = np.zeros((t, t))
        a[:n_t, :n_t] = self._a
        a += np.diag(ck) - np.outer(ck, ck) / nk
        b = np.zeros((t, 3))
        b[:n_t] = self._b
        for j in range(3):
            b[:, j] += np.bincount(kd, weights=vkd[:, j], minlength=t)
        observed = ck > 0
        observed[:n_t] |= self._day_rows > 0
        n_days = int(observed.sum())
        gamma = np.zeros((t, 3))
        obs = np.flatnonzero(observed)
        # least squares: A is singular (γ + c, α − c fit alike), and every solution gives the same residuals
        gamma[obs] = np.linalg.lstsq(a[np.ix_(obs, obs)], b[obs], rcond=None)[0]
        # residuals of y, post, search: the product's rows and the controls'
        rk = vkd - gamma[kd] + (ck @ gamma) / nk
        rc = self._vd - gamma[self._dc]
        if n_p:
            rc += ((self._counts @ gamma[:n_t]) / self._n_i[:, None])[self._pc]
        cols = [1, 2] if self._search_varies(rows["search"]) else [1]
        raw_norms = np.sqrt(self._raw_sq[cols] + (vk[:, cols] ** 2).sum(axis=0))
        retain = _not_absorbed([np.concatenate([rk[:, j], rc[:, j]]) for j in cols], raw_norms)
        if not retain:
            raise ValueError(_ALL_ABSORBED)
        if 0 not in retain:
            return None
        cols = [cols[i] for i in retain]
        xk, xc = rk[:, cols], rc[:, cols]
        k = len(cols)
        n = nk + n_c
        xtx = xk.T @ xk + xc.T @ xc
        params = np.linalg.solve(xtx, xk.T @ rk[:, 0] + xc.T @ rc[:, 0])
        ek, ec = rk[:, 0] - xk @ params, rc[:, 0] - xc @ params
        absorbed_df = (n_p + 1) + n_days - 1  # linearmodels counts the dummy columns: products + days − 1
        if n - k - absorbed_df <= 0:
            raise ValueError(f"The small-sample adjustment of a debiased covariance needs more observations ({n}) "
                             f"than the {k} columns of x and the {absorbed_df} degrees of freedom that are used in "
                             "addition.")
        scale = n / (n - k - absorbed_df)
        v_inv = np.linalg.inv(xtx / n)

        def se(s: np.ndarray) -> float:
            c = v_inv @ s @ v_inv / n
            c = (c + c.T) / 2
            with np.errstate(invalid="ignore"):  # a negative two-way variance is a NaN SE, as in linearmodels
                return float(np.sqrt(c[0, 0]))

        uk, uc = xk * ek[:, None], xc * ec[:, None]  # scores x̃ · ε
        white = uk.T @ uk + uc.T @ uc

        def clustered(sums: np.ndarray, groups: int) -> np.ndarray:
            if groups < 2:
                raise ValueError("A clustered covariance requires at least two clusters, but clusters has one group.")
            return (sums.T @ sums / n) * scale * (groups / (groups - 1)) * ((n - 1) / n)

        by_product = np.vstack([uk.sum(axis=0)[None, :],
                                np.column_stack([np.bincount(self._pc, weights=uc[:, j], minlength=n_p)
                                                 for j in range(k)]) if n_p else np.empty((0, k))])
        by_day = np.column_stack([np.bincount(kd, weights=uk[:, j], minlength=t)
                                  + np.bincount(self._dc, weights=uc[:, j], minlength=t) for j in range(k)])[obs]
        own_pairs = np.bincount(kd, minlength=t)
        if self._pairs_unique and own_pairs.max() == 1:  # one row per product-day: each row its own cluster
            by_pair_ss, n_pairs = white, n
        else:
            pk = np.unique(kd, return_inverse=True)[1]
            sums = np.vstack([np.column_stack([np.bincount(pk, weights=uk[:, j]) for j in range(k)]),
                              np.column_stack([np.bincount(self._pair_codes, weights=uc[:, j],
                                                           minlength=self._n_pairs) for j in range(k)])])
            by_pair_ss, n_pairs = sums.T @ sums, len(sums)
        by_pair = (by_pair_ss / n) * scale * (n_pairs / (n_pairs - 1)) * ((n - 1) / n)
        two_way = clustered(by_product, n_p + 1) + clustered(by_day, n_days) - by_pair
        ses = [se(scale * float(ek @ ek + ec @ ec) / n * (xtx / n)), se(scale * white / n), se(two_way)]
        return {"lift": float(params[0]), "se": ses[0], "se_robust": ses[1], "se_cluster2": ses[2], "n": n}


_BLAS: list = []


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """BLAS on one thread for the small solves of one product: a multi-threaded BLAS on a few busy cores spends
    more time waking and spinning its threads than solving a 200 × 200 system (measured 25× slower)."""
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController())
        except ImportError:  # optional: without it BLAS keeps its threads
            _BLAS.append(None)
    return contextlib.nullcontext() if _BLAS[0] is None else _BLAS[0].limit(limits=1, user_api="blas")


def _not_absorbed(resids: list[np.ndarray], raw_norms: np.ndarray) -> list[int]:
    """The regressors linearmodels keeps (``drop_absorbed``; no constant among them): in order, a column is
    dropped when less than 1e-5 of its norm before absorbing is left after orthogonalising it (twice, as
    linearmodels does) to the kept columns before it."""
    basis: list[np.ndarray] = []
    keep = []
    for j, col in enumerate(resids):
        resid = col / (raw_norms[j] if raw_norms[j] > 0 else 1.0)
        for _ in range(2):
            for q in basis:
                resid = resid - q * (q @ resid)
        size = float(np.linalg.norm(resid))
        if size >= _ABSORBED_TOL:
            keep.append(j)
            basis.append(resid / size)
    return keep


#: First-stage methods by name; every one gives the same records.
FIRST_STAGE_METHODS: dict[str, type[FirstStageMethod]] = {m.name: m for m in (SchurLift, AbsorbingLift)}
DEFAULT_FIRST_STAGE = SchurLift.name


def first_stage_method(name: str) -> type[FirstStageMethod]:
    """The first-stage method called ``name`` (:data:`FIRST_STAGE_METHODS`)."""
    try:
        return FIRST_STAGE_METHODS[name]
    except KeyError:
        raise ValueError(f"no first-stage method {name!r}; have {', '.join(FIRST_STAGE_METHODS)}") from None


def estimate_lift(product_rows: pd.DataFrame, control_rows: pd.DataFrame, *, method: str = DEFAULT_FIRST_STAGE) -> dict:
    """β̂ of one treated product. Both frames: observed product-days with product_id, date, daily_sales,
    treated (0/1; the controls' already 0), search. Returns one :data:`LIFT_COLUMNS` record."""
    return first_stage_method(method)(control_rows).lift(product_rows)


def estimate_lifts(panel: SalesPanel, product_ids: Iterable[str] | None = None, *,
                   method: str = DEFAULT_FIRST_STAGE) -> pd.DataFrame:
    """The first stage for ``product_ids`` (default: every treated product), one row each (:data:`LIFT_COLUMNS`),
    computed with the first-stage ``method`` (:data:`FIRST_STAGE_METHODS`).

    Regressions use the observed product-days; the controls' post flag is 0 (they were all treated before
    the window or never, so they carry no within-window change).
    """
    cls = first_stage_method(method)
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
    estimator = cls(controls)
    records = []
    for pid in ids:
        rows = groups.get(pid)
        if rows is None or rows.empty:
            records.append({**dict.fromkeys(LIFT_COLUMNS), "product_id": pid, "n": 0, "n_treated_days": 0,
                            "n_post_days": 0, "n_controls": estimator.n_controls,
                            "status": "skipped", "reason": "no_observed_days"})
            continue
        records.append(estimator.lift(rows))
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
