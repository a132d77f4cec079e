"""Render an :class:`AnalysisResult`: plain-text tables for the terminal, a Markdown + HTML report with figures.

The report is a list of blocks (heading, paragraph, table, image) rendered twice — to Markdown and, through a
Jinja template, to a self-contained HTML page (images are PNG files next to it; no external resources).
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from jobs.analysis.diagnostics import FIRST_STAGE_SE
from jobs.analysis.panel import PAPER_PUBLISHED
from jobs.analysis.pipeline import HEADLINE_SPEC, AnalysisResult

__all__ = ["table4_frame", "table5_frame", "coefficient_frame", "robustness_frame", "influence_frame",
           "measurement_error_frame", "measurement_error_text", "format_text", "write_report", "ReportFiles"]

_TERM_LABELS = {"pe": "PE score", "e": "engagement score", "p": "product score", "e:p": "engagement × product"}


# ------------------------------------------------------------------------------------------------ tables

def table4_frame(result: AnalysisResult) -> pd.DataFrame:
    """Table 4: the distribution of the first-stage lifts (one row), with the paper's row for its panel."""
    s = result.summary
    rows = [{"": "lift (this run)", "N": s["n"], "Mean": s["mean"], "St. Dev.": s["sd"], "Min": s["min"],
             "Median": s["median"], "Max": s["max"]}]
    if _is_paper(result):
        p = PAPER_PUBLISHED["table4"]
        rows.append({"": "lift (paper)", "N": p["n"], "Mean": str(p["mean"]), "St. Dev.": str(p["sd"]),
                     "Min": str(p["min"]), "Median": str(p["median"]), "Max": str(p["max"])})  # as published
    return pd.DataFrame(rows)


def table5_frame(result: AnalysisResult) -> pd.DataFrame:
    """Table 5, one row per specification: its focus coefficient with conventional (the paper's), HC1, HC3
    and clustered standard errors and p-values, fit, out-of-fold R² and the influence summary."""
    rows = []
    for f in result.fits:
        infl = result.influence.get(f.spec.name, pd.DataFrame())
        top = infl["cooks_d"].idxmax() if len(infl) else None
        rows.append({
            "spec": f.spec.name, "term": f.spec.focus, "coef": f.focus("coef"), "SE": f.focus("se"),
            "p": f.focus("p"), "SE HC1": f.focus("se_hc1"), "p HC1": f.focus("p_hc1"), "SE HC3": f.focus("se_hc3"),
            "p HC3": f.focus("p_hc3"), "SE cluster": f.focus("se_cluster"), "p cluster": f.focus("p_cluster"),
            "R²": f.r2, "OOF R²": result.oof_r2.get(f.spec.name, {}).get("mean", np.nan), "n": f.n,
            "max Cook's D": float(infl["cooks_d"].max()) if len(infl) else np.nan,
            "top product": top, "Cook's D > 4/n": int(infl["flagged"].sum()) if len(infl) else 0,
            "note": f.skipped or "",
        })
    return pd.DataFrame(rows)


def coefficient_frame(result: AnalysisResult) -> pd.DataFrame:
    """Every coefficient of every specification as the paper prints it: 'coef (conventional SE)' and below
    it '[HC1 SE]'; rows are terms (category dummies collapsed into one 'fixed effects' row)."""
    cols: dict[str, dict[str, str]] = {}
    order: list[str] = []
    for f in result.fits:
        cell: dict[str, str] = {}
        if not f.skipped:
            for term, r in f.coefs.iterrows():
                if term.startswith("C("):
                    cell["fixed effects"] = "yes"
                    continue
                cell[term] = f"{r['coef']:.2f} ({r['se']:.2f}) [{r['se_hc1']:.2f}]"
                if term not in order:
                    order.append(term)
        cell["n"] = str(f.n)
        cell["R²"] = "" if f.skipped else f"{f.r2:.3f}"
        cols[f.spec.name] = cell
    index = [t for t in order if t != "Intercept"] + ["Intercept", "fixed effects", "n", "R²"]
    return pd.DataFrame(cols, index=index).fillna("")


