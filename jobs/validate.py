"""Data quality gates: Great Expectations 1.x suites for the lake's input and output tables.

::

    campaign_videos ─┐                      row-level: rejected_inputs() → scoring_errors (stage 'validate'),
    engagement_labels┘─ suite per table ──▶ the rest is scored / trained on
    pe_scores ───────┐
    pe_seconds ──────┘─ suite per table ──▶ table-level: any failure fails the job (check_outputs, pe validate)
                                          └▶ Data Docs (HTML) in <lake>/quality/data_docs/index.html

* ``campaign_videos``: ids present and unique; video and product image URIs present, of an allowed scheme
  (``cfg.io.allowed_schemes``; a plain absolute path is scheme ``file``) and under an allowed root
  (``cfg.allowed_roots``), with no ``..`` segment.
* ``engagement_labels``: counts non-negative; shares <= views where both exist.
* ``pe_scores``: one row per (video_id, model_version); pe_share in [0, 1]; pe_raw, e_score, p_score >= 0;
  model version and run id present.
* ``pe_seconds``: a cross-table check, expressed as expectations on one row per (video_id, model_version)
  of pe_seconds aggregated by Spark and full-outer-joined to pe_scores: seconds contiguous from 0; as many
  seconds as ``n_seconds``; Σ e_mass = e_score, Σ p_mass = p_score, Σ pe_mass = pe_raw · S · size²
  (``*_mismatch`` columns: |difference| in units of the tolerance ``cfg.quality``; <= 1 passes).

Great Expectations runs on pandas frames in an ephemeral context (no GE project folder); validation
results are kept under ``<quality root>/validations`` so the Data Docs index lists every run.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from jobs import contracts
from jobs.config import PEConfig
from pe_udfs.errors import PEError

if TYPE_CHECKING:
    from jobs.lake import Lake

#: Tables read by the jobs: a failing row is rejected (and recorded), the rest goes on.
INPUT_TABLES: tuple[str, ...] = ("campaign_videos", "engagement_labels")
#: Tables written by the jobs: any failed expectation fails the job.
OUTPUT_TABLES: tuple[str, ...] = ("pe_scores", "pe_seconds")
SUITE_TABLES: tuple[str, ...] = INPUT_TABLES + OUTPUT_TABLES

#: video_id reported for input rows that have no (or an empty) video_id; scoring_errors' key is not null.
MISSING_ID = ""

_SCORE_KEYS = ["video_id", "model_version"]


class QualityError(PEError):
    """A data quality problem or a validation that could not run; ``reason`` is a stable code."""

    stage = "validate"


class ValidationFailed(QualityError):
    """One or more expectations failed on tables whose failures fail the job."""

    def __init__(self, reports: Sequence["ValidationReport"]):
        self.reports = tuple(reports)
        names = sorted({f"{r.table}.{f.expectation}" for r in reports for f in r.failed})
        super().__init__("validation_failed", "data quality gate failed: " + ", ".join(names))


@dataclass(frozen=True)
class FailedExpectation:
    """One failed expectation of a table's suite."""

    expectation: str  # GE's name, e.g. 'expect_compound_columns_to_be_unique'
    check: str  # this project's short name, e.g. 'key_unique'
    columns: tuple[str, ...]
    rule: str  # what the expectation says, in words
    unexpected_count: int | None  # rows that broke it (None when the expectation could not run)
    element_count: int | None
    examples: tuple[Any, ...] = ()  # a few offending values
    error: str | None = None  # the exception message when the expectation could not be evaluated

    def describe(self) -> str:
        where = f" [{', '.join(self.columns)}]" if self.columns else ""
        if self.error:
            return f"{self.expectation}{where}: could not run: {self.error}"
        count = f"{self.unexpected_count} of {self.element_count} rows" if self.unexpected_count is not None else ""
        ex = f"; e.g. {', '.join(repr(e) for e in self.examples)}" if self.examples else ""
        return f"{self.expectation}{where}: {count} broke '{self.rule}'{ex}"


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of one table's suite."""

    table: str
    success: bool
    rows: int  # rows validated (for pe_seconds: (video_id, model_version) groups)
    expectations: int
    failed: tuple[FailedExpectation, ...] = ()
    docs_path: str | None = None  # Data Docs index (HTML) when written
    row_level: bool = False  # an input table: failing rows are rejected instead of failing the job

    @property
    def failed_expectations(self) -> list[str]:
        return [f.expectation for f in self.failed]

    def describe(self) -> str:
        status = "passed" if self.success else f"FAILED {len(self.failed)} of {self.expectations} expectations"
        lines = [f"{self.table}: {status} ({self.rows} rows)"]
        lines += [f"  - {f.describe()}" for f in self.failed]
        return "\n".join(lines)


