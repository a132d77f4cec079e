"""Typed errors of the sales-lift analysis: every rejected input names what is wrong and carries a reason code.

    reason                  raised when
    panel_not_found         the --panel folder or one of its files does not exist
    panel_unreadable        a panel file is not readable Parquet
    missing_tables          the lake lacks taobao_sales, campaign_videos or pe_scores
    remote_lake             the report folder cannot be derived from a non-local lake (pass --out)
    missing_columns         an input frame lacks columns the analysis needs (named in the message)
    empty_panel             the sales panel has no rows
    duplicate_rows          a product has two rows for the same day
    bad_values              non-finite sales or a treatment flag outside {0, 1}
    no_treated_products     no product's treatment flag changes within the panel
    no_control_products     every product is treated: nothing to compare against
    too_few_products        the second stage has fewer products than a specification needs
    no_scores               no PE scores could be joined to the treated products
"""
from __future__ import annotations

from pe_udfs.errors import PEError


class AnalysisError(PEError):
    """A bad input to the analysis; ``reason`` is a short machine code (see the module docstring)."""

    stage = "analyze"
