"""The sales-lift analysis: pure pandas / linearmodels / statsmodels, no Spark.

    from jobs.analysis import load_paper_panel, analyze_panel, format_text
    result = analyze_panel(load_paper_panel("../shared/reference/paper-panel-2023-07"))
    print(format_text(result))      # Table 4, Table 5 with HC1/HC3/cluster SE and influence

Modules: ``panel`` (inputs → :class:`SalesPanel`, daily-sales imputation), ``first_stage`` (per-product
two-way fixed-effects lift), ``second_stage`` (the paper's six OLS specifications), ``diagnostics``
(influence, robustness, Spearman, out-of-fold R²), ``pipeline`` (all of it), ``render`` (text, Markdown,
HTML). The job ``pe analyze`` (lake in, ``sales_lift`` out, Spark over products) is :mod:`jobs.analysis.analyze`.
"""
from jobs.analysis.errors import AnalysisError
from jobs.analysis.first_stage import LIFT_COLUMNS, LIFT_SCHEMA, estimate_lift, estimate_lifts, lift_summary
from jobs.analysis.panel import (
                                 PAPER_PUBLISHED,
                                 SalesPanel,
                                 build_panel,
                                 complete_days,
                                 impute_daily_sales,
                                 load_paper_panel,
                                 minmax,
                                 panel_from_lake_frames,
)
from jobs.analysis.pipeline import HEADLINE_SPEC, AnalysisResult, analyze_panel, sales_lift_rows, second_stage
from jobs.analysis.render import format_text, write_report
from jobs.analysis.second_stage import Spec, SpecFit, fit_spec, fit_specs, paper_specs, second_stage_frame

__all__ = [
    "AnalysisError", "SalesPanel", "build_panel", "complete_days", "impute_daily_sales", "load_paper_panel",
    "minmax", "panel_from_lake_frames", "PAPER_PUBLISHED", "LIFT_COLUMNS", "LIFT_SCHEMA", "estimate_lift",
    "estimate_lifts", "lift_summary", "Spec", "SpecFit", "fit_spec", "fit_specs", "paper_specs",
    "second_stage_frame", "AnalysisResult", "analyze_panel", "second_stage", "sales_lift_rows", "HEADLINE_SPEC",
    "format_text", "write_report",
]