# ---------------------------------------------------------------------- suites
@dataclass(frozen=True)
class _Check:
    """An expectation plus the words for it: ``rule`` (what must hold) and ``row`` (why a row broke it; a
    ``str.format`` template over the row's columns)."""

    name: str
    expectation: Any
    rule: str
    row: str = ""


@dataclass(frozen=True)
class _Suite:
    table: str
    columns: tuple[str, ...]  # columns the checks need
    checks: tuple[_Check, ...]
    row_level: bool


def _gxe():
    _import_gx()
    import great_expectations.expectations as gxe

    return gxe


def _campaign_videos_suite(cfg: PEConfig) -> _Suite:
    gxe = _gxe()
    scheme_re, root_re = uri_patterns(cfg)
    schemes = ", ".join(cfg.io.allowed_schemes)
    roots = ", ".join(cfg.allowed_roots)
    checks = [
        _Check("id_present", gxe.ExpectColumnValuesToNotBeNull(column="video_id"),
               "video_id is present", "video_id is missing"),
        _Check("id_not_blank", gxe.ExpectColumnValuesToMatchRegex(column="video_id", regex=r"\S"),
               "video_id is not blank", "video_id is blank"),
        _Check("id_unique", gxe.ExpectColumnValuesToBeUnique(column="video_id"),
               "video_id is unique", "video_id {video_id!r} appears more than once"),
    ]
    for col, what in (("video_uri", "video"), ("product_image_uri", "product image")):
        checks += [
            _Check(f"{col}_present", gxe.ExpectColumnValuesToNotBeNull(column=col),
                   f"{col} is present", f"{what} URI ({col}) is missing"),
            _Check(f"{col}_scheme", gxe.ExpectColumnValuesToMatchRegex(column=col, regex=scheme_re),
                   _braces(f"{col} has an allowed scheme ({schemes})"),
                   f"{col} {{{col}!r}} is not of an allowed scheme ({_braces(schemes)})"),
            _Check(f"{col}_root", gxe.ExpectColumnValuesToMatchRegex(column=col, regex=root_re),
                   _braces(f"{col} is under an allowed root ({roots})"),
                   f"{col} {{{col}!r}} is not under an allowed root ({_braces(roots)})"),
        ]
    return _Suite("campaign_videos", ("video_id", "video_uri", "product_image_uri"), tuple(checks), row_level=True)


def _engagement_labels_suite(cfg: PEConfig) -> _Suite:
    gxe = _gxe()
    counts = ("views", "likes", "comments", "shares")
    checks = [
        _Check(f"{c}_non_negative", gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0),
               f"{c} >= 0", f"{c} is negative ({{{c}}})")
        for c in counts
    ]
    checks.append(_Check(
        "shares_le_views",
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="views", column_B="shares", or_equal=True,
                                                    ignore_row_if="either_value_is_missing"),
        "shares <= views where both exist", "shares ({shares}) exceed views ({views})"))
    return _Suite("engagement_labels", ("video_id", *counts), tuple(checks), row_level=True)


def _pe_scores_suite(cfg: PEConfig) -> _Suite:
    gxe = _gxe()
    checks = [
        _Check("key_unique", gxe.ExpectCompoundColumnsToBeUnique(column_list=_SCORE_KEYS),
               "one row per (video_id, model_version)"),
        _Check("video_id_present", gxe.ExpectColumnValuesToNotBeNull(column="video_id"), "video_id is present"),
        _Check("model_version_present", gxe.ExpectColumnValuesToNotBeNull(column="model_version"),
               "model_version is present"),
        _Check("run_id_present", gxe.ExpectColumnValuesToNotBeNull(column="run_id"), "run_id is present"),
        _Check("pe_share_in_unit_interval",
               gxe.ExpectColumnValuesToBeBetween(column="pe_share", min_value=0, max_value=1), "0 <= pe_share <= 1"),
    ]
    checks += [_Check(f"{c}_non_negative", gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0), f"{c} >= 0")
               for c in ("pe_raw", "e_score", "p_score")]
    return _Suite("pe_scores", ("video_id", "model_version", "run_id", "pe_share", "pe_raw", "e_score", "p_score"),
                  tuple(checks), row_level=False)


