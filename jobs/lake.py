"""Delta Lake tables for Spark through delta-rs (DESIGN §4).

The delta-spark JARs cannot be fetched here, so Spark never talks Delta itself:

* **read**: the active files of a snapshot come from the Delta log (delta-rs); Spark reads exactly those
  Parquet files with the table's schema; partition values come, typed, from the log's add actions.
* **write**: Spark writes Parquet into a fresh folder ``w-<uuid>/`` inside the table, then the driver makes
  **one** delta-rs commit that adds those files (append or overwrite). A job that dies before the commit
  leaves the table at its previous version; the orphan folder is removed (or by ``vacuum``).
* **merge** (upsert by key) and maintenance run on the driver through delta-rs.

Every table has a contract (:mod:`jobs.contracts`) and is created on first use.
"""
from __future__ import annotations

import json
import logging
import os
import time
import uuid
from urllib.parse import unquote
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from jobs import contracts

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

_SPARK_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


class LakeError(RuntimeError):
    """Base class for lake errors; the message says what is wrong and what to do."""


class TableNotFound(LakeError):
    pass


class SchemaMismatch(LakeError):
    pass


class UnsupportedTable(LakeError):
    """The table uses a Delta feature this reader cannot read correctly (column mapping, deletion vectors)."""


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
    committed: bool  # False when the write was skipped (same app transaction already committed)
    files: int
    rows: int


