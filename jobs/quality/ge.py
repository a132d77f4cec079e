"""Great Expectations plumbing: import it safely, an ephemeral context, run a suite, read its failures.

Great Expectations runs on pandas frames in an ephemeral context (no GE project folder); validation results
are kept under ``<quality root>/validations`` so the Data Docs index (``<quality root>/data_docs``) lists
every run.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jobs.config import PEConfig
from jobs.quality.report import FailedExpectation, QualityError

if TYPE_CHECKING:
    from jobs.quality.suites import Suite


def expectations():
    """The module of GE's expectation classes (``great_expectations.expectations``)."""
    import_gx()
    import great_expectations.expectations as gxe

    return gxe


def import_gx():
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
    """The Data Docs index page (HTML), when there is a quality root."""
    root = quality_root(cfg)
    return None if root is None else os.path.join(root, "data_docs", "index.html")


def context(root: str | None):
    """An ephemeral GE context; with ``root``, results are stored in ``root/validations`` and Data Docs
    are built in ``root/data_docs``."""
    gx = import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

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


def run(ctx, suite: Suite, frame: pd.DataFrame, result_format: str, docs: bool, run_name: str | None):
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
    actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["lake"])] if docs else []
    checkpoint = ctx.checkpoints.add(gx.Checkpoint(
        name=f"{suite.table}_checkpoint", validation_definitions=[definition], actions=actions,
        result_format={"result_format": result_format}))
    result = checkpoint.run(batch_parameters={"dataframe": frame},
                            run_id=RunIdentifier(run_name=run_name) if run_name else None)
    (validation,) = result.run_results.values()
    return validation


def failures(suite: Suite, validation) -> list[FailedExpectation]:
    """The failed expectations of a validation result, with the suite's words for each."""
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
            examples=tuple(plain(v) for v in (res.get("partial_unexpected_list") or [])[:5]), error=error))
    return out


def plain(v: Any) -> Any:
    """A value GE reported, as a plain Python value (numpy scalars unwrapped)."""
    if isinstance(v, (list, tuple)):
        return tuple(plain(x) for x in v)
    if isinstance(v, np.generic):
        return v.item()
    return v