def _pe_seconds_suite(cfg: PEConfig) -> _Suite:
    gxe = _gxe()
    tol = f"|difference| <= {cfg.quality.sum_atol:g} + {cfg.quality.sum_rtol:g}·|pe_scores value|"
    pair = dict(ignore_row_if="either_value_is_missing")
    checks = (
        _Check("seconds_start_at_0", gxe.ExpectColumnValuesToBeInSet(column="first_second", value_set=[0]),
               "a video's seconds start at 0"),
        _Check("seconds_unique",
               gxe.ExpectColumnPairValuesToBeEqual(column_A="seconds_rows", column_B="distinct_seconds", **pair),
               "one row per second"),
        _Check("seconds_contiguous",
               gxe.ExpectColumnPairValuesToBeEqual(column_A="distinct_seconds", column_B="seconds_span", **pair),
               "no second missing between the first and the last"),
        _Check("has_pe_scores_row", gxe.ExpectColumnValuesToBeInSet(column="in_pe_scores", value_set=[True]),
               "every (video_id, model_version) of pe_seconds has a pe_scores row"),
        _Check("has_pe_seconds_rows", gxe.ExpectColumnValuesToBeInSet(column="in_pe_seconds", value_set=[True]),
               "every pe_scores row has pe_seconds rows"),
        _Check("seconds_match_n_seconds",
               gxe.ExpectColumnPairValuesToBeEqual(column_A="distinct_seconds", column_B="n_seconds", **pair),
               "as many seconds as pe_scores.n_seconds"),
        _Check("e_mass_sums_to_e_score",
               gxe.ExpectColumnValuesToBeBetween(column="e_score_mismatch", max_value=1.0),
               f"Σ e_mass = e_score ({tol})"),
        _Check("pe_mass_sums_to_pe_raw",
               gxe.ExpectColumnValuesToBeBetween(column="pe_raw_mismatch", max_value=1.0),
               f"Σ pe_mass = pe_raw·n_seconds·{cfg.clip.size}² ({tol})"),
        _Check("p_mass_sums_to_p_score",
               gxe.ExpectColumnValuesToBeBetween(column="p_score_mismatch", max_value=1.0),
               f"Σ p_mass = p_score ({tol})"),
    )
    return _Suite("pe_seconds", tuple(PE_SECONDS_CHECK_COLUMNS), checks, row_level=False)


#: Columns of the joined per-(video_id, model_version) frame the pe_seconds suite validates.
PE_SECONDS_CHECK_COLUMNS = (
    "video_id", "model_version", "in_pe_seconds", "in_pe_scores", "seconds_rows", "distinct_seconds",
    "first_second", "seconds_span", "n_seconds", "e_score_mismatch", "pe_raw_mismatch", "p_score_mismatch",
)

_SUITES: dict[str, Callable[[PEConfig], _Suite]] = {
    "campaign_videos": _campaign_videos_suite,
    "engagement_labels": _engagement_labels_suite,
    "pe_scores": _pe_scores_suite,
    "pe_seconds": _pe_seconds_suite,
}


def suite_checks(name: str, cfg: PEConfig) -> list[tuple[str, str, str]]:
    """(check name, GE expectation name, rule) of table ``name``'s suite — for docs and tests."""
    return [(c.name, c.expectation.expectation_type, c.rule) for c in _suite(name, cfg).checks]


def _suite(name: str, cfg: PEConfig) -> _Suite:
    try:
        return _SUITES[name](cfg)
    except KeyError:
        raise QualityError("unknown_table", f"no quality suite for table {name!r}; suites exist for: {', '.join(SUITE_TABLES)}") from None