class Lake:
    """All tables under one root folder (local path, or a URI both Spark and delta-rs can reach)."""

    def __init__(self, root: str, spark: "SparkSession | None" = None, storage_options: dict | None = None):
        self.root = root.rstrip("/")
        self._spark = spark
        self.storage_options = storage_options or None
        if self.is_local:
            os.makedirs(self.root, exist_ok=True)

    # ------------------------------------------------------------------ basics
    @classmethod
    def from_config(cls, cfg, spark=None) -> "Lake":
        return cls(cfg.lake_path, spark)

    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")

    @property
    def spark(self) -> "SparkSession":
        if self._spark is None:
            from pyspark.sql import SparkSession

            self._spark = SparkSession.getActiveSession()
            if self._spark is None:
                raise LakeError("this operation needs a Spark session: pass spark= to Lake(...)")
        return self._spark

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def exists(self, name: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.path(name), storage_options=self.storage_options)

    def table_names(self) -> list[str]:
        """Names of the Delta tables directly under the root (local lakes), else the contracts that exist."""
        if self.is_local:
            root = self.root.removeprefix("file://")
            if not os.path.isdir(root):
                return []
            names = [n for n in sorted(os.listdir(root)) if os.path.isdir(os.path.join(root, n, "_delta_log"))]
            return [n for n in names if self.exists(n)]
        return [n for n in contracts.CONTRACTS if self.exists(n)]

    def delta_table(self, name: str, version: int | None = None):
        from deltalake import DeltaTable

        if not self.exists(name):
            raise TableNotFound(f"no Delta table '{name}' under {self.root}")
        dt = DeltaTable(self.path(name), version=version, storage_options=self.storage_options)
        _check_readable(name, dt)
        return dt

    def info(self, name: str) -> TableInfo:
        dt = self.delta_table(name)
        adds = _add_actions(dt)
        rows = sum(int(n) for n in adds.column("num_records").to_pylist() if n is not None) if adds.num_rows else 0
        return TableInfo(name, dt.version(), rows, adds.num_rows, tuple(dt.metadata().partition_columns))

    def tables(self) -> list[TableInfo]:
        return [self.info(n) for n in self.table_names()]

    def history(self, name: str, limit: int | None = None) -> list[dict]:
        return self.delta_table(name).history(limit)

    # ------------------------------------------------------------------ create
    def ensure(self, name: str, spark_schema=None, partition_by: Iterable[str] | None = None):
        """Create table ``name`` (empty, from its contract or the given schema) if it does not exist."""
        from deltalake import DeltaTable, Schema

        if self.exists(name):
            return self.delta_table(name)
        if spark_schema is None:
            c = contracts.contract(name)
            spark_schema = contracts.spark_schema(name)
            partition_by = c.partition_by if partition_by is None else partition_by
        schema = Schema.from_json(_delta_schema_json(spark_schema))
        try:
            return DeltaTable.create(
                self.path(name), schema, mode="ignore", partition_by=list(partition_by or []) or None,
                name=name, storage_options=self.storage_options,
                description=contracts.CONTRACTS[name].description if name in contracts.CONTRACTS else None,
            )
        except Exception as e:  # a concurrent creator won: fine as long as the table now exists
            if self.exists(name):
                return self.delta_table(name)
            raise LakeError(f"cannot create table '{name}' at {self.path(name)}: {e}") from e

    # ------------------------------------------------------------------ read
    def read(self, name: str, version: int | None = None) -> "DataFrame":
        """The table (optionally at an older ``version``) as a Spark DataFrame; exactly its active files."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import StringType, StructField, StructType

        dt = self.delta_table(name, version)
        schema = _spark_schema_of(dt)
        part_cols = list(dt.metadata().partition_columns)
        data_schema = StructType([f for f in schema.fields if f.name not in part_cols])
        adds = _add_actions(dt)
        table_uri = dt.table_uri.rstrip("/")
        # The log stores paths percent-encoded; Spark wants the names as they are on disk.
        files = [_join_uri(table_uri, unquote(p)) for p in adds.column("path").to_pylist()]
        if not files:
            return self.spark.createDataFrame([], schema)
        reader = self.spark.read.schema(data_schema)
        df = reader.parquet(*files)
        if not part_cols:
            return df.select(*schema.fieldNames())
        # Partition values come from the log, typed: join them on the file each row came from.
        pv = {c: adds.column(f"partition.{c}").to_pylist() for c in part_cols}
        rows = [(_norm_path(f), *(pv[c][i] for c in part_cols)) for i, f in enumerate(files)]
        map_schema = StructType([StructField("_pe_file", StringType()), *[schema[c] for c in part_cols]])
        files_df = self.spark.createDataFrame(rows, map_schema)
        path_col = F.regexp_replace(
            F.url_decode(F.replace(F.col("_metadata.file_path"), F.lit("+"), F.lit("%2B"))), r"^[a-zA-Z0-9+.-]+:/+", "/"
        )
        joined = df.withColumn("_pe_file", path_col).join(F.broadcast(files_df), "_pe_file", "inner")
        return joined.select(*schema.fieldNames())

    def read_arrow(self, name: str, version: int | None = None, columns: list[str] | None = None) -> pa.Table:
        """A small table as Arrow, read with pyarrow from the snapshot's active files (no Spark needed).

        Files written by delta-rs' merge embed an Arrow schema with view types that pyarrow 14 (pinned for
        petastorm) cannot parse; those tables are read through Spark instead (a session must be available).
        """
        try:
            return self._read_arrow_pyarrow(name, version, columns)
        except pa.ArrowInvalid:
            df = self.read(name, version)
            return _to_pyarrow_table(df.select(*(columns or df.columns)).toArrow())

    def _read_arrow_pyarrow(self, name: str, version: int | None, columns: list[str] | None) -> pa.Table:
        dt = self.delta_table(name, version)
        schema = pa.schema(dt.schema().to_arrow())
        part_cols = list(dt.metadata().partition_columns)
        columns = columns or schema.names
        data_schema = pa.schema([f for f in schema if f.name not in part_cols])
        adds = _add_actions(dt)
        fs, base = _filesystem(dt.table_uri.rstrip("/"))
        pieces = []
        for i, rel in enumerate(adds.column("path").to_pylist()):
            t = pq.read_table(f"{base}/{unquote(rel)}", filesystem=fs, schema=data_schema,
                              columns=[c for c in columns if c not in part_cols])
            for c in part_cols:
                if c in columns:
                    val = adds.column(f"partition.{c}")[i]
                    t = t.append_column(schema.field(c), pa.array([val.as_py()] * t.num_rows, schema.field(c).type))
            pieces.append(t.select(columns))
        if not pieces:
            return schema.empty_table().select(columns)
        return pa.concat_tables(pieces)

    def read_pandas(self, name: str, version: int | None = None, columns: list[str] | None = None):
        return self.read_arrow(name, version, columns).to_pandas()

    # ------------------------------------------------------------------ write
    def write(self, name: str, df: "DataFrame", mode: str = "append", *, app_id: str | None = None,
              app_version: int | None = None, metadata: dict | None = None) -> CommitResult:
        """Append to or overwrite table ``name`` with ``df`` in exactly one Delta commit.

        The table is created from its contract if missing. ``df`` must have the table's columns (any order,
        castable types are cast; missing or extra columns are refused with :class:`SchemaMismatch`).
        With ``app_id``/``app_version`` the commit records an app transaction; a repeated call with a
        version already committed for that app id is a no-op (a retried job does not write twice).
        """
        if mode not in ("append", "overwrite"):
            raise ValueError(f"mode must be 'append' or 'overwrite', not {mode!r}")
        dt = self.ensure(name, None if name in contracts.CONTRACTS else df.schema)
        if app_id is not None and app_version is not None and _txn_version(dt, app_id) >= app_version:
            log.info("%s: app transaction %s v%s already committed; nothing written", name, app_id, app_version)
            return CommitResult(name, dt.version(), False, 0, 0)
        schema = _spark_schema_of(dt)
        df = conform(df, schema, name)
        part_cols = list(dt.metadata().partition_columns)
        folder = f"w-{uuid.uuid4().hex}"
        out = f"{self.path(name)}/{folder}"
        writer = df.write.mode("errorifexists")
        if part_cols:
            writer = writer.partitionBy(*part_cols)
        try:
            writer.parquet(out)
            adds = self._add_actions_for(out, folder, part_cols, schema)
            version = self._commit(name, adds, mode, schema, part_cols, app_id, app_version, metadata)
        except BaseException:
            self._remove_folder(out)
            raise
        rows = sum(json.loads(a.stats)["numRecords"] for a in adds)
        if not adds:
            self._remove_folder(out)
        return CommitResult(name, version, True, len(adds), rows)

    def write_arrow(self, name: str, data: pa.Table, mode: str = "append", **kw) -> CommitResult:
        """Write a small Arrow table/pandas frame through Spark (same single-commit path)."""
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            sch = contracts.spark_schema(name) if name in contracts.CONTRACTS else None
            df = self.spark.createDataFrame(data, schema=sch) if sch is not None else self.spark.createDataFrame(data)
        else:
            df = self.spark.createDataFrame(data.to_pandas())
        return self.write(name, df, mode, **kw)

    def merge(self, name: str, df: "DataFrame", keys: Iterable[str] | None = None, *,
              ignore_changes_in: Iterable[str] | None = None, metadata: dict | None = None) -> dict:
        """Upsert ``df`` into ``name`` by ``keys`` (default: the contract's) in one commit on the driver.

        Rows whose key exists are updated only if a non-key, non-volatile column changed, so re-running a
        merge with the same data writes nothing. Returns delta-rs' merge metrics.
        """
        from deltalake import CommitProperties

        c = contracts.CONTRACTS.get(name)
        keys = list(keys or (c.keys if c else ()))
        if not keys:
            raise ValueError(f"merge into '{name}' needs keys")
        dt = self.ensure(name, None if c else df.schema)
        schema = _spark_schema_of(dt)
        df = conform(df, schema, name)
        source = _to_pyarrow_table(df.toArrow())
        if source.num_rows != source.select(keys).group_by(keys).aggregate([]).num_rows:
            raise LakeError(f"merge into '{name}': the source has duplicate keys {keys}")
        volatile = set(ignore_changes_in if ignore_changes_in is not None else (c.volatile if c else ()))
        compare = [f for f in schema.fieldNames() if f not in keys and f not in volatile]
        on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        changed = " OR ".join(f"(t.`{f}` IS DISTINCT FROM s.`{f}`)" for f in compare) or None
        props = CommitProperties(custom_metadata=_meta(metadata, "merge"))
        for attempt in range(5):
            try:
                m = dt.merge(source, predicate=on, source_alias="s", target_alias="t", commit_properties=props)
                return m.when_matched_update_all(predicate=changed).when_not_matched_insert_all().execute()
            except Exception as e:  # concurrent writer: retry on a fresh snapshot
                if not _is_conflict(e) or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
                dt = self.delta_table(name)
        raise AssertionError("unreachable")

    def delete(self, name: str, predicate: str | None = None) -> dict:
        return self.delta_table(name).delete(predicate)

    def vacuum(self, name: str, retention_hours: int = 168) -> list[str]:
        return self.delta_table(name).vacuum(retention_hours=retention_hours, dry_run=False,
                                              enforce_retention_duration=retention_hours >= 168, full=True)

    def compact(self, name: str) -> dict:
        return self.delta_table(name).optimize.compact()

    # ------------------------------------------------------------------ internals
    def _add_actions_for(self, out: str, folder: str, part_cols: list[str], schema) -> list:
        from deltalake.transaction import AddAction

        fs, base = _filesystem(out)
        infos = fs.get_file_info(_fs_selector(base))
        now_ms = int(time.time() * 1000)
        adds = []
        for info in infos:
            rel = info.path[len(base):].lstrip("/")
            leaf = rel.rsplit("/", 1)[-1]
            if info.type.name != "File" or not leaf.endswith(".parquet") or leaf.startswith(("_", ".")):
                continue
            with fs.open_input_file(info.path) as f:
                md = pq.read_metadata(f)
            pvals = _partition_values(rel, part_cols)
            stats = json.dumps({"numRecords": md.num_rows})
            adds.append(AddAction(f"{folder}/{rel}", info.size, pvals,
                                  int(info.mtime_ns // 1_000_000) if info.mtime_ns else now_ms, True, stats))
        return adds

    def _commit(self, name, adds, mode, schema, part_cols, app_id, app_version, metadata) -> int:
        from deltalake import CommitProperties, Schema, Transaction

        txns = [Transaction(app_id, int(app_version))] if app_id is not None and app_version is not None else None
        props = CommitProperties(custom_metadata=_meta(metadata, mode), app_transactions=txns)
        delta_schema = Schema.from_json(_delta_schema_json(schema))
        for attempt in range(8):
            dt = self.delta_table(name)
            if txns and _txn_version(dt, app_id) >= app_version:
                return dt.version()
            try:
                dt.create_write_transaction(adds, mode=mode, schema=delta_schema,
                                            partition_by=part_cols or None, commit_properties=props)
                return self.delta_table(name).version()
            except Exception as e:
                if not _is_conflict(e) or attempt == 7:
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    def _remove_folder(self, out: str, attempts: int = 10) -> None:
        """Delete an uncommitted write folder. After a failed Spark job, tasks being killed can still create
        files for a moment, so delete until it stays gone. Best effort: it is invisible to readers anyway
        (never in the log), and ``vacuum(full=True)`` removes any orphan left."""
        fs, base = _filesystem(out)
        for _ in range(attempts):
            try:
                fs.delete_dir(base)
            except FileNotFoundError:
                pass
            except OSError as e:
                log.debug("removing %s: %s", out, e)
            time.sleep(0.2)
            if fs.get_file_info(base).type.name == "NotFound":
                return
        log.warning("could not remove the uncommitted folder %s; `vacuum` will", out)


# ---------------------------------------------------------------------- helpers
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
        raise SchemaMismatch(f"cannot write to '{name}': {'; '.join(parts)} (table columns: {list(want)})")
    bad = [f"{c}: {have[c].simpleString()} → {t.simpleString()}" for c, t in want.items()
           if have[c] != t and not _castable(have[c], t)]
    if bad:
        raise SchemaMismatch(f"cannot write to '{name}': incompatible column types: {'; '.join(bad)}")
    return df.select(*[F.col(f"`{c}`") if have[c] == t else F.col(f"`{c}`").cast(t).alias(c) for c, t in want.items()])


_NUMERIC = {"byte", "short", "integer", "long", "float", "double"}


def _castable(src, dst) -> bool:
    s, d = src.typeName(), dst.typeName()
    if s == "void":
        return True
    if s in _NUMERIC and d in _NUMERIC:
        order = ["byte", "short", "integer", "long", "float", "double"]
        return order.index(s) <= order.index(d)  # widening only
    if s == "array" and d == "array":
        return src.elementType == dst.elementType or _castable(src.elementType, dst.elementType)
    return {s, d} <= {"timestamp", "timestamp_ntz"} or (s, d) == ("date", "timestamp")


def _check_readable(name: str, dt) -> None:
    proto = dt.protocol()
    features = set(proto.reader_features or [])
    config = dt.metadata().configuration or {}
    mode = config.get("delta.columnMapping.mode", "none")
    if "columnMapping" in features or mode not in ("none", None):
        raise UnsupportedTable(
            f"table '{name}' uses column mapping (delta.columnMapping.mode={mode}, reader version "
            f"{proto.min_reader_version}); its Parquet column names differ from the table's, so this reader "
            f"cannot read it correctly. Rewrite it without column mapping (e.g. CREATE TABLE ... AS SELECT "
            f"with delta.columnMapping.mode='none')."
        )
    if "deletionVectors" in features:
        adds = _add_actions(dt)
        dv_cols = [c for c in adds.column_names if c.startswith("deletionVector")]
        if any(v is not None for c in dv_cols for v in adds.column(c).to_pylist()):
            raise UnsupportedTable(
                f"table '{name}' has deletion vectors; this reader would return deleted rows. Purge them "
                f"first (REORG TABLE ... APPLY (PURGE) in Spark/Databricks)."
            )
    if proto.min_reader_version > 3:
        raise UnsupportedTable(f"table '{name}' needs Delta reader version {proto.min_reader_version}")


def _add_actions(dt) -> pa.Table:
    return _to_pyarrow_table(dt.get_add_actions(flatten=True))


def _to_pyarrow_table(obj) -> pa.Table:
    if isinstance(obj, pa.Table):
        return obj
    if isinstance(obj, pa.RecordBatch):
        return pa.Table.from_batches([obj])
    if hasattr(obj, "__arrow_c_stream__"):
        return pa.table(obj)
    if hasattr(obj, "__arrow_c_array__"):
        return pa.Table.from_batches([pa.record_batch(obj)])
    raise TypeError(f"cannot convert {type(obj)} to a pyarrow Table")


def _spark_schema_of(dt):
    from pyspark.sql.types import StructType

    return StructType.fromJson(json.loads(dt.schema().to_json()))


def _delta_schema_json(spark_schema) -> str:
    """Delta's schema serialization is Spark's; drop Spark-only field metadata."""
    d = spark_schema.jsonValue()
    for f in d["fields"]:
        f["metadata"] = {}
    return json.dumps(d)


def _txn_version(dt, app_id: str) -> int:
    """The last committed version of app transaction ``app_id`` (-1 when none)."""
    v = dt.transaction_version(app_id)
    return -1 if v is None else int(v)


def _meta(metadata: dict | None, operation: str) -> dict:
    out = {"pe.operation": operation}
    out.update({str(k): str(v) for k, v in (metadata or {}).items()})
    return out


def _is_conflict(e: Exception) -> bool:
    name = type(e).__name__
    return name in ("CommitFailedError",) or "conflict" in str(e).lower() or "version already exists" in str(e).lower()


def _partition_values(rel: str, part_cols: list[str]) -> dict[str, str | None]:
    """``a=1/b=x%2Fy/part-0.parquet`` → {'a': '1', 'b': 'x/y'} (Spark's escaping undone; null folders → None)."""
    if not part_cols:
        return {}
    segs = rel.split("/")[:-1]
    out: dict[str, str | None] = {}
    for seg in segs:
        k, _, v = seg.partition("=")
        k = unquote(k)
        out[k] = None if v == _SPARK_NULL_PARTITION else unquote(v)
    missing = [c for c in part_cols if c not in out]
    if missing:
        raise LakeError(f"file {rel} is missing partition folders for {missing}")
    return {c: out[c] for c in part_cols}


def _join_uri(table_uri: str, rel: str) -> str:
    if "://" in table_uri and not table_uri.startswith("file://"):
        return f"{table_uri}/{rel}"
    return os.path.join(table_uri.removeprefix("file://"), rel)


def _norm_path(p: str) -> str:
    """Scheme-less absolute form used to match Spark's ``_metadata.file_path`` (decoded) to the log's paths."""
    import re

    return re.sub(r"^[a-zA-Z0-9+.-]+:/+", "/", p) if "://" in p else os.path.abspath(p)


def _filesystem(uri: str):
    from pyarrow import fs as pafs

    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    fs, path = pafs.FileSystem.from_uri(uri.replace("s3a://", "s3://"))
    return fs, path


def _fs_selector(base: str):
    from pyarrow import fs as pafs

    return pafs.FileSelector(base, recursive=True)
