"""What each table must satisfy: one suite of Great Expectations per table, every check with its rule in words.

* ``campaign_videos``: ids present and unique; video and product image URIs present and allowed by the one
  URI policy (:mod:`pe_udfs.uris`: an allowed scheme — a plain path is ``file`` — and under an allowed root;
  ``cfg.io.allowed_schemes``, ``cfg.allowed_roots``). The policy's verdict is a derived column the suite
  checks, so the quality gate and the jobs that read the files can never disagree.
* ``engagement_labels``: counts non-negative; shares <= views where both exist.
* ``pe_scores``: one row per (video_id, model_version); pe_share in [0, 1]; pe_raw, e_score, p_score >= 0;
  model version and run id present.
* ``pe_seconds``: a cross-table check on one row per pe_scores row (:mod:`jobs.quality.seconds`): seconds
  contiguous from 0; as many seconds as ``n_seconds``; Σ e_mass = e_score, Σ p_mass = p_score,
  Σ pe_mass = pe_raw · S · size² (``*_mismatch`` columns: |difference| in tolerance units; <= 1 passes).

:func:`run_suite` validates a frame with a suite in a Great Expectations context (:mod:`jobs.quality.ge`);
:func:`suite_failures` reads its failed expectations back in the suite's words.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pandas as pd

from jobs.config import PEConfig
from jobs.quality.ge import expectations, plain
from jobs.quality.results import FailedExpectation, QualityError
from pe_udfs.uris import policy_violation

#: Tables read by the jobs: a failing row is rejected (and recorded), the rest goes on.
INPUT_TABLES: tuple[str, ...] = ("campaign_videos", "engagement_labels")
#: Tables written by the jobs: any failed expectation fails the job.
OUTPUT_TABLES: tuple[str, ...] = ("pe_scores", "pe_seconds")
SUITE_TABLES: tuple[str, ...] = INPUT_TABLES + OUTPUT_TABLES

#: The key of a scored video (pe_scores' key, and pe_seconds' without the second).
SCORE_KEYS = ["video_id", "model_version"]
#: Columns of the joined per-(video_id, model_version) frame the pe_seconds suite validates.
PE_SECONDS_CHECK_COLUMNS = (
    "video_id", "model_version", "in_pe_seconds", "seconds_rows", "distinct_seconds", "first_second",
    "seconds_span", "n_seconds", "e_score_mismatch", "pe_raw_mismatch", "p_score_mismatch",
)
_URI_COLUMNS = (("video_uri", "video"), ("product_image_uri", "product image"))


@dataclass(frozen=True)
class Check:
    """An expectation plus the words for it: ``rule`` (what must hold) and ``row`` (why a row broke it; a
    ``str.format`` template over the row's columns)."""

    name: str
    expectation: Any
    rule: str
    row: str = ""


@dataclass(frozen=True)
class Suite:
    """A table's checks; ``columns`` they need from the table, ``derive`` adds the columns computed from them."""

    table: str
    columns: tuple[str, ...]
    checks: tuple[Check, ...]
    row_level: bool
    derive: Callable[[pd.DataFrame], pd.DataFrame] | None = field(default=None, compare=False)

    def frame(self, frame: Any) -> pd.DataFrame:
        """The suite's columns of a pandas or Spark DataFrame, as pandas, with the derived columns added."""
        out = _select(frame, self.columns, self.table)
        return self.derive(out) if self.derive else out


def run_suite(ctx, suite: Suite, frame: pd.DataFrame, result_format: str, docs: bool, run_name: str | None):
    """Validate ``frame`` (the suite's columns, derived ones included: :meth:`Suite.frame`) with ``suite``;
    returns GE's ExpectationSuiteValidationResult."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    source = ctx.data_sources.add_or_update_pandas("pe")
    asset = source.add_dataframe_asset(suite.table)
    batch = asset.add_batch_definition_whole_dataframe("whole_table")
    gx_suite = ctx.suites.add(gx.ExpectationSuite(name=suite.table))
    for check in suite.checks:
        check.expectation.meta = {"check": check.name}
        check.expectation.description = check.rule
        gx_suite.add_expectation(check.expectation)
    definition = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=suite.table, data=batch, suite=gx_suite))
    actions: list[gx.checkpoint.ValidationAction] = (
        [gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["lake"])] if docs else [])
    checkpoint = ctx.checkpoints.add(gx.Checkpoint(
        name=f"{suite.table}_checkpoint", validation_definitions=[definition], actions=actions,
        result_format={"result_format": result_format}))
    result = checkpoint.run(batch_parameters={"dataframe": frame},
                            run_id=RunIdentifier(run_name=run_name) if run_name else None)
    (validation,) = result.run_results.values()
    return validation


def suite_failures(suite: Suite, validation) -> list[FailedExpectation]:
    """The failed expectations of a validation result, with the suite's words for each."""
    by_name = {c.name: c for c in suite.checks}
    out = []
    for er in validation.results:
        if er.success:
            continue
        cfg = er.expectation_config
        check_name = (cfg.meta or {}).get("check")
        check = by_name.get(check_name) if check_name else None
        kw = cfg.kwargs
        cols = tuple(kw.get("column_list") or [c for c in (kw.get("column"), kw.get("column_A"), kw.get("column_B")) if c])
        info = er.exception_info or {}
        error = info.get("exception_message") if info.get("raised_exception") else None
        res = er.result or {}
        out.append(FailedExpectation(
            expectation=cfg.type, check=check.name if check else "", columns=cols,
            rule=check.rule if check else (cfg.description or ""),
            unexpected_count=res.get("unexpected_count"), element_count=res.get("element_count"),
            examples=tuple(plain(v) for v in (res.get("partial_unexpected_list") or [])[:5]), error=error))
    return out


def suite(name: str, cfg: PEConfig) -> Suite:
    """Table ``name``'s suite; :class:`QualityError` (``unknown_table``) for a table without one."""
    try:
        build = _SUITES[name]
    except KeyError:
        raise QualityError("unknown_table", f"no quality suite for table {name!r}; suites exist for: "
                           f"{', '.join(SUITE_TABLES)}") from None
    return build(cfg)


def suite_checks(name: str, cfg: PEConfig) -> list[tuple[str, str, str]]:
    """(check name, GE expectation name, rule) of table ``name``'s suite — for docs and tests."""
    return [(c.name, c.expectation.expectation_type, c.rule) for c in suite(name, cfg).checks]


# ------------------------------------------------------------------------------------------------ the suites
def _campaign_videos_suite(cfg: PEConfig) -> Suite:
    gxe = expectations()
    schemes = ", ".join(cfg.io.allowed_schemes)
    roots = ", ".join(cfg.allowed_roots)
    checks = [
        Check("id_present", gxe.ExpectColumnValuesToNotBeNull(column="video_id"),
              "video_id is present", "video_id is missing"),
        Check("id_not_blank", gxe.ExpectColumnValuesToMatchRegex(column="video_id", regex=r"\S"),
              "video_id is not blank", "video_id is blank"),
        Check("id_unique", gxe.ExpectColumnValuesToBeUnique(column="video_id"),
              "video_id is unique", "video_id {video_id!r} appears more than once"),
    ]
    for col, what in _URI_COLUMNS:
        checks += [
            Check(f"{col}_present", gxe.ExpectColumnValuesToNotBeNull(column=col),
                  f"{col} is present", f"{what} URI ({col}) is missing"),
            Check(f"{col}_scheme", gxe.ExpectColumnValuesToBeInSet(column=f"{col}_scheme_allowed", value_set=[True]),
                  _braces(f"{col} has an allowed scheme ({schemes})"),
                  f"{col} {{{col}!r}} is not of an allowed scheme ({_braces(schemes)})"),
            Check(f"{col}_root", gxe.ExpectColumnValuesToBeInSet(column=f"{col}_under_root", value_set=[True]),
                  _braces(f"{col} is under an allowed root ({roots})"),
                  f"{col} {{{col}!r}} is not under an allowed root ({_braces(roots)})"),
        ]
    return Suite("campaign_videos", ("video_id", "video_uri", "product_image_uri"), tuple(checks), row_level=True,
                 derive=lambda frame: with_uri_policy(frame, cfg))


def with_uri_policy(frame: pd.DataFrame, cfg: PEConfig) -> pd.DataFrame:
    """Add ``<col>_scheme_allowed`` and ``<col>_under_root`` (None where the URI is missing) for the URI
    columns, from :func:`pe_udfs.uris.policy_violation` — a URI of a scheme that is not allowed is under no
    root either."""
    frame = frame.copy()
    schemes, roots = list(cfg.io.allowed_schemes), list(cfg.allowed_roots)
    for col, _ in _URI_COLUMNS:
        present = frame[col].notna()
        violation = frame[col].map(lambda u: policy_violation(u, allowed_schemes=schemes, allowed_roots=roots))
        frame[f"{col}_scheme_allowed"] = (~violation.isin(["scheme_not_allowed", "file_host_not_allowed", "not_found"])
                                          ).where(present, None)
        frame[f"{col}_under_root"] = violation.isna().where(present, None)
    return frame


def _engagement_labels_suite(cfg: PEConfig) -> Suite:
    gxe = expectations()
    counts = ("views", "likes", "comments", "shares")
    checks = [
        Check(f"{c}_non_negative", gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0),
              f"{c} >= 0", f"{c} is negative ({{{c}}})")
        for c in counts
    ]
    checks.append(Check(
        "shares_le_views",
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="views", column_B="shares", or_equal=True,
                                                    ignore_row_if="either_value_is_missing"),
        "shares <= views where both exist", "shares ({shares}) exceed views ({views})"))
    return Suite("engagement_labels", ("video_id", *counts), tuple(checks), row_level=True)


