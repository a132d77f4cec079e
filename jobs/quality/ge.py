"""Great Expectations plumbing: import it safely, an ephemeral context, where results and Data Docs go.
Running a suite and reading its failures is :mod:`jobs.quality.suites` (``run_suite``, ``suite_failures``).

Great Expectations runs on pandas frames in an ephemeral context (no GE project folder); validation results
are kept under ``<quality root>/validations`` so the Data Docs index (``<quality root>/data_docs``) lists
every run.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from jobs.config import PEConfig
from jobs.quality.results import QualityError


def expectations():
    """The module of GE's expectation classes (``great_expectations.expectations``)."""
    import_gx()
    import great_expectations.expectations as gxe

    return gxe


def import_gx():
    """Import Great Expectations, turning a silent ``sys.exit`` during import (pyspark's Spark Connect
    dependency check, which a missing optional dependency ends that way) or a broken install into a :class:`QualityError`."""
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


def plain(v: Any) -> Any:
    """A value GE reported, as a plain Python value (numpy scalars unwrapped)."""
    if isinstance(v, (list, tuple)):
        return tuple(plain(x) for x in v)
    if isinstance(v, np.generic):
        return v.item()
    return v
