"""Reproduction of the paper's Tables 4 and 5 from its public panel (internal data outside the repository).

Skips when ../shared/reference/paper-panel-2023-07 (or $PE_REFERENCE_PANEL) is absent. Takes minutes: 259
fixed-effects regressions over ~150,000 product-days each.
"""
from __future__ import annotations

import pytest

from jobs.analysis import PAPER_PUBLISHED, estimate_lifts, format_text, load_paper_panel, second_stage
from tests.conftest import REFERENCE_PANEL

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (REFERENCE_PANEL / "sales_panel.parquet").is_file(),
                       reason=f"paper panel not found at {REFERENCE_PANEL} (internal data; set PE_REFERENCE_PANEL)"),
]


@pytest.fixture(scope="module")
def paper_result():
    panel = load_paper_panel(REFERENCE_PANEL)
    return second_stage(panel, estimate_lifts(panel), oof_repeats=5)


def test_panel_roles_match_the_paper():
    panel = load_paper_panel(REFERENCE_PANEL)
    assert len(panel.treated_ids) == 259 and len(panel.control_ids) == 2426


def test_table_4_first_stage(paper_result):
    s, pub = paper_result.summary, PAPER_PUBLISHED["table4"]
    assert s["n"] == pub["n"] and (paper_result.lifts["status"] == "ok").all()
    assert round(s["mean"], 2) == pub["mean"]
    assert round(s["sd"], 2) == pub["sd"]
    assert round(s["min"], 1) == pub["min"]
    assert round(s["median"], 2) == pub["median"]
    assert round(s["max"], 1) == pub["max"]


def test_table_5_second_stage(paper_result):
    for name, (coef, se) in PAPER_PUBLISHED["table5"].items():
        fit = paper_result.fit(name)
        assert fit.n == 259
        assert round(fit.focus("coef"), 2) == coef, name
        assert round(fit.focus("se"), 2) == se, name


def test_robust_errors_and_influence_tell_the_rest(paper_result):
    """Our re-analysis: with HC1 errors PE is not significant, and one product drives it."""
    one = paper_result.fit("(1)")
    assert one.focus("p") < 0.01 and round(one.focus("p_hc1"), 2) == 0.23
    infl = paper_result.influence["(1)"]
    assert round(infl["cooks_d"].max(), 2) == 3.55 and infl["flagged"].sum() == 4
    text = format_text(paper_result)
    assert "Table 4" in text and "Table 5" in text and "SE HC1" in text
