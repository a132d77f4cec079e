"""Panel preparation for the sales-lift analysis: product-day sales in, a :class:`SalesPanel` out.

Both inputs end up in the same shape, so the first and second stage never know where the data came from:

* the paper's public panel (``sales_panel.parquet`` + ``search_index.parquet``): :func:`load_paper_panel`;
* the lake's ``taobao_sales`` + ``campaign_videos`` + ``pe_scores``: :func:`panel_from_lake_frames`.

Paper-faithful details (checked against the paper's Table 4):

* a product is **treated** when its treatment flag changes inside the panel (0 < mean < 1); products whose
  flag never changes are the **controls**;
* **daily sales** from the 30-day rolling series, per product on the full range of its days with gaps
  forward-filled: day 0 → r₀/30; days 1–29 → rⱼ − rⱼ₋₁ + r₀/30; day ≥ 30 → rⱼ − rⱼ₋₁ + dailyⱼ₋₃₀;
* the first stage regresses on the **observed** product-days only (forward-filled gap days feed the
  recursion but are not observations).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd

from jobs.analysis.errors import AnalysisError

__all__ = ["SalesPanel", "impute_daily_sales", "complete_days", "build_panel", "minmax", "load_paper_panel",
           "panel_from_lake_frames", "PAPER_PANEL_FILES"]

SalesSource = Literal["imputed", "observed"]

#: Files of the paper's panel format (``pe analyze --panel DIR``).
PAPER_PANEL_FILES = ("sales_panel.parquet", "search_index.parquet")

#: Columns of :attr:`SalesPanel.days`.
DAY_COLUMNS = ("product_id", "day", "date", "rolling_sales", "daily_sales", "treated", "search", "observed")

#: Influencer covariates of the paper's specification (6) that it divides by 10⁶.
_PAPER_MILLIONS = ("fans", "avg_play", "influencer_price", "expected_cpm")
_PAPER_CONTROLS = ("avg_search", "price", "discount", *_PAPER_MILLIONS, "order_cnt", "gender")


@dataclass
class SalesPanel:
    """Product-day sales ready for the first stage, and one row per product for the second.

    days: one row per product and day, days 0..last of each product with gaps forward-filled; columns
        product_id (str), day (int, days since the product's first row), date (datetime64[ns], the calendar
        day: the day fixed effect), rolling_sales (30-day revenue), daily_sales (imputed or observed, same
        unit per day), treated (0.0/1.0, the post-video flag as recorded), search (search index),
        observed (bool: the row was in the source, not a filled gap).
    products: indexed by product_id; role ('treated' | 'control'), and where known pe, e, p (scores
        min-max normalised across all videos of the panel), video_id, influencer_id, model_version and the
        covariates named in ``controls`` / ``fixed_effects``.
    controls / fixed_effects: the covariates and categorical fixed effects of specification (6).
    cluster: products column to cluster standard errors by (the influencer), or None.
    notes: what the preparation did to the data (filled values, dropped rows), for the report.
    """

    days: pd.DataFrame
    products: pd.DataFrame
    source: str
    sales_source: SalesSource = "imputed"
    controls: tuple[str, ...] = ()
    fixed_effects: tuple[str, ...] = ()
    cluster: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def treated_ids(self) -> list[str]:
        return sorted(self.products.index[self.products["role"] == "treated"])

    @property
    def control_ids(self) -> list[str]:
        return sorted(self.products.index[self.products["role"] == "control"])


# ------------------------------------------------------------------------------------------- pure pieces

def impute_daily_sales(rolling: np.ndarray) -> np.ndarray:
    """Daily sales (n,) from one product's 30-day rolling sales (n,) over consecutive days.

    day 0 → r₀/30; days 1–29 → rⱼ − rⱼ₋₁ + r₀/30; day j ≥ 30 → rⱼ − rⱼ₋₁ + dailyⱼ₋₃₀ (the paper's recursion;
    unrolled, daily_j = r₀/30 + Σ of the day-to-day differences on days ≡ j mod 30 up to j).
    """
    r = np.asarray(rolling, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"rolling sales must be one product's series (n,), got shape {r.shape}")
    n = len(r)
    if n == 0:
        return r.copy()
    diff = np.diff(r, prepend=r[0])  # diff[0] = 0
    width = -(-n // 30) * 30
    padded = np.zeros(width)
    padded[:n] = diff
    return np.cumsum(padded.reshape(-1, 30), axis=0).reshape(-1)[:n] + r[0] / 30.0


def complete_days(frame: pd.DataFrame, fill: Sequence[str]) -> pd.DataFrame:
    """Every day 0..max of each product (``product_id``, ``day`` int), the ``fill`` columns forward-filled
    from the last observed day; ``observed`` marks the source rows; ``date`` is rebuilt as first date + day.
    """
    frame = frame.sort_values(["product_id", "day"], kind="stable")
    last = frame.groupby("product_id", sort=False)["day"].max()
    first_date = frame.groupby("product_id", sort=False)["date"].min()
    lengths = (last + 1).astype(np.int64)
    full = pd.DataFrame({
        "product_id": np.repeat(lengths.index.to_numpy(), lengths.to_numpy()),
        "day": np.concatenate([np.arange(n) for n in lengths.to_numpy()]) if len(lengths) else np.array([], int),
    })
    src = frame.set_index(["product_id", "day"])[list(fill)]
    out = full.join(src, on=["product_id", "day"])
    out["observed"] = full.set_index(["product_id", "day"]).index.isin(src.index)
    out[list(fill)] = out.groupby("product_id", sort=False)[list(fill)].ffill()
    out["date"] = out["product_id"].map(first_date) + pd.to_timedelta(out["day"], unit="D")
    return out


def minmax(values: pd.Series) -> pd.Series:
    """(x − min) / (max − min) over the given values (the paper's cross-video normalisation); a constant
    series maps to 0."""
    v = values.astype(np.float64)
    lo, hi = v.min(), v.max()
    if not np.isfinite(hi - lo) or hi == lo:
        return v * 0.0
    return (v - lo) / (hi - lo)


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AnalysisError("missing_columns", f"{what} lacks columns {missing} (has: {list(frame.columns)})")


def build_panel(sales: pd.DataFrame, products: pd.DataFrame | None = None, *, source: str,
                sales_source: SalesSource = "imputed", controls: Sequence[str] = (),
                fixed_effects: Sequence[str] = (), cluster: str | None = None,
                notes: Sequence[str] = ()) -> SalesPanel:
    """Validate product-day ``sales`` and make a :class:`SalesPanel`.

    sales: product_id, day (int ≥ 0, days since the product's first row), date, rolling_sales,
        treated (0/1), search; plus daily_sales when ``sales_source='observed'``.
    products: per product_id covariates and scores for the second stage (optional).
    Raises :class:`AnalysisError` (missing_columns, empty_panel, duplicate_rows, bad_values,
    no_treated_products, no_control_products).
    """
    if sales_source not in ("imputed", "observed"):
        raise ValueError(f"sales_source must be 'imputed' or 'observed', not {sales_source!r}")
    need = ["product_id", "day", "date", "rolling_sales", "treated", "search"]
    if sales_source == "observed":
        need.append("daily_sales")
    _require(sales, need, "the sales panel")
    if sales.empty:
        raise AnalysisError("empty_panel", "the sales panel has no rows")
    sales = sales[list(dict.fromkeys(c for c in [*need, "daily_sales"] if c in sales.columns))].copy()
    sales["product_id"] = sales["product_id"].astype(str)
    sales["date"] = pd.to_datetime(sales["date"])
    sales["day"] = pd.to_numeric(sales["day"], errors="raise").astype(np.int64)
    sales["day"] -= sales.groupby("product_id")["day"].transform("min")  # day 0 = the product's first row
    dup = sales.duplicated(["product_id", "day"])
    if dup.any():
        ex = sales.loc[dup, ["product_id", "day"]].iloc[0]
        raise AnalysisError("duplicate_rows", f"{int(dup.sum())} duplicate product-day rows in the sales panel, "
                            f"e.g. product {ex['product_id']} day {ex['day']}")
    flag = pd.to_numeric(sales["treated"], errors="coerce")
    if not flag.isin([0, 1]).all():
        bad = sales.loc[~flag.isin([0, 1]), "treated"].iloc[0]
        raise AnalysisError("bad_values", f"the treatment flag must be 0 or 1 on every row (found {bad!r})")
    sales["treated"] = flag.astype(np.float64)
    value_col = "daily_sales" if sales_source == "observed" else "rolling_sales"
    values = pd.to_numeric(sales[value_col], errors="coerce")
    if np.isinf(values).any():
        raise AnalysisError("bad_values", f"{value_col} has infinite values")
    notes = list(notes)
    if values.isna().any():
        n = int(values.isna().sum())
        sales = sales[values.notna()]
        notes.append(f"{n} product-days without {value_col} were dropped (treated as gaps, forward-filled)")
        if sales.empty:
            raise AnalysisError("empty_panel", f"no product-day has a {value_col} value")
    search = pd.to_numeric(sales["search"], errors="coerce")
    if search.isna().any():
        notes.append(f"{int(search.isna().sum())} product-days without a search index were set to 0 "
                     "(the paper's panel records no search as 0)")
    sales["search"] = search.fillna(0.0)

    days = complete_days(sales, fill=[c for c in ("rolling_sales", "daily_sales", "treated", "search")
                                      if c in sales.columns])
    if sales_source == "imputed":
        days["daily_sales"] = np.concatenate(
            [impute_daily_sales(g.to_numpy()) for _, g in days.groupby("product_id", sort=False)["rolling_sales"]])
    elif "rolling_sales" not in days:
        days["rolling_sales"] = np.nan
    days = days[list(DAY_COLUMNS)]

    share = days[days["observed"]].groupby("product_id")["treated"].mean()
    roles = pd.Series(np.where((share > 0) & (share < 1), "treated", "control"), index=share.index, name="role")
    if not (roles == "treated").any():
        raise AnalysisError("no_treated_products", "no product's treatment flag changes within the panel, so no "
                            "lift can be estimated (a treated product needs days before and after its video)")
    if not (roles == "control").any():
        raise AnalysisError("no_control_products", "every product's treatment flag changes within the panel: "
                            "there are no control products to compare against")
    prod = pd.DataFrame(index=pd.Index(roles.index, name="product_id"))
    if products is not None:
        prod = prod.join(products.drop(columns=["role"], errors="ignore"), how="left")
    prod.insert(0, "role", roles)
    return SalesPanel(days=days.reset_index(drop=True), products=prod, source=source, sales_source=sales_source,
                      controls=tuple(controls), fixed_effects=tuple(fixed_effects), cluster=cluster, notes=notes)


# ------------------------------------------------------------------------------------------- paper panel

def load_paper_panel(folder: str | os.PathLike) -> SalesPanel:
    """The paper's public panel format: ``sales_panel.parquet`` (one row per product and day: rev = 30-day
    revenue, treated, search, updated_time(_rel), scores as stored, influencer covariates, category) and
    ``search_index.parquet`` (used only when the panel lacks ``search``: index / 1000, 0 when missing).
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise AnalysisError("panel_not_found", f"panel folder {folder} does not exist")
    path = os.path.join(folder, PAPER_PANEL_FILES[0])
    if not os.path.isfile(path):
        raise AnalysisError("panel_not_found", f"{path} does not exist (a panel folder holds "
                            f"{' and '.join(PAPER_PANEL_FILES)})")
    raw = _read_parquet(path)
    _require(raw, ["taobao_id", "updated_time", "updated_time_rel", "rev", "treated"], path)
    raw = raw.assign(taobao_id=raw["taobao_id"].astype(str), updated_time=pd.to_datetime(raw["updated_time"]))
    if "search" not in raw.columns:
        index_path = os.path.join(folder, PAPER_PANEL_FILES[1])
        if not os.path.isfile(index_path):
            raise AnalysisError("panel_not_found", f"{path} has no 'search' column and {index_path} does not exist")
        index = _read_parquet(index_path)
        _require(index, ["taobao_id", "updated_time", "search"], index_path)
        index = index.assign(taobao_id=index["taobao_id"].astype(str),
                             updated_time=pd.to_datetime(index["updated_time"]))
        raw = raw.merge(index, on=["taobao_id", "updated_time"], how="left")
        raw["search"] = raw["search"].fillna(0.0) / 1000.0
    sales = pd.DataFrame({
        "product_id": raw["taobao_id"], "day": raw["updated_time_rel"].astype(np.int64), "date": raw["updated_time"],
        "rolling_sales": raw["rev"], "treated": raw["treated"], "search": raw["search"],
    })
    first = raw.sort_values(["taobao_id", "updated_time_rel"], kind="stable").groupby("taobao_id").head(1)
    first = first.set_index("taobao_id")
    products = pd.DataFrame(index=first.index.rename("product_id"))
    for ours, theirs in (("pe", "pe_score"), ("e", "e_score"), ("p", "p_score")):
        if theirs in first:
            products[ours] = first[theirs].astype(np.float64)
    if "video_full_id" in first:
        products["video_id"] = first["video_full_id"].astype(str)
    if "true_id" in first:
        products["influencer_id"] = first["true_id"].map(lambda v: None if pd.isna(v) else f"{v:.0f}"
                                                         if isinstance(v, float) else str(v))
    controls = [c for c in _PAPER_CONTROLS if c in first]
    for c in controls:
        products[c] = first[c].astype(np.float64) / (1e6 if c in _PAPER_MILLIONS else 1.0)
    fixed = ["category"] if "category" in first else []
    if fixed:
        products["category"] = first["category"].astype(str)
    return build_panel(sales, products, source=f"paper panel {folder}", controls=controls, fixed_effects=fixed,
                       cluster="influencer_id" if "influencer_id" in products else None)


def _read_parquet(path: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a bad file
        raise AnalysisError("panel_unreadable", f"{path} is not a readable Parquet file: {e}") from e


# ------------------------------------------------------------------------------------------- lake tables

def panel_from_lake_frames(sales: pd.DataFrame, videos: pd.DataFrame, scores: pd.DataFrame, *,
                           pe_column: str = "pe_raw", sales_source: SalesSource = "imputed",
                           source: str = "lake") -> SalesPanel:
    """A panel from the lake's tables as pandas frames.

    sales: ``taobao_sales`` (product_id, date, rolling_sales_30d, daily_sales, price, discount, search_index,
        advertised). A null ``advertised`` is taken from the product's first video's ``published_at``.
    videos: ``campaign_videos`` (video_id, product_id, influencer_id, campaign_id, published_at).
    scores: ``pe_scores`` rows of **one** model version (video_id, ``pe_column``, e_score, p_score, model_version)
        and one scoring_config (mixed saliency/product methods or windows raise AnalysisError
        mixed_scoring_configs, naming them). pe, e and p are min-max normalised across all these videos (the
        paper's Table 3), then joined to the product's first published video.
    Specification (6) controls for the average search index, price and discount, with campaign fixed effects
    when the treated products span several campaigns; standard errors cluster by influencer.
    """
    _require(sales, ["product_id", "date", "rolling_sales_30d", "search_index", "advertised"], "taobao_sales")
    _require(videos, ["video_id", "product_id", "published_at"], "campaign_videos")
    _require(scores, ["video_id", pe_column, "e_score", "p_score"], "pe_scores")
    if sales.empty:
        raise AnalysisError("empty_panel", "taobao_sales has no rows")
    if "model_version" in scores and scores["model_version"].nunique() > 1:
        raise ValueError("panel_from_lake_frames needs the scores of one model version")
    if "scoring_config" in scores:
        configs = scores["scoring_config"].astype(object).where(scores["scoring_config"].notna(), "unrecorded")
        counts = configs.value_counts()
        if len(counts) > 1:
            named = ", ".join(f"{c} ({n} videos)" for c, n in counts.items())
            raise AnalysisError("mixed_scoring_configs", f"the scores were computed with different saliency/product "
                                f"methods or windows, which min-max normalisation cannot put on one scale: {named}; "
                                "score the campaign again with one configuration (`pe score --rescore`)")
    notes: list[str] = []
    sales = sales.copy()
    sales["product_id"] = sales["product_id"].astype(str)
    sales["date"] = pd.to_datetime(sales["date"])
    v = videos.dropna(subset=["product_id"]).copy()
    v["product_id"] = v["product_id"].astype(str)
    v["published_at"] = pd.to_datetime(v["published_at"], utc=True).dt.tz_localize(None)
    v = v.sort_values(["product_id", "published_at", "video_id"], kind="stable", na_position="last")
    n_videos = v.groupby("product_id").size()
    first_video = v.groupby("product_id").head(1).set_index("product_id")

    advertised = sales["advertised"]
    if advertised.isna().any():
        published = sales["product_id"].map(first_video["published_at"]).dt.normalize()
        derived = published.notna() & (sales["date"] >= published)
        notes.append(f"{int(advertised.isna().sum())} product-days without an 'advertised' flag took it from the "
                     "first video's published_at")
        advertised = advertised.astype(object).where(advertised.notna(), derived)
    first_date = sales.groupby("product_id")["date"].transform("min")
    panel_sales = pd.DataFrame({
        "product_id": sales["product_id"], "day": (sales["date"] - first_date).dt.days.astype(np.int64),
        "date": sales["date"], "rolling_sales": sales["rolling_sales_30d"],
        "daily_sales": sales["daily_sales"] if "daily_sales" in sales else np.nan,
        "treated": advertised.astype(bool).astype(np.float64), "search": sales["search_index"],
    })

    by_product = sales.sort_values(["product_id", "date"], kind="stable").groupby("product_id")
    products = pd.DataFrame({
        "avg_search": by_product["search_index"].mean(),
        "price": by_product["price"].first() if "price" in sales else np.nan,
        "discount": by_product["discount"].first() if "discount" in sales else np.nan,
    })
    products.index.name = "product_id"
    for c in ("video_id", "influencer_id", "campaign_id", "published_at"):
        if c in first_video:
            products[c] = first_video[c]
    products["n_videos"] = n_videos.reindex(products.index).fillna(0).astype(int)

    sc = scores.copy()
    sc["video_id"] = sc["video_id"].astype(str)
    sc = sc.drop_duplicates("video_id")
    normalised = pd.DataFrame({"video_id": sc["video_id"], "pe": minmax(sc[pe_column]), "e": minmax(sc["e_score"]),
                               "p": minmax(sc["p_score"]), "pe_raw": sc.get("pe_raw"), "pe_share": sc.get("pe_share"),
                               "e_score": sc["e_score"], "p_score": sc["p_score"],
                               "model_version": sc.get("model_version")}).set_index("video_id")
    for c in ("pe", "e", "p"):
        if len(normalised) > 1 and normalised[c].nunique() <= 1:
            notes.append(f"score {c} is constant across the {len(normalised)} scored videos")
    products = products.join(normalised, on="video_id")
    controls = [c for c in ("avg_search", "price", "discount") if products[c].notna().any()]
    return build_panel(panel_sales, products, source=source, sales_source=sales_source, controls=controls,
                       fixed_effects=["campaign_id"] if "campaign_id" in products else [],
                       cluster="influencer_id" if "influencer_id" in products else None, notes=notes)


#: The paper's published numbers on its public panel (Tables 4 and 5), for side-by-side reports and the
#: reproduction test: Table 4 summary of the 259 first-stage lifts; Table 5 focus coefficient (conventional SE).
PAPER_PUBLISHED: dict[str, dict[str, Any]] = {
    "table4": {"n": 259, "mean": 2.02, "sd": 47.53, "min": -123.6, "median": 2.06, "max": 699.2},
    "table5": {"(1)": (68.27, 22.87), "(5)": (101.32, 27.04), "(6)": (100.79, 28.91)},
}