def uri_patterns(cfg: PEConfig) -> tuple[str, str]:
    """Regexes (search semantics, anchored) for 'of an allowed scheme' and 'under an allowed root'.

    A plain absolute path counts as scheme ``file``. The root pattern also refuses ``..`` segments (plain or
    percent-encoded), so ``<root>/../etc/passwd`` is not under the root.
    """
    schemes = [s.lower() for s in cfg.io.allowed_schemes]
    alts = [re.escape(s) + "://" for s in schemes]
    if "file" in schemes:
        alts.append("/(?!/)")  # a plain absolute path (not '//host/...')
    scheme_re = f"^(?i:{'|'.join(alts)})" if alts else "(?!)"
    roots = []
    for root in cfg.allowed_roots:
        if "://" in root:
            scheme, rest = root.split("://", 1)
            if scheme.lower() == "file":
                roots.append(("file", "/" + rest.lstrip("/")))
            else:
                roots.append((scheme.lower(), root))
        else:
            roots.append(("file", os.path.abspath(root)))
    root_alts = []
    for scheme, root in roots:
        if scheme not in schemes:
            continue  # a root whose scheme is not allowed admits nothing
        if scheme == "file":
            root_alts.append(f"(?i:file://)?{re.escape(root.rstrip('/'))}")
        else:
            rest = root.split("://", 1)[1].rstrip("/")
            root_alts.append(f"(?i:{re.escape(scheme)})://{re.escape(rest)}")
    no_dotdot = r"(?!.*(?:^|/)(?:\.|%2[eE]){2}(?:/|$))"
    root_re = f"^{no_dotdot}(?:{'|'.join(root_alts)})(?:/|$)" if root_alts else "(?!)"
    return scheme_re, root_re


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


# ---------------------------------------------------------------------- Great Expectations
def _import_gx():
    """Import Great Expectations, turning a silent ``sys.exit`` during import (pyspark's Spark Connect
    dependency check, DESIGN §8) or a broken install into a :class:`QualityError`."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    try:
        import great_expectations as gx
    except SystemExit as e:
        raise QualityError("ge_unavailable", f"importing great_expectations exited the interpreter (code {e.code}); this happens "
                           "when pyspark's Spark Connect extras are missing: install the project's "
                           "requirements/constraints.txt") from None
    except ImportError as e:
        raise QualityError("ge_unavailable", f"great_expectations cannot be imported: {e}") from e
    if not hasattr(gx, "get_context"):
        raise QualityError("ge_unavailable", f"great_expectations at {getattr(gx, '__file__', '?')} is not GE 1.x")
    return gx


def quality_root(cfg: PEConfig) -> str | None:
    """Local folder for Data Docs and stored validation results (``None``: remote lake, none configured)."""
    if cfg.quality.root:
        return os.path.abspath(os.path.expanduser(cfg.quality.root))
    lake = cfg.lake_path
    if "://" in lake:
        return None
    return os.path.join(lake, "quality")


def docs_index(cfg: PEConfig) -> str | None:
    root = quality_root(cfg)
    return None if root is None else os.path.join(root, "data_docs", "index.html")


def _context(root: str | None):
    """An ephemeral GE context; with ``root``, results are stored in ``root/validations`` and Data Docs
    are built in ``root/data_docs``."""
    gx = _import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig, InMemoryStoreBackendDefaults, ProgressBarsConfig)

    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    sites = {}
    if root is not None:
        defaults.stores[defaults.validation_results_store_name]["store_backend"] = {
            "class_name": "TupleFilesystemStoreBackend", "base_directory": os.path.join(root, "validations")}
        sites = {"lake": {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": os.path.join(root, "data_docs")},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }}
    config = DataContextConfig(store_backend_defaults=defaults, analytics_enabled=False,
                               progress_bars=ProgressBarsConfig(globally=False), data_docs_sites=sites)
    return gx.get_context(project_config=config, mode="ephemeral")


def _run(context, suite: _Suite, frame: pd.DataFrame, result_format: str, docs: bool, run_name: str | None):
    """Validate ``frame`` with ``suite``; returns GE's ExpectationSuiteValidationResult."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    missing = [c for c in suite.columns if c not in frame.columns]
    if missing:
        raise QualityError("missing_columns", f"{suite.table}: cannot validate, missing columns {missing} (have {list(frame.columns)})")
    source = context.data_sources.add_or_update_pandas("pe")
    asset = source.add_dataframe_asset(suite.table)
    batch = asset.add_batch_definition_whole_dataframe("whole_table")
    gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.table))
    for check in suite.checks:
        check.expectation.meta = {"check": check.name}
        check.expectation.description = check.rule
        gx_suite.add_expectation(check.expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.table, data=batch, suite=gx_suite))
    actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["lake"])] if docs else []
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=f"{suite.table}_checkpoint", validation_definitions=[definition], actions=actions,
        result_format={"result_format": result_format}))
    result = checkpoint.run(batch_parameters={"dataframe": frame},
                            run_id=RunIdentifier(run_name=run_name) if run_name else None)
    (validation,) = result.run_results.values()
    return validation


