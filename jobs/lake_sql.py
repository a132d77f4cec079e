"""The text the lake hands Spark and Delta: SQL literals, a merge's key list, commit metadata, table locations.

* :func:`sql_string` quotes a value as a Spark SQL string literal.
* :func:`key_list_condition` is ``key IN (...)`` of a merge source's keys when they are few (Delta then skips
  the files whose key range cannot hold them).
* :func:`commit_metadata` is the JSON every commit carries (``pe.operation``, ``pe.write_id``, the caller's).
* :func:`normalise_root` and :func:`same_location` make a lake root and a catalog's location comparable.
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: Above this many distinct keys a merge does not list them in its condition (the list would cost more
#: to plan than data skipping saves).
KEY_LIST_LIMIT = 2000


def key_list_condition(source: "DataFrame", key: str) -> str | None:
    """``key IN (...)`` of the source's distinct values when they are few (lets Delta skip files), else None."""
    values = [r[0] for r in source.select(key).distinct().limit(KEY_LIST_LIMIT + 1).collect()]
    if not values or len(values) > KEY_LIST_LIMIT or any(v is None for v in values):
        return None
    literals = ", ".join(sql_string(v) if isinstance(v, str) else repr(v) for v in values)
    return f"`{key}` IN ({literals})"


def sql_string(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def commit_metadata(metadata: dict | None, operation: str, write_id: str) -> str:
    out = {"pe.operation": operation, "pe.write_id": write_id}
    out.update({str(k): str(v) for k, v in (metadata or {}).items()})
    return json.dumps(out)


def normalise_root(root: str) -> str:
    root = str(root).rstrip("/")
    if root.startswith("file://"):
        root = root[len("file://"):]
    return os.path.abspath(root) if "://" not in root else root


def same_location(a: str, b: str) -> bool:
    def norm(p: str) -> str:
        from urllib.parse import unquote

        p = unquote(p.removeprefix("file:"))
        return os.path.normpath("/" + p.lstrip("/")) if "://" not in p else p.rstrip("/")

    return norm(a) == norm(b)