def _pe_scores_suite(cfg: PEConfig) -> Suite:
    gxe = expectations()
    checks = [
        Check("key_unique", gxe.ExpectCompoundColumnsToBeUnique(column_list=SCORE_KEYS),
              "one row per (video_id, model_version)"),
        Check("video_id_present", gxe.ExpectColumnValuesToNotBeNull(column="video_id"), "video_id is present"),
        Check("model_version_present", gxe.ExpectColumnValuesToNotBeNull(column="model_version"),
              "model_version is present"),
        Check("run_id_present", gxe.ExpectColumnValuesToNotBeNull(column="run_id"), "run_id is present"),
        Check("pe_share_in_unit_interval",
              gxe.ExpectColumnValuesToBeBetween(column="pe_share", min_value=0, max_value=1), "0 <= pe_share <= 1"),
    ]
    checks += [Check(f"{c}_non_negative", gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0), f"{c} >= 0")
               for c in ("pe_raw", "e_score", "p_score")]
    return Suite("pe_scores", ("video_id", "model_version", "run_id", "pe_share", "pe_raw", "e_score", "p_score"),
                 tuple(checks), row_level=False)


def _pe_seconds_suite(cfg: PEConfig) -> Suite:
    gxe = expectations()
    tol = f"|difference| <= {cfg.quality.sum_atol:g} + {cfg.quality.sum_rtol:g}·|pe_scores value|"
    pair = dict(ignore_row_if="either_value_is_missing")
    checks = (
        Check("seconds_start_at_0", gxe.ExpectColumnValuesToBeInSet(column="first_second", value_set=[0]),
              "a video's seconds start at 0"),
        Check("seconds_unique",
              gxe.ExpectColumnPairValuesToBeEqual(column_A="seconds_rows", column_B="distinct_seconds", **pair),
              "one row per second"),
        Check("seconds_contiguous",
              gxe.ExpectColumnPairValuesToBeEqual(column_A="distinct_seconds", column_B="seconds_span", **pair),
              "no second missing between the first and the last"),
        Check("has_pe_seconds_rows", gxe.ExpectColumnValuesToBeInSet(column="in_pe_seconds", value_set=[True]),
              "every pe_scores row has pe_seconds rows"),
        Check("seconds_match_n_seconds",
              gxe.ExpectColumnPairValuesToBeEqual(column_A="distinct_seconds", column_B="n_seconds", **pair),
              "as many seconds as pe_scores.n_seconds"),
        Check("e_mass_sums_to_e_score",
              gxe.ExpectColumnValuesToBeBetween(column="e_score_mismatch", max_value=1.0),
              f"Σ e_mass = e_score ({tol})"),
        Check("pe_mass_sums_to_pe_raw",
              gxe.ExpectColumnValuesToBeBetween(column="pe_raw_mismatch", max_value=1.0),
              f"Σ pe_mass = pe_raw·n_seconds·{cfg.clip.size}² ({tol})"),
        Check("p_mass_sums_to_p_score",
              gxe.ExpectColumnValuesToBeBetween(column="p_score_mismatch", max_value=1.0),
              f"Σ p_mass = p_score ({tol})"),
    )
    return Suite("pe_seconds", PE_SECONDS_CHECK_COLUMNS, checks, row_level=False)


_SUITES: dict[str, Callable[[PEConfig], Suite]] = {
    "campaign_videos": _campaign_videos_suite,
    "engagement_labels": _engagement_labels_suite,
    "pe_scores": _pe_scores_suite,
    "pe_seconds": _pe_seconds_suite,
}


# ------------------------------------------------------------------------------------------------- helpers
def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _select(frame: Any, columns: Iterable[str], table: str) -> pd.DataFrame:
    columns = list(columns)
    if isinstance(frame, pd.DataFrame) or (hasattr(frame, "toPandas") and hasattr(frame, "columns")):
        have = list(frame.columns)
    else:
        raise QualityError("bad_input", f"{table}: expected a pandas or Spark DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in have]
    if missing:
        raise QualityError("missing_columns", f"{table}: cannot validate, missing columns {missing} (have {have})")
    if isinstance(frame, pd.DataFrame):
        return frame[columns].copy()
    return frame.select(*columns).toPandas()