def _failures(suite: _Suite, validation) -> list[FailedExpectation]:
    by_name = {c.name: c for c in suite.checks}
    out = []
    for er in validation.results:
        if er.success:
            continue
        cfg = er.expectation_config
        check = by_name.get((cfg.meta or {}).get("check"))
        kw = cfg.kwargs
        cols = tuple(kw.get("column_list") or [c for c in (kw.get("column"), kw.get("column_A"), kw.get("column_B")) if c])
        info = er.exception_info or {}
        error = info.get("exception_message") if info.get("raised_exception") else None
        res = er.result or {}
        out.append(FailedExpectation(
            expectation=cfg.type, check=check.name if check else "", columns=cols,
            rule=check.rule if check else (cfg.description or ""),
            unexpected_count=res.get("unexpected_count"), element_count=res.get("element_count"),
            examples=tuple(_plain(v) for v in (res.get("partial_unexpected_list") or [])[:5]), error=error))
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return tuple(_plain(x) for x in v)
    if isinstance(v, np.generic):
        return v.item()
    return v


# ---------------------------------------------------------------------- row level (inputs)
def rejected_rows(frame: "pd.DataFrame | Any", table: str, cfg: PEConfig) -> pd.DataFrame:
    """Rows of input ``table`` that fail its suite: one row per rejected ``video_id``.

    ``frame``: pandas or Spark DataFrame with (at least) the suite's columns. Returns a pandas frame with
    columns ``video_id`` (``MISSING_ID`` = '' for rows without an id), ``expectation`` (GE expectation
    names, comma-joined when several failed) and ``message`` ('; '-joined reasons). Nothing is written.
    """
    suite = _suite(table, cfg)
    if not suite.row_level:
        raise QualityError("not_input", f"{table} is an output table: validate it with validate_table()")
    frame = _to_pandas(frame, suite.columns, table).reset_index(drop=True)
    columns = ["video_id", "expectation", "message"]
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    validation = _run(_context(None), suite, frame, "COMPLETE", docs=False, run_name=None)
    by_name = {c.name: c for c in suite.checks}
    reasons: dict[int, list[tuple[str, str]]] = {}
    for er in validation.results:
        if er.success:
            continue
        info = er.exception_info or {}
        if info.get("raised_exception"):
            raise QualityError("expectation_error", f"{table}: expectation {er.expectation_config.type} could not run: "
                               f"{info.get('exception_message')}")
        check = by_name[er.expectation_config.meta["check"]]
        for i in er.result.get("unexpected_index_list") or []:
            i = int(i["index"]) if isinstance(i, dict) else int(i)
            reasons.setdefault(i, []).append((er.expectation_config.type, _row_message(check, frame.iloc[i])))
    per_id: dict[str, list[tuple[str, str]]] = {}
    for i in sorted(reasons):
        vid = frame.at[i, "video_id"]
        vid = MISSING_ID if vid is None or (isinstance(vid, float) and np.isnan(vid)) or not str(vid).strip() else str(vid)
        for item in reasons[i]:
            if item not in per_id.setdefault(vid, []):
                per_id[vid].append(item)
    rows = [(vid, ",".join(dict.fromkeys(e for e, _ in items)), "; ".join(dict.fromkeys(m for _, m in items)))
            for vid, items in sorted(per_id.items())]
    return pd.DataFrame(rows, columns=columns)


