"""SQL views for analysts: every lake table under its own name, plus the analyst views."""
from __future__ import annotations

from jobs.lake import Lake

#: Analyst views defined in SQL over the lake tables; each is registered only when its tables exist.
ANALYST_VIEWS: dict[str, tuple[tuple[str, ...], str]] = {}


def register_views(lake: Lake) -> list[str]:
    """Register each lake table as a temp view named after it, then the analyst views; return the names."""
    names = []
    for name in lake.table_names():
        lake.read(name).createOrReplaceTempView(name)
        names.append(name)
    for view, (needs, query) in ANALYST_VIEWS.items():
        if all(n in names for n in needs):
            lake.spark.sql(query).createOrReplaceTempView(view)
            names.append(view)
    return names
