"""A DataFrame conformed to a table's schema before a write: the table's columns in order, compatible types cast.

Missing or extra columns and impossible casts raise :class:`jobs.lake_errors.SchemaMismatch` naming the columns,
so nothing is written. Casts only widen (integer → long → double, date → timestamp, NULL → anything).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.lake_errors import SchemaMismatch

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def conform(df: "DataFrame", schema, name: str) -> "DataFrame":
    """Select ``schema``'s columns from ``df`` in order, casting where the types differ but are compatible.

    Missing or extra columns and impossible casts raise :class:`SchemaMismatch` naming the columns.
    """
    from pyspark.sql import functions as F

    have = {f.name: f.dataType for f in df.schema.fields}
    want = {f.name: f.dataType for f in schema.fields}
    missing = [c for c in want if c not in have]
    extra = [c for c in have if c not in want]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if extra:
            parts.append(f"unexpected columns {extra}")
        raise SchemaMismatch("missing_columns", f"cannot write to '{name}': {'; '.join(parts)} (table columns: {list(want)})")
    bad = [f"{c}: {have[c].simpleString()} → {t.simpleString()}" for c, t in want.items()
           if have[c] != t and not _castable(have[c], t)]
    if bad:
        raise SchemaMismatch("incompatible_types", f"cannot write to '{name}': incompatible column types: {'; '.join(bad)}")
    return df.select(*[F.col(f"`{c}`") if have[c] == t else F.col(f"`{c}`").cast(t).alias(c) for c, t in want.items()])


_NUMERIC = ["byte", "short", "integer", "long", "float", "double"]


def _castable(src, dst) -> bool:
    s, d = src.typeName(), dst.typeName()
    if s == "void":
        return True
    if s in _NUMERIC and d in _NUMERIC:
        return _NUMERIC.index(s) <= _NUMERIC.index(d)  # widening only
    if s == "array" and d == "array":
        return src.elementType == dst.elementType or _castable(src.elementType, dst.elementType)
    return {s, d} <= {"timestamp", "timestamp_ntz"} or (s, d) == ("date", "timestamp")