def rejected_inputs(videos: "pd.DataFrame | Any", cfg: PEConfig) -> pd.DataFrame:
    """The ``campaign_videos`` rows the scoring job must not score (see :func:`rejected_rows`).

    ``videos``: pandas or Spark DataFrame (at most thousands of rows) with video_id, video_uri and
    product_image_uri. Returns columns video_id, expectation, message — one row per rejected video.
    """
    return rejected_rows(videos, "campaign_videos", cfg)


def _row_message(check: _Check, row: pd.Series) -> str:
    values = {k: (None if _isnull(v) else _plain(v)) for k, v in row.items()}
    # counts read with nulls come as floats: show 5, not 5.0
    values = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in values.items()}
    try:
        return check.row.format(**values) if check.row else check.rule
    except (KeyError, IndexError, ValueError):
        return check.rule


def _isnull(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _to_pandas(frame: Any, columns: Iterable[str], table: str) -> pd.DataFrame:
    columns = list(columns)
    if isinstance(frame, pd.DataFrame):
        have = frame.columns
    elif hasattr(frame, "toPandas") and hasattr(frame, "columns"):
        have = frame.columns
    else:
        raise QualityError("bad_input", f"{table}: expected a pandas or Spark DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in have]
    if missing:
        raise QualityError("missing_columns", f"{table}: cannot validate, missing columns {missing} (have {list(have)})")
    if isinstance(frame, pd.DataFrame):
        return frame[columns].copy()
    return frame.select(*columns).toPandas()


# ---------------------------------------------------------------------- table level
def table_frame(lake: "Lake", name: str, cfg: PEConfig) -> pd.DataFrame:
    """The pandas frame table ``name``'s suite validates (for pe_seconds: the joined per-video frame)."""
    suite = _suite(name, cfg)
    if name == "pe_seconds":
        scores = lake.read("pe_scores") if lake.exists("pe_scores") else \
            lake.spark.createDataFrame([], contracts.spark_schema("pe_scores"))
        return pe_seconds_check_frame(lake.read("pe_seconds"), scores, cfg)
    return lake.read_pandas(name, columns=list(suite.columns))


def pe_seconds_check_frame(seconds: Any, scores: Any, cfg: PEConfig) -> pd.DataFrame:
    """pe_seconds and pe_scores (Spark DataFrames) → one pandas row per (video_id, model_version) of either
    (Spark aggregation + full outer join) with the columns in :data:`PE_SECONDS_CHECK_COLUMNS`."""
    from pyspark.sql import functions as F

    # seconds left over from an earlier scoring with a longer window (another scoring_config) are not part of
    # the current score; a video without a pe_scores row keeps all its rows (they are orphans)
    current = scores.select(*_SCORE_KEYS, F.col("scoring_config").alias("_current"))
    seconds = (seconds.join(current, _SCORE_KEYS, "left")
               .where(F.col("_current").isNull() | F.col("scoring_config").eqNullSafe(F.col("_current"))))
    per_video = seconds.groupBy(*_SCORE_KEYS).agg(
        F.count(F.lit(1)).alias("seconds_rows"),
        F.count_distinct("second").alias("distinct_seconds"),
        F.min("second").alias("first_second"),
        (F.max("second") - F.min("second") + 1).alias("seconds_span"),
        F.sum("e_mass").alias("e_mass_sum"),
        F.sum("pe_mass").alias("pe_mass_sum"),
        F.sum("p_mass").alias("p_mass_sum"),
    ).withColumn("in_pe_seconds", F.lit(True))
    scores = scores.select(*_SCORE_KEYS, "n_seconds", "e_score", "p_score", "pe_raw").withColumn(
        "in_pe_scores", F.lit(True))
    joined = per_video.join(scores, _SCORE_KEYS, "full_outer").fillna(False, subset=["in_pe_seconds", "in_pe_scores"])
    return add_mismatch_columns(joined.toPandas(), cfg)


def add_mismatch_columns(frame: pd.DataFrame, cfg: PEConfig) -> pd.DataFrame:
    """Add ``e_score_mismatch``, ``pe_raw_mismatch``, ``p_score_mismatch``: |Σ per-second mass − the
    pe_scores value on the mass scale| / (atol + rtol·|value|); <= 1 is within tolerance, NaN when a side
    is missing. ``pe_raw`` is compared as pe_raw · n_seconds · size² (pixels per frame = clip.size²)."""
    frame = frame.copy()
    pixels = float(cfg.clip.size) ** 2
    expected = {
        "e_score_mismatch": ("e_mass_sum", frame["e_score"].astype(float)),
        "pe_raw_mismatch": ("pe_mass_sum", frame["pe_raw"].astype(float) * frame["n_seconds"].astype(float) * pixels),
        "p_score_mismatch": ("p_mass_sum", frame["p_score"].astype(float)),
    }
    for out, (col, ref) in expected.items():
        diff = (frame[col].astype(float) - ref).abs().to_numpy()
        scale = cfg.quality.sum_atol + cfg.quality.sum_rtol * ref.abs().to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            mismatch = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), np.where(diff > 0, np.inf, 0.0))
        mismatch[np.isnan(diff)] = np.nan
        frame[out] = mismatch
    return frame