def robustness_frame(result: AnalysisResult) -> pd.DataFrame:
    """The robustness checks of every specification whose focus is the PE score."""
    parts = []
    for f in result.fits:
        if f.spec.focus == "pe" and not f.skipped:
            parts.append(result.robustness[f.spec.name].assign(spec=f.spec.name))
    if not parts:
        return pd.DataFrame(columns=["spec", "check", "n", "coef", "se", "p", "se_kind"])
    out = pd.concat(parts, ignore_index=True)
    return out[["spec", "check", "n", "coef", "se", "p", "se_kind"]]


def influence_frame(result: AnalysisResult, spec: str = HEADLINE_SPEC, top: int = 10) -> pd.DataFrame:
    """The ``top`` products by Cook's distance in ``spec`` with their lift and scores."""
    infl = result.influence.get(spec)
    if infl is None or infl.empty:
        return pd.DataFrame()
    best = infl.sort_values("cooks_d", ascending=False).head(top)
    cols = [c for c in ("lift", "pe", "e", "p") if c in result.frame]
    return best.join(result.frame[cols]).reset_index()


def measurement_error_frame(result: AnalysisResult) -> pd.DataFrame:
    """The first-stage standard errors side by side (one row per kind: median SE, share of lifts whose noise
    it is, share significant at 5 %) with the headline coefficient reweighted for that noise."""
    me = result.measurement_error
    if me.empty:
        return pd.DataFrame()
    spec = result.fit(HEADLINE_SPEC).spec
    return me.rename(columns={"se_kind": "first-stage SE", "median_se": "median SE", "noise_share":
                              "noise / var(lift)", "significant": "|lift/SE| > 1.96", "coef": f"WLS {spec.focus}",
                              "se": "WLS SE HC1", "p": "WLS p"})


def measurement_error_text(result: AnalysisResult) -> str:
    """The measurement-error paragraph of the second stage, from the two-way clustered first-stage errors
    (the paper's clustering) beside the conventional ones; '' when there is nothing to say."""
    me = result.measurement_error.set_index("se_kind") if len(result.measurement_error) else None
    two_way, conventional = FIRST_STAGE_SE["se_cluster2"], FIRST_STAGE_SE["se"]
    if me is None or two_way not in me.index:
        return ""
    f, row = result.fit(HEADLINE_SPEC), me.loc[two_way]
    others = [f"{kind} errors: {me.loc[kind, 'noise_share']:.0%}"
              for kind in (conventional, FIRST_STAGE_SE["se_robust"]) if kind in me.index]
    conv = f" ({'; '.join(others)})" if others else ""
    n, undefined = int(row["n"]), int(row["undefined"])
    undefined_note = (f" The two-way variance is negative, so the error undefined, for {undefined} of "
                      f"{n + undefined} lifts (each regression has one treated product, so the product dimension has "
                      f"a single treated cluster); the figures here use the other {n}." if undefined else "")
    return (f"Measurement error: each lift is an estimate.{undefined_note} With first-stage errors clustered two-way by "
            f"product and day, sampling noise is {row['noise_share']:.0%} of the lifts' variance{conv}, and "
            f"{row['significant']:.0%} of the lifts differ from 0 at the 5 % level. Noise in the dependent "
            f"variable does not bias OLS but makes its errors heteroskedastic: weighting {HEADLINE_SPEC} by "
            f"1/(σ² + SE²) (Lewis & Linzer 2005) gives {f.spec.focus} {row['coef']:.2f} (HC1 SE {row['se']:.2f}, "
            f"p {row['p']:.3f}) against {f.focus('coef'):.2f} (HC1 SE {f.focus('se_hc1'):.2f}, "
            f"p {f.focus('p_hc1'):.3f}) unweighted on all {f.n}.")


_ME_DIGITS = {"noise / var(lift)": 3, "|lift/SE| > 1.96": 3, "WLS p": 3}


def _is_paper(result: AnalysisResult) -> bool:
    return result.panel.source.startswith("paper panel")


