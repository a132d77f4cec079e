"""Delta Lake tables through delta-spark: every read, write and upsert runs in Spark.

* **read**: ``format("delta")``, optionally ``versionAsOf`` (time travel).
* **write**: ``format("delta")`` append or overwrite, exactly one commit; with an app id and version the
  commit records a Delta app transaction (``txnAppId``/``txnVersion``), so a retried write is a no-op.
* **merge** (upsert by key): ``DeltaTable.merge`` on the executors. When none of the source's keys exist
  yet (a night of new videos) it only inserts, reading just the table's key columns; otherwise only new or
  changed rows reach the merge, so re-running a job with the same data writes nothing (no empty commit).
  When the night's keys are few, the conditions name them, so Delta's data skipping reads only the files
  whose key range can hold them.
* **maintenance**: ``OPTIMIZE`` (compaction, Z-order on the table's cluster columns) and ``VACUUM``.
* **catalog**: every table registered by name in the session catalog (``DESCRIBE HISTORY pe_scores``,
  ``SELECT … VERSION AS OF 3``) — see :meth:`Lake.register_tables`.

Every table has a contract (:mod:`jobs.storage.contracts`): it is created from it on first use, writes are checked
against it (missing, extra or uncastable columns are refused before anything is written) and Delta enforces
its NOT NULL columns. Errors are :class:`LakeError` subclasses with a message that says what to do.

Beside this module: :mod:`jobs.storage.errors` (the errors; Delta's failures translated) and
:mod:`jobs.storage.retries` (a write that lost a race to a concurrent writer, retried). At the end of this module:
a write conformed to the table's schema (:func:`conform`), and the text handed to Spark and Delta (SQL literals,
a merge's key list, commit metadata, table locations).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from jobs.storage import contracts
from jobs.storage.errors import (
    LakeError,
    NotNullViolation,
    SchemaMismatch,
    TableNotFound,
    java_message,
    not_null_checked,
    save,
)
from jobs.storage.retries import with_retries

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: The storage API: the class, its results and its errors (defined in :mod:`jobs.storage.errors`).
__all__ = ["Lake", "TableInfo", "CommitResult", "MergeResult", "LakeError", "TableNotFound", "SchemaMismatch", "NotNullViolation"]

#: Target size of the files OPTIMIZE writes: small enough that a Z-ordered table has many files, each over a
#: narrow key range, which a merge's key list can skip (Delta's default is 1 GiB).
OPTIMIZE_FILE_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True)
class TableInfo:
    name: str
    version: int
    rows: int
    files: int
    partition_by: tuple[str, ...]


@dataclass(frozen=True)
class CommitResult:
    table: str
    version: int  # the table version after the write
    committed: bool  # False when the write was skipped (same app transaction already committed, or no change)
    files: int
    rows: int


@dataclass(frozen=True)
class MergeResult:
    table: str
    version: int  # the table version after the merge
    committed: bool  # False when no row was new or changed (nothing written)
    inserted: int  # rows added
    updated: int  # rows whose non-key columns changed


class Lake:
    """All tables under one root folder (a local path, or any URI Spark's file systems reach)."""

    def __init__(self, root: str, spark: "SparkSession | None" = None):
        self.root = normalise_root(root)
        self._spark = spark
        self._evolved: set[str] = set()
        if self.is_local:
            os.makedirs(self.root, exist_ok=True)

    # ------------------------------------------------------------------ basics
    @classmethod
    def from_config(cls, cfg, spark=None) -> "Lake":
        return cls(cfg.lake_path, spark)

    @property
    def is_local(self) -> bool:
        return "://" not in self.root

    @property
    def spark(self) -> "SparkSession":
        if self._spark is None:
            from pyspark.sql import SparkSession

            self._spark = SparkSession.getActiveSession()
            if self._spark is None:
                raise LakeError("no_spark", "this operation needs a Spark session: pass spark= to Lake(...)")
        return self._spark

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def exists(self, name: str) -> bool:
        if self.is_local:
            return os.path.isdir(os.path.join(self.path(name), "_delta_log")) and any(
                f.endswith(".json") or f.endswith(".checkpoint.parquet")
                for f in os.listdir(os.path.join(self.path(name), "_delta_log")))
        from delta.tables import DeltaTable

        return DeltaTable.isDeltaTable(self.spark, self.path(name))

    def table_names(self) -> list[str]:
        """Names of the Delta tables directly under the root (local lakes), else the contracts that exist."""
        if self.is_local:
            return [n for n in sorted(os.listdir(self.root)) if not n.startswith(("_", ".")) and self.exists(n)]
        return [n for n in contracts.CONTRACTS if self.exists(n)]

    def delta_table(self, name: str):
        """The ``delta.tables.DeltaTable`` of ``name`` (:class:`TableNotFound` when there is none)."""
        from delta.tables import DeltaTable

        if not self.exists(name):
            raise TableNotFound("table_not_found", f"no Delta table '{name}' under {self.root}")
        return DeltaTable.forPath(self.spark, self.path(name))

    def version(self, name: str) -> int:
        """The table's current version. A local table's is the newest commit file in its ``_delta_log`` (Delta
        names each commit ``<version, 20 digits>.json`` and never cleans up the newest), with no Spark job."""
        newest = self._newest_commit(name)
        if newest is not None:
            return newest[0]
        return int(self.delta_table(name).history(1).select("version").first()[0])

    def commit_id(self, name: str) -> str | None:
        """``"<version>:<hash of that commit's file>"``, which tells a commit from another one later written
        with the same number after a rollback; None for tables not on a local disk."""
        newest = self._newest_commit(name)
        if newest is None:
            return None
        version, path = newest
        try:
            with open(path, "rb") as f:
                return f"{version}:{hashlib.sha1(f.read()).hexdigest()[:16]}"
        except OSError:
            return None

    def _newest_commit(self, name: str) -> tuple[int, str] | None:
        if not self.is_local:
            return None
        log = os.path.join(self.path(name), "_delta_log")
        try:
            commits = [int(f[:-5]) for f in os.listdir(log) if len(f) == 25 and f.endswith(".json") and f[:20].isdigit()]
        except OSError:
            return None
        if not commits:
            return None
        newest = max(commits)
        return newest, os.path.join(log, f"{newest:020d}.json")

    def detail(self, name: str) -> dict:
        """``DESCRIBE DETAIL`` of the table as a dict (numFiles, sizeInBytes, partitionColumns, properties...)."""
        return self.delta_table(name).detail().first().asDict(recursive=True)

    def info(self, name: str) -> TableInfo:
        d = self.detail(name)
        rows = self.read(name).count()  # answered from the log's statistics, not by a scan
        return TableInfo(name, self.version(name), rows, int(d["numFiles"]), tuple(d["partitionColumns"]))

    def tables(self) -> list[TableInfo]:
        return [self.info(n) for n in self.table_names()]

    def history(self, name: str, limit: int | None = None) -> list[dict]:
        """Newest first: version, timestamp, operation, operationMetrics, userMetadata... per commit."""
        df = self.delta_table(name).history(limit) if limit else self.delta_table(name).history()
        return [r.asDict(recursive=True) for r in df.collect()]

    # ------------------------------------------------------------------ create
    def ensure(self, name: str, spark_schema=None, partition_by: Iterable[str] | None = None) -> None:
        """Create table ``name`` (empty, from its contract or the given schema) if it does not exist."""
        from delta.tables import DeltaTable

        if self.exists(name):
            self._add_contract_columns(name)
            return
        c = contracts.CONTRACTS.get(name)
        if spark_schema is None:
            spark_schema = contracts.spark_schema(name)
        if partition_by is None:
            partition_by = c.partition_by if c else ()
        builder = DeltaTable.createIfNotExists(self.spark).location(self.path(name)).addColumns(spark_schema)
        if partition_by:
            builder = builder.partitionedBy(*partition_by)
        if c and c.description:
            builder = builder.comment(c.description)
        try:
            builder.execute()
        except Exception as e:  # a concurrent creator won: fine as long as the table now exists
            if not self.exists(name):
                raise LakeError("create_failed", f"cannot create table '{name}' at {self.path(name)}: {java_message(e)}") from e

    def _add_contract_columns(self, name: str) -> None:
        """Columns the contract gained since the table was created are added (NULL in older rows), once per
        table and Lake: contracts only ever add columns, so an older lake keeps working after an upgrade."""
        if name not in contracts.CONTRACTS or name in self._evolved:
            return
        have = set(self.read(name).schema.fieldNames())
        missing = [f for f in contracts.spark_schema(name).fields if f.name not in have]
        if missing:
            cols = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in missing)
            self.spark.sql(f"ALTER TABLE delta.`{self.path(name)}` ADD COLUMNS ({cols})")
            log.info("%s: added contract columns %s", name, [f.name for f in missing])
        self._evolved.add(name)

    # ------------------------------------------------------------------ read
    def read(self, name: str, version: int | None = None) -> "DataFrame":
        """The table (optionally at an older ``version``) as a Spark DataFrame."""
        if not self.exists(name):
            raise TableNotFound("table_not_found", f"no Delta table '{name}' under {self.root}")
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", int(version))
        return reader.load(self.path(name))

    def read_arrow(self, name: str, version: int | None = None, columns: list[str] | None = None) -> "pa.Table":
        """A small table as an Arrow table (collected to the driver: for small tables only)."""
        df = self.read(name, version)
        return df.select(*(columns or df.columns)).toArrow()

    def read_pandas(self, name: str, version: int | None = None, columns: list[str] | None = None) -> "pd.DataFrame":
        """A small table as pandas (collected to the driver: for small tables only). Timestamps come back
        timezone-aware in UTC (the session's time zone; Spark hands pandas naive values)."""
        import pandas as pd

        df = self.read(name, version)
        frame: pd.DataFrame = df.select(*(columns or df.columns)).toPandas()
        for col in frame.columns:
            if pd.api.types.is_datetime64_dtype(frame[col]) and frame[col].dt.tz is None:
                frame[col] = frame[col].dt.tz_localize("UTC")
        return frame

    # ------------------------------------------------------------------ write
    def write(self, name: str, df: "DataFrame", mode: str = "append", *, app_id: str | None = None,
              app_version: int | None = None, metadata: dict | None = None) -> CommitResult:
        """Append to or overwrite table ``name`` with ``df`` in exactly one Delta commit.

        The table is created from its contract if missing. ``df`` must have the table's columns (any order;
        castable types are cast; missing or extra columns are refused with :class:`SchemaMismatch`).
        With ``app_id``/``app_version`` the commit records an app transaction; a repeated call with a
        version already committed for that app id writes nothing (a retried job does not write twice).
        """
        if mode not in ("append", "overwrite"):
            raise ValueError(f"mode must be 'append' or 'overwrite', not {mode!r}")
        self.ensure(name, None if name in contracts.CONTRACTS else df.schema)
        df = conform(df, self.read(name).schema, name)
        write_id = uuid.uuid4().hex
        writer = df.write.format("delta").mode(mode).option("userMetadata", commit_metadata(metadata, mode, write_id))
        if app_id is not None and app_version is not None:
            writer = writer.option("txnAppId", app_id).option("txnVersion", int(app_version))
        with_retries(lambda: save(writer, self.path(name), name), name, lambda: self.last_writer(name))
        return self._result_of(name, write_id)

    def write_arrow(self, name: str, data, mode: str = "append", **kw) -> CommitResult:
        """Write a small Arrow table or pandas frame (same single-commit path). NULLs in NOT NULL columns reach
        Delta's check (:class:`NotNullViolation`), not Spark's row converter (a NullPointerException)."""
        import pandas as pd
        from pyspark.sql.types import StructType

        frame = data if isinstance(data, pd.DataFrame) else data.to_pandas()
        sch = contracts.spark_schema(name) if name in contracts.CONTRACTS else None
        if sch is not None:
            sch = StructType([f.__class__(f.name, f.dataType, True, f.metadata) for f in sch.fields])
        df = self.spark.createDataFrame(frame, schema=sch) if sch is not None else self.spark.createDataFrame(frame)
        return self.write(name, df, mode, **kw)

    def merge(self, name: str, df: "DataFrame", keys: Iterable[str] | None = None, *,
              ignore_changes_in: Iterable[str] | None = None, metadata: dict | None = None) -> MergeResult:
        """Upsert ``df`` into ``name`` by ``keys`` (default: the contract's) in at most one commit.

        Rows whose key exists are updated only if a non-key, non-volatile column changed; when no row is new
        or changed nothing is committed, so re-running a merge with the same data writes nothing. Returns
        a :class:`MergeResult`: rows inserted and updated, the table's version after it, whether it committed.
        """
        c = contracts.CONTRACTS.get(name)
        keys = list(keys or (c.keys if c else ()))
        if not keys:
            raise ValueError(f"merge into '{name}' needs keys")
        self.ensure(name, None if c else df.schema)
        table = self.read(name)  # one snapshot of the log for the schema and the target
        schema = table.schema
        source = conform(df, schema, name)
        dup = source.groupBy(*keys).count().where("count > 1").limit(1).collect()
        if dup:
            raise LakeError("duplicate_keys", f"merge into '{name}': the source has duplicate keys {keys} (e.g. {dup[0][:-1]})")
        volatile = set(ignore_changes_in if ignore_changes_in is not None else (c.volatile if c else ()))
        compare = [f for f in schema.fieldNames() if f not in keys and f not in volatile]
        key_filter = key_list_condition(source, keys[0])
        target = table.where(key_filter) if key_filter else table
        # A night of new keys (the usual case) reads only the table's key columns, and the merge only inserts.
        known = source.select(*keys).join(target.select(*keys), keys, "left_semi").limit(1).collect()
        changes = self._new_or_changed(source, target, keys, compare).cache() if known else source
        try:
            if known and changes.count() == 0:
                return MergeResult(name, self.version(name), committed=False, inserted=0, updated=0)
            on = " AND ".join([f"t.`{k}` <=> s.`{k}`" for k in keys] + ([f"t.{key_filter}"] if key_filter else []))
            write_id = uuid.uuid4().hex
            tries: list[int] = []  # one entry per conflicting attempt

            def run_merge():
                self.spark.conf.set("spark.databricks.delta.commitInfo.userMetadata", commit_metadata(metadata, "merge", write_id))
                try:
                    builder = self.delta_table(name).alias("t").merge(changes.alias("s"), on)
                    if known or tries:  # after a conflict the winner may have written some of these keys
                        builder = builder.whenMatchedUpdateAll()
                    tries.append(1)
                    not_null_checked(builder.whenNotMatchedInsertAll().execute, name)
                finally:
                    self.spark.conf.unset("spark.databricks.delta.commitInfo.userMetadata")

            with_retries(run_merge, name, lambda: self.last_writer(name))
        finally:
            if known:
                changes.unpersist()
        commit = self._commit_of(name, write_id)
        metrics = (commit or {}).get("operationMetrics") or {}
        return MergeResult(name, commit["version"] if commit else self.version(name), committed=commit is not None,
                           inserted=int(metrics.get("numTargetRowsInserted", 0)),
                           updated=int(metrics.get("numTargetRowsUpdated", 0)))

    @staticmethod
    def _new_or_changed(source, target, keys, compare) -> "DataFrame":
        """Source rows whose key is new or whose compared columns differ from the table's (NULL-safe)."""
        same = " AND ".join(f"s.`{col}` <=> t.`{col}`" for col in [*keys, *compare])
        return source.alias("s").join(target.alias("t"), _expr(same), "left_anti")

    # ------------------------------------------------------------------ maintenance
    def optimize(self, name: str, zorder_by: Iterable[str] | None = None) -> dict:
        """Compact small files (``OPTIMIZE``), Z-ordered by ``zorder_by`` (default: the contract's
        ``cluster_by``); returns Delta's metrics (numFilesAdded, numFilesRemoved...)."""
        c = contracts.CONTRACTS.get(name)
        cols = list(zorder_by if zorder_by is not None else (c.cluster_by if c else ()))
        builder = self.delta_table(name).optimize()
        key = "spark.databricks.delta.optimize.maxFileSize"
        self.spark.conf.set(key, str(OPTIMIZE_FILE_BYTES))
        try:
            out = builder.executeZOrderBy(*cols) if cols else builder.executeCompaction()
        finally:
            self.spark.conf.unset(key)
        m = out.first()["metrics"].asDict(recursive=True)
        return {k: m[k] for k in ("numFilesAdded", "numFilesRemoved") if k in m}

    def vacuum(self, name: str, retention_hours: float = 168) -> None:
        """Delete files no version within ``retention_hours`` needs (time travel before that stops working)."""
        conf = "spark.databricks.delta.retentionDurationCheck.enabled"
        if retention_hours < 168:
            self.spark.conf.set(conf, "false")
        try:
            self.delta_table(name).vacuum(retention_hours)
        finally:
            self.spark.conf.unset(conf)

    # ------------------------------------------------------------------ catalog
    def register_tables(self, database: str | None = None) -> list[str]:
        """Register every lake table by name in the session catalog (a table over its location: dropping it
        from the catalog never touches data), so Delta SQL works on names: ``DESCRIBE HISTORY pe_scores``,
        ``SELECT … FROM pe_scores VERSION AS OF 3``. A name already registered for another location (another
        lake in the same session) is re-pointed at this lake."""
        spark = self.spark
        prefix = f"`{database}`." if database else ""
        if database:
            spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        names = []
        for name in self.table_names():
            ident = f"{prefix}`{name}`"
            location = self.path(name)
            if spark.catalog.tableExists(f"{database}.{name}" if database else name):
                try:
                    detail = spark.sql(f"DESCRIBE DETAIL {ident}").first()
                    current = detail["location"] if detail is not None else None
                except Exception:  # registered for a location that is gone
                    current = None
                if current is not None and same_location(current, location):
                    names.append(name)
                    continue
                spark.sql(f"DROP TABLE IF EXISTS {ident}")  # an external table: metadata only
            spark.sql(f"CREATE TABLE IF NOT EXISTS {ident} USING delta LOCATION {sql_string(location)}")
            names.append(name)
        return names

    def last_writer(self, name: str) -> str:
        """Who made the table's newest commit, for messages: 'pe score run R (version V, at T)'."""
        import json

        newest = self.history(name, 1)
        if not newest:
            return ""
        h = newest[0]
        try:
            meta = json.loads(h.get("userMetadata") or "{}")
        except ValueError:
            meta = {}
        who = f"pe {meta['pe.job']} run {meta.get('pe.run_id', '?')}" if meta.get("pe.job") else \
            f"a {str(h.get('operation', 'write')).lower()} not made by pe"
        return f"the last one: {who}, version {h.get('version')} at {h.get('timestamp')}"

    # ------------------------------------------------------------------ internals
    def _commit_of(self, name: str, write_id: str, look_back: int = 20) -> dict | None:
        """The commit made by the write tagged ``write_id`` (None when it committed nothing)."""
        for h in self.history(name, look_back):
            meta = h.get("userMetadata")
            if meta and f'"pe.write_id": "{write_id}"' in meta:
                return h
        return None

    def _result_of(self, name: str, write_id: str) -> CommitResult:
        commit = self._commit_of(name, write_id)
        if commit is None:
            log.info("%s: app transaction already committed; nothing written", name)
            return CommitResult(name, self.version(name), False, 0, 0)
        m = commit.get("operationMetrics") or {}
        return CommitResult(name, int(commit["version"]), True, int(m.get("numFiles", 0)), int(m.get("numOutputRows", 0)))


def _expr(sql: str):
    from pyspark.sql import functions as F

    return F.expr(sql)


# A DataFrame conformed to a table's schema before a write: the table's columns in order, compatible types cast.
# Missing or extra columns and impossible casts raise SchemaMismatch naming the columns, so nothing is written.
# Casts only widen (integer → long → double, date → timestamp, NULL → anything).

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


# The text the lake hands Spark and Delta: SQL literals (sql_string), a merge's key list when the keys are few
# (key_list_condition: Delta then skips the files whose key range cannot hold them), the JSON every commit carries
# (commit_metadata: pe.operation, pe.write_id, the caller's) and comparable lake roots and catalog locations
# (normalise_root, same_location).

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