def _report(context, suite: _Suite, frame: pd.DataFrame, *, docs_path: str | None,
            run_name: str | None) -> ValidationReport:
    validation = _run(context, suite, frame, "SUMMARY", docs=docs_path is not None, run_name=run_name)
    failed = _failures(suite, validation)
    return ValidationReport(table=suite.table, success=bool(validation.success) and not failed, rows=len(frame),
                            expectations=len(validation.results), failed=tuple(failed), docs_path=docs_path,
                            row_level=suite.row_level)


def validate_frame(frame: Any, name: str, cfg: PEConfig, *, run_name: str | None = None,
                   docs: bool = False) -> ValidationReport:
    """Validate a pandas or Spark DataFrame with table ``name``'s suite, e.g. a job's output before it is
    committed. For ``pe_seconds`` pass :func:`pe_seconds_check_frame`'s result. With ``docs``, results are
    stored and Data Docs rebuilt (see :func:`validate_tables`)."""
    suite = _suite(name, cfg)
    frame = _to_pandas(frame, suite.columns, name)
    root = quality_root(cfg) if docs else None
    return _report(_context(root), suite, frame, docs_path=docs_index(cfg) if root else None, run_name=run_name)


def validate_tables(lake: "Lake", cfg: PEConfig, names: Iterable[str] | None = None, *,
                    run_name: str | None = None, docs: bool = True) -> list[ValidationReport]:
    """Run the suites of ``names`` (default: every suite table that exists) over the whole tables.

    Results are stored and Data Docs rebuilt under :func:`quality_root` (when there is one and ``docs``).
    A named table that does not exist raises :class:`QualityError` (reason ``table_missing``). ``lake`` needs a
    Spark session for pe_seconds (aggregation) and for tables whose files pyarrow cannot read (merged ones).
    """
    if names is None:
        names = [n for n in SUITE_TABLES if lake.exists(n)]
    names = list(dict.fromkeys(names))
    for n in names:
        _suite(n, cfg)
        if not lake.exists(n):
            raise QualityError("table_missing", f"table {n!r} does not exist in {lake.root}")
    root = quality_root(cfg) if docs else None
    context = _context(root)
    return [_report(context, _suite(n, cfg), table_frame(lake, n, cfg),
                    docs_path=docs_index(cfg) if root else None, run_name=run_name) for n in names]


def validate_table(lake: "Lake", name: str, cfg: PEConfig, *, run_name: str | None = None) -> ValidationReport:
    """Validate one whole table with its suite (see :func:`validate_tables`)."""
    return validate_tables(lake, cfg, [name], run_name=run_name)[0]


def gate(reports: Sequence[ValidationReport], *, allow_rejects: bool = False) -> list[ValidationReport]:
    """The reports that fail the job: every failed output table; failed input tables unless
    ``allow_rejects`` (their failing rows are rejected and recorded by the job instead)."""
    return [r for r in reports if not r.success and not (allow_rejects and r.row_level)]


def check_outputs(lake: "Lake", cfg: PEConfig, names: Iterable[str] = OUTPUT_TABLES, *,
                  run_name: str | None = None) -> list[ValidationReport]:
    """Validate the output tables (those that exist among ``names``); raise :class:`ValidationFailed`
    naming every failed expectation if any fails. For the end of a job that wrote them."""
    reports = validate_tables(lake, cfg, [n for n in names if lake.exists(n)], run_name=run_name)
    failing = gate(reports)
    if failing:
        raise ValidationFailed(failing)
    return reports