# ------------------------------------------------------------------------------------------------ text

def fmt_value(v: Any, float_format: str = ".2f") -> str:
    """One table cell as text: '–' for missing, yes/no, integers as is, floats with ``float_format``."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{v:{float_format}}"
    if isinstance(v, pd.Timestamp):
        return f"{v:%Y-%m-%d %H:%M}"
    return str(v)


def _fmt(v: Any, digits: int = 2) -> str:
    return fmt_value(v, f".{digits}f")


def _text_table(df: pd.DataFrame, digits: dict[str, int] | None = None) -> str:
    digits = digits or {}
    cells = [[_fmt(v, digits.get(c, 2)) for c, v in row.items()] for _, row in df.iterrows()]
    head = [str(c) for c in df.columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


_P_DIGITS = {"p": 4, "p HC1": 3, "p HC3": 3, "p cluster": 3, "R²": 3, "OOF R²": 3, "max Cook's D": 2}


def format_text(result: AnalysisResult) -> str:
    """Table 4, Table 5 with HC1/HC3/cluster errors and influence, and the robustness of the PE coefficient."""
    out = [f"Sales-lift analysis of {result.panel.source}",
           f"{len(result.panel.treated_ids)} treated and {len(result.panel.control_ids)} control products; "
           f"daily sales {result.panel.sales_source}",
           "", "Table 4 — first stage: sales lift per treated product (daily sales; product and day fixed effects, "
           "search index)", _text_table(table4_frame(result))]
    skipped = result.skipped_products
    if len(skipped):
        reasons = skipped["reason"].str.split(":").str[0].value_counts()
        out.append(f"{len(skipped)} treated products skipped: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
    t5 = table5_frame(result)
    out += ["", "Table 5 — second stage: OLS of the lift on min-max normalised scores; conventional SE as in the "
            "paper, with HC1, HC3 and influencer-clustered SE beside them; influence = Cook's distance "
            "(flag > 4/n)",
            _text_table(t5.drop(columns=["note"]), _P_DIGITS)]
    if _is_paper(result):
        pub = PAPER_PUBLISHED["table5"]
        out.append("paper (conventional SE): " + "; ".join(f"{k} {c:.2f} ({s:.2f})" for k, (c, s) in pub.items()))
    for _, r in t5[t5["note"] != ""].iterrows():
        out.append(f"{r['spec']} not estimated: {r['note']}")
    me = measurement_error_frame(result)
    if len(me):
        out += ["", "First-stage standard errors (conventional, robust, two-way clustered by product and day) and "
                f"the lift's measurement error in {HEADLINE_SPEC}", _text_table(me, _ME_DIGITS),
                measurement_error_text(result)]
    rob = robustness_frame(result)
    if len(rob):
        out += ["", "Robustness of the PE coefficient (HC1 SE unless noted)", _text_table(rob, {"p": 3})]
    infl = influence_frame(result, HEADLINE_SPEC, top=5)
    if len(infl):
        out += ["", f"Most influential products in {HEADLINE_SPEC}", _text_table(infl, {"cooks_d": 3, "leverage": 4,
                                                                                         "dfbetas": 3, "pe": 3,
                                                                                         "e": 3, "p": 3})]
    sp = result.spearman
    if len(sp):
        out += ["", "Spearman correlations with the lift", _text_table(sp, {"rho": 3, "p": 4})]
    if result.panel.notes:
        out += ["", "Data notes:"] + [f"- {n}" for n in result.panel.notes]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ report

@dataclass(frozen=True)
class ReportFiles:
    folder: str
    markdown: str
    html: str
    images: list[str]


def _figures(result: AnalysisResult, folder: str) -> list[tuple[str, str]]:
    """PNG figures (file name, caption): lift distribution, lift vs PE with the flagged products, Cook's D."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    made = []
    lifts = result.lifts.loc[result.lifts["status"] == "ok", "lift"].to_numpy(np.float64)
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=110)
    ax.hist(lifts, bins=min(60, max(5, len(lifts) // 4)), color="#4c72b0")
    ax.axvline(0, color="k", lw=0.8)
    made.append(_saved(fig, ax, os.path.join(folder, "lift_histogram.png"), "first-stage lift (sales per day)",
                       "products", f"Sales lift of {len(lifts)} treated products",
                       "Distribution of the first-stage lifts (Table 4)."))

    headline = next((f for f in result.fits if f.spec.name == HEADLINE_SPEC and not f.skipped), None)
    if headline is not None:
        infl = result.influence[HEADLINE_SPEC]
        frame = result.frame.loc[headline.product_ids]
        flagged = infl["flagged"].reindex(frame.index).fillna(False).astype(bool)
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        ax.scatter(frame.loc[~flagged, "pe"], frame.loc[~flagged, "lift"], s=12, alpha=0.6, label="products")
        ax.scatter(frame.loc[flagged, "pe"], frame.loc[flagged, "lift"], s=40, color="#c44e52",
                   label="Cook's D > 4/n")
        grid = np.linspace(frame["pe"].min(), frame["pe"].max(), 50)
        b = headline.coefs["coef"]
        ax.plot(grid, b["Intercept"] + b["pe"] * grid, color="k", lw=1, label=f"OLS slope {b['pe']:.1f}")
        top = infl["cooks_d"].idxmax()
        ax.annotate(f"Cook's D {infl.loc[top, 'cooks_d']:.2f}", (frame.loc[top, "pe"], frame.loc[top, "lift"]),
                    textcoords="offset points", xytext=(-90, -4), fontsize=8)
        made.append(_saved(fig, ax, os.path.join(folder, "lift_vs_pe.png"), "PE score (min-max normalised)", "lift",
                           f"Specification {HEADLINE_SPEC}: lift on PE",
                           f"Lift against the PE score with the fitted line of {HEADLINE_SPEC}; red: products whose "
                           "Cook's distance exceeds 4/n.", legend=True))

        fig, ax = plt.subplots(figsize=(6, 3), dpi=110)
        ax.stem(np.arange(len(infl)), infl["cooks_d"].to_numpy(), markerfmt=" ", basefmt=" ")
        ax.axhline(4.0 / headline.n, color="#c44e52", lw=1, ls="--", label="4/n")
        made.append(_saved(fig, ax, os.path.join(folder, "cooks_distance.png"), "product", "Cook's distance",
                           f"Influence in {HEADLINE_SPEC}", f"Cook's distance of each product in {HEADLINE_SPEC}.",
                           legend=True))
    return made


def _saved(fig, ax, path: str, xlabel: str, ylabel: str, title: str, caption: str, *, legend: bool = False
           ) -> tuple[str, str]:
    """Label, save (PNG at ``path``) and close one figure → (file name, caption) for the report."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return os.path.basename(path), caption


def _blocks(result: AnalysisResult, meta: dict[str, Any], images: list[tuple[str, str]]) -> list[tuple]:
    t5 = table5_frame(result)
    blocks: list[tuple] = [
        ("p", f"Source: {result.panel.source}. {len(result.panel.treated_ids)} treated and "
              f"{len(result.panel.control_ids)} control products; daily sales {result.panel.sales_source}. "
              + " ".join(f"{k}: {v}." for k, v in meta.items())),
        ("h2", "Table 4 — first stage"),
        ("p", "Per treated product: daily sales on a post-video dummy and the search index with product and "
              "calendar-day fixed effects, against all control products (exact two-way fixed effects; the method is "
              "named above)."),
        ("table", table4_frame(result), {}),
    ]
    if len(result.skipped_products):
        blocks += [("p", "Treated products without an estimate:"),
                   ("table", result.skipped_products[["product_id", "n_treated_days", "n_post_days", "reason"]], {})]
    blocks += [("img", *images[0])] if images else []
    blocks += [
        ("h2", "Table 5 — second stage"),
        ("p", "OLS of the lift on the min-max normalised scores. Conventional standard errors are the paper's; "
              "HC1/HC3 are heteroskedasticity-robust; 'cluster' clusters by influencer. OOF R² is predictive R² "
              "from repeated 5-fold cross-validation (never in-sample). Influence: Cook's distance, flag > 4/n."),
        ("table", t5, _P_DIGITS),
    ]
    if _is_paper(result):
        pub = PAPER_PUBLISHED["table5"]
        blocks.append(("p", "Published (conventional SE): " + "; ".join(f"{k} {c:.2f} ({s:.2f})"
                                                                        for k, (c, s) in pub.items()) + "."))
    blocks += [("h3", "All coefficients: coef (conventional SE) [HC1 SE]"),
               ("table", coefficient_frame(result).reset_index(names="term"), {})]
    me = measurement_error_frame(result)
    if len(me):
        blocks += [("h3", "First-stage standard errors and measurement error"),
                   ("p", "Each lift's standard error three ways: conventional, heteroskedasticity-robust, and "
                         "clustered two-way by product and calendar day (the paper's clustering)."),
                   ("table", me, _ME_DIGITS), ("p", measurement_error_text(result))]
    blocks += [("img", *im) for im in images[1:]]
    rob = robustness_frame(result)
    if len(rob):
        blocks += [("h2", "Robustness of the PE coefficient"), ("table", rob, {"p": 3})]
    infl = influence_frame(result, HEADLINE_SPEC, top=10)
    if len(infl):
        blocks += [("h2", f"Most influential products in {HEADLINE_SPEC}"),
                   ("table", infl, {"cooks_d": 3, "leverage": 4, "dfbetas": 3, "pe": 3, "e": 3, "p": 3})]
    if len(result.spearman):
        blocks += [("h2", "Spearman correlations with the lift"), ("table", result.spearman, {"rho": 3, "p": 4})]
    if result.panel.notes:
        blocks += [("h2", "Data notes"), ("ul", result.panel.notes)]
    return blocks


def _md_table(df: pd.DataFrame, digits: dict[str, int]) -> str:
    head = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(_fmt(v, digits.get(c, 2)).replace("|", "\\|") for c, v in row.items()) + " |")
    return "\n".join(lines)


def _markdown(title: str, blocks: list[tuple]) -> str:
    out = [f"# {title}", ""]
    for b in blocks:
        kind = b[0]
        if kind in ("h2", "h3"):
            out += [("## " if kind == "h2" else "### ") + b[1], ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "table":
            out += [_md_table(b[1], b[2]), ""]
        elif kind == "img":
            out += [f"![{b[2]}]({b[1]})", "", f"*{b[2]}*", ""]
        elif kind == "ul":
            out += [f"- {x}" for x in b[1]] + [""]
    return "\n".join(out)


def _html_table(df: pd.DataFrame, digits: dict[str, int]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v, digits.get(c, 2)))}</td>" for c, v in row.items())
                   + "</tr>" for _, row in df.iterrows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(result: AnalysisResult, folder: str, *, title: str = "Sales-lift analysis",
                 meta: dict[str, Any] | None = None) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and the figures (PNG) into ``folder``; also ``lifts.csv`` (the
    first stage) and ``second_stage.csv`` (its data with the headline influence diagnostics)."""
    from jobs.templates import render_template

    os.makedirs(folder, exist_ok=True)
    images = _figures(result, folder)
    blocks = _blocks(result, meta or {}, images)
    md_path, html_path = os.path.join(folder, "report.md"), os.path.join(folder, "report.html")
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(_markdown(title, blocks))
    rendered = [(b[0], _html_table(b[1], b[2])) if b[0] == "table" else b for b in blocks]
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(render_template("analysis_report.html.j2", title=title, blocks=rendered))
    result.lifts.to_csv(os.path.join(folder, "lifts.csv"), index=False)
    infl = result.influence.get(HEADLINE_SPEC, pd.DataFrame())
    result.frame.join(infl).to_csv(os.path.join(folder, "second_stage.csv"))
    return ReportFiles(folder, md_path, html_path, [os.path.join(folder, name) for name, _ in images])
