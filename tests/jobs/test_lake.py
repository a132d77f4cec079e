"""The Delta lake layer against a real local Spark session and real Delta tables (delta-spark) in tmp folders."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType

from jobs.storage import contracts
from jobs.storage.lake import Lake, NotNullViolation, SchemaMismatch

pytestmark = pytest.mark.slow

KV = StructType([StructField("k", StringType(), False), StructField("v", LongType())])


def _kv(spark, rows):
    return spark.createDataFrame([Row(k=k, v=v) for k, v in rows], KV)


def _sorted(df):
    return sorted((r.k, r.v) for r in df.collect())


def test_round_trip_append_and_history(lake, spark):
    lake.ensure("kv", KV)
    r1 = lake.write("kv", _kv(spark, [("a", 1), ("b", 2)]))
    r2 = lake.write("kv", _kv(spark, [("c", 3)]))
    assert (r1.version, r2.version) == (1, 2)
    assert _sorted(lake.read("kv")) == [("a", 1), ("b", 2), ("c", 3)]
    assert lake.info("kv").rows == 3
    # one commit per write: version 0 is the create, then one per write
    assert [h["operation"] for h in lake.history("kv")][:2] == ["WRITE", "WRITE"]


def test_overwrite_then_time_travel(lake, spark):
    lake.ensure("kv", KV)
    lake.write("kv", _kv(spark, [("a", 1), ("b", 2)]))
    lake.write("kv", _kv(spark, [("z", 26)]), mode="overwrite")
    assert _sorted(lake.read("kv")) == [("z", 26)]
    assert _sorted(lake.read("kv", version=1)) == [("a", 1), ("b", 2)]
    assert lake.read("kv", version=0).count() == 0


def test_merge_upserts_and_rerun_is_a_noop(lake, spark):
    lake.ensure("kv", KV)
    lake.write("kv", _kv(spark, [("a", 1), ("b", 2)]))
    m = lake.merge("kv", _kv(spark, [("b", 20), ("c", 3)]), keys=["k"])
    assert (m.updated, m.inserted, m.committed, m.table) == (1, 1, True, "kv")
    version = lake.version("kv")
    again = lake.merge("kv", _kv(spark, [("b", 20), ("c", 3)]), keys=["k"])
    assert (again.updated, again.inserted, again.committed, again.version) == (0, 0, False, m.version)
    assert lake.version("kv") == version, "a no-op merge must not add a commit"
    assert _sorted(lake.read("kv")) == [("a", 1), ("b", 20), ("c", 3)]


def test_schema_mismatch_is_refused_and_nothing_written(lake, spark):
    lake.ensure("kv", KV)
    lake.write("kv", _kv(spark, [("a", 1)]))
    extra = spark.createDataFrame([("b", 2, "x")], "k string, v long, note string")
    with pytest.raises(SchemaMismatch, match="unexpected columns \\['note'\\]"):
        lake.write("kv", extra)
    missing = spark.createDataFrame([("b",)], "k string")
    with pytest.raises(SchemaMismatch, match="missing columns \\['v'\\]"):
        lake.write("kv", missing)
    wrong = spark.createDataFrame([("b", "two")], "k string, v string")
    with pytest.raises(SchemaMismatch, match="v: string → bigint"):
        lake.write("kv", wrong)
    assert lake.version("kv") == 1
    assert _sorted(lake.read("kv")) == [("a", 1)]


def test_contract_tables_are_created_on_first_use_and_cast(lake, spark):
    df = spark.createDataFrame(
        [("v1", "m1", 2, 0.5, True)], "video_id string, model_version string, second int, e_mass float, product_found boolean"
    )
    full = df.select(
        "video_id", "model_version", "second", "e_mass", F.lit(None).cast("double").alias("pe_mass"),
        F.lit(None).cast("double").alias("p_mass"), "product_found", F.lit(7).alias("inliers"),
        F.array(F.lit(1.0)).alias("quad_224"), F.array(F.lit(0.5).cast("float")).alias("e_grid"),
        F.lit("run").alias("run_id"), F.lit("vanilla/sift/60s/0123abcd").alias("scoring_config"),
        F.lit("front").alias("matched_view"),
    )
    lake.write("pe_seconds", full)
    out = lake.read("pe_seconds").collect()[0]
    assert out.e_mass == 0.5 and out.inliers == 7 and dict(lake.read("pe_seconds").dtypes)["e_mass"] == "double"


AWKWARD = [
    ("plain", dt.date(2024, 1, 1), 1),
    ("with space", dt.date(2024, 1, 2), 2),
    ("slash/inside", dt.date(2024, 1, 3), 3),
    ("per%cent", None, 4),
    (None, dt.date(2024, 1, 5), 5),
    ("ünïcödé 東京", dt.date(2024, 1, 6), 6),
    ("a+b=c?*", dt.date(2024, 1, 7), 7),
    ("", dt.date(2024, 1, 8), 8),
]


def test_partitioned_table_with_awkward_values_reads_back_exactly(lake, spark):
    schema = StructType([StructField("k", StringType()), StructField("d", DateType()), StructField("v", LongType())])
    lake.ensure("parts", schema, partition_by=["k", "d"])
    lake.write("parts", spark.createDataFrame(AWKWARD, schema))
    got = sorted(((r.k, r.d, r.v) for r in lake.read("parts").collect()), key=lambda t: t[2])
    # Spark writes the empty string as a null partition (Hive convention); everything else is exact.
    want = [(None if k == "" else k, d, v) for k, d, v in AWKWARD]
    assert got == want
    # the same through pandas, and through Spark SQL with a partition filter
    pdf = lake.read_pandas("parts").sort_values("v")
    assert list(pdf["v"]) == [v for _, _, v in AWKWARD]
    assert lake.read("parts").where("k = 'slash/inside'").collect()[0].v == 3


def test_failed_task_leaves_table_at_previous_version(lake, spark, tmp_path):
    lake.ensure("kv", KV)
    lake.write("kv", _kv(spark, [("a", 1)]))
    before = lake.version("kv")

    @F.udf("long")
    def explode_on_13(v):
        if v == 13:
            raise ValueError("boom on 13")
        return v

    bad = spark.range(0, 40, numPartitions=4).select(F.col("id").cast("string").alias("k"), explode_on_13("id").alias("v"))
    with pytest.raises(Exception, match="boom on 13"):
        lake.write("kv", bad)
    assert lake.version("kv") == before
    assert _sorted(lake.read("kv")) == [("a", 1)]
    # files the failed job left behind are in no version: VACUUM removes them, the data stays
    lake.vacuum("kv", retention_hours=0)
    data_files = [n for n in os.listdir(lake.path("kv")) if n.endswith(".parquet")]
    assert len(data_files) == 1, data_files
    assert _sorted(lake.read("kv")) == [("a", 1)]


def test_retried_job_with_same_app_transaction_is_a_noop(lake, spark):
    lake.ensure("kv", KV)
    first = lake.write("kv", _kv(spark, [("a", 1)]), app_id="nightly-score", app_version=20240101)
    second = lake.write("kv", _kv(spark, [("a", 1)]), app_id="nightly-score", app_version=20240101)
    assert first.committed and not second.committed
    assert lake.info("kv").rows == 1


_APPENDER = textwrap.dedent(
    """
    import sys
    from jobs.config import load_config
    from jobs.spark import get_spark
    from jobs.storage.lake import Lake
    root, tag = sys.argv[1], sys.argv[2]
    cfg = load_config(lake=root, overrides={"spark": {"master": "local[1]", "show_progress": False}})
    spark = get_spark(cfg)
    lake = Lake.from_config(cfg, spark)
    df = spark.createDataFrame([(f"{tag}-{i}", i) for i in range(100)], "k string, v long")
    for _ in range(3):
        lake.write("kv", df)
    """
)


def test_two_processes_appending_at_once_both_land(lake, spark, tmp_path):
    lake.ensure("kv", KV)
    script = tmp_path / "append.py"
    script.write_text(_APPENDER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, str(script), lake.root, tag], env=env, stderr=subprocess.PIPE)
             for tag in ("p1", "p2")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    assert lake.info("kv").rows == 600
    assert lake.read("kv").count() == 600
    assert lake.version("kv") == 6


def test_column_mapping_table_written_by_spark_reads_by_logical_names(tmp_path, spark):
    """delta-spark reads table features the old delta-rs reader refused (here: column mapping + a rename)."""
    lake = Lake(str(tmp_path / "lake"), spark)
    path = lake.path("mapped")
    spark.sql(f"CREATE TABLE delta.`{path}` (a BIGINT, b STRING) USING delta "
              "TBLPROPERTIES ('delta.columnMapping.mode' = 'name')")
    spark.sql(f"INSERT INTO delta.`{path}` VALUES (1, 'x'), (2, 'y')")
    spark.sql(f"ALTER TABLE delta.`{path}` RENAME COLUMN b TO label")
    assert sorted((r.a, r.label) for r in lake.read("mapped").collect()) == [(1, "x"), (2, "y")]


LEGACY = os.path.join(os.path.dirname(__file__), "..", "data", "legacy_lake_deltars")


def test_tables_written_by_the_old_delta_rs_layer_stay_readable(tmp_path, spark):
    """tests/data/legacy_lake_deltars was written by main@c9991d1 (Spark Parquet in w-<uuid>/ folders + one
    delta-rs commit each, a delta-rs merge, awkward partition values); delta-spark reads and extends it."""
    import shutil

    shutil.copytree(LEGACY, tmp_path / "lake")
    lake = Lake(str(tmp_path / "lake"), spark)
    scores = {r.video_id: r.pe_share for r in lake.read("pe_scores").collect()}
    assert scores == pytest.approx({"v0": 0.99, "v1": 0.1, "v2": 0.2, "v9": 0.1})
    parted = sorted((r.k, r.part, r.v) for r in lake.read("parted").collect())
    assert parted == [("a", "x y", 1), ("b", "a/b%c", 2), ("c", None, 3), ("d", "é=?", 4)]
    assert lake.read("pe_scores", version=1).count() == 3
    # columns the contract gained since (window_seconds, scoring_config...) are added on the first write
    row = lake.read("pe_scores").where("video_id = 'v9'").withColumn("pe_share", F.lit(0.5))
    lake.ensure("pe_scores")
    assert set(contracts.spark_schema("pe_scores").fieldNames()) <= set(lake.read("pe_scores").columns)
    for c in set(lake.read("pe_scores").columns) - set(row.columns):
        row = row.withColumn(c, F.lit(None))
    lake.merge("pe_scores", row)
    assert lake.read("pe_scores").where("video_id = 'v9'").first().pe_share == 0.5
    assert lake.read("pe_scores").count() == 4


def test_not_null_columns_are_enforced_on_every_write(lake, spark):
    lake.ensure("kv", KV)
    with pytest.raises(NotNullViolation, match="NOT NULL constraint violated for column: k"):
        lake.write("kv", spark.createDataFrame([(None, 1)], "k string, v long"))
    with pytest.raises(NotNullViolation, match="NOT NULL"):
        lake.merge("kv", spark.createDataFrame([(None, 1)], "k string, v long"), keys=["k"])
    assert lake.version("kv") == 0 and lake.read("kv").count() == 0
    # pandas rows for a contract table: Delta's check, not Spark's converter (a NullPointerException)
    with pytest.raises(NotNullViolation, match="video_id"):
        row = pd.DataFrame({"video_id": [None], "video_uri": ["/v.mp4"]}).reindex(
            columns=contracts.spark_schema("campaign_videos").fieldNames()).astype(object)
        lake.write_arrow("campaign_videos", row.where(row.notna(), None))
    assert not lake.exists("campaign_videos") or lake.read("campaign_videos").count() == 0


def test_tables_are_registered_by_name_for_delta_sql(lake, spark, tmp_path):
    lake.ensure("kv", KV)
    lake.write("kv", _kv(spark, [("a", 1)]))
    lake.write("kv", _kv(spark, [("b", 2)]))
    assert lake.register_tables() == ["kv"]
    assert spark.sql("SELECT count(*) AS n FROM kv VERSION AS OF 1").first().n == 1
    assert [r.operation for r in spark.sql("DESCRIBE HISTORY kv").collect()] == ["WRITE", "WRITE", "CREATE TABLE"]
    # another lake in the same session: the name now points there, the first lake's data is untouched
    other = Lake(str(tmp_path / "other"), spark)
    other.ensure("kv", KV)
    assert other.register_tables() == ["kv"]
    assert spark.sql("SELECT count(*) AS n FROM kv").first().n == 0
    assert lake.read("kv").count() == 2


def test_optimize_compacts_and_keeps_every_row(lake, spark):
    lake.ensure("kv", KV)
    for i in range(4):
        lake.write("kv", _kv(spark, [(f"k{i}", i)]))
    m = lake.optimize("kv", zorder_by=["k"])
    assert m["numFilesRemoved"] >= 4 and m["numFilesAdded"] == 1
    assert lake.info("kv").files == 1 and lake.read("kv").count() == 4


def test_pe_maintain_compacts_zorders_and_vacuums(cfg, lake, spark):
    from jobs.storage.maintain import run_maintain

    rows = [("v1", "1", s, 0.1) for s in range(3)]
    df = spark.createDataFrame(rows, "video_id string, model_version string, second int, e_mass double")
    contract = contracts.spark_schema("pe_seconds")
    full = df.select("*", *[F.lit(None).cast(f.dataType).alias(f.name) for f in contract.fields
                            if f.name not in df.columns])
    lake.write("pe_seconds", full)
    lake.write("pe_seconds", full.withColumn("video_id", F.lit("v2")))
    lake.write("pe_seconds", full.withColumn("video_id", F.lit("v3")), mode="overwrite")  # v1, v2 files replaced
    before = {os.path.basename(p) for p in os.listdir(lake.path("pe_seconds")) if p.endswith(".parquet")}
    [m] = run_maintain(cfg, ["pe_seconds"], spark=spark, retention_hours=0)
    assert m.zorder_by == ("video_id",) and m.files_after == 1 and m.version_after >= m.version_before
    after = {os.path.basename(p) for p in os.listdir(lake.path("pe_seconds")) if p.endswith(".parquet")}
    assert len(after) == 1 and len(before) >= 3, (before, after)  # only the live file is left on disk
    assert sorted(r.video_id for r in lake.read("pe_seconds").collect()) == ["v3"] * 3
    from jobs.storage.lake import TableNotFound

    with pytest.raises(TableNotFound, match="no Delta table nope"):
        run_maintain(cfg, ["nope"], spark=spark)


@pytest.mark.parametrize("folder", ["with space", "ünïcödé 東京", "hash#and?query"])
def test_lake_paths_with_awkward_characters_work(tmp_path, spark, folder):
    lake = Lake(str(tmp_path / folder / "lake"), spark)
    lake.write("kv", _kv(spark, [("a", 1)]))
    lake.merge("kv", _kv(spark, [("a", 2), ("b", 3)]), keys=["k"])
    assert _sorted(lake.read("kv")) == [("a", 2), ("b", 3)]
    assert _sorted(lake.read("kv", version=1)) == [("a", 1)]
    assert lake.register_tables() == ["kv"]
    assert spark.sql("SELECT count(*) AS n FROM kv").first().n == 2
    assert lake.info("kv").rows == 2


def _merge_at_once(lake, spark, n_threads: int = 2, rounds: int = 3):
    """Each thread merges its own keys into 'kv' ``rounds`` times, all threads starting together; returns the
    exceptions raised (thread, error)."""
    import threading

    lake.ensure("kv", KV)
    start = threading.Barrier(n_threads)
    errors: list[tuple[int, BaseException]] = []

    def work(t: int) -> None:
        start.wait()
        for r in range(rounds):
            try:
                lake.merge("kv", _kv(spark, [(f"t{t}-r{r}-{i}", i) for i in range(50)]), keys=["k"],
                           metadata={"pe.job": "score", "pe.run_id": f"run-{t}"})
            except BaseException as e:  # collected for the assertions
                errors.append((t, e))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
    return errors


def test_concurrent_merges_into_one_table_retry_and_all_land(lake, spark):
    """Two writers merging at once (two `pe score` runs): Delta's ConcurrentAppendException is retried on a fresh
    snapshot, not an internal error; every row of both lands exactly once."""
    errors = _merge_at_once(lake, spark)
    assert not errors, [f"{type(e).__name__}: {str(e)[:300]}" for _, e in errors]
    rows = lake.read_pandas("kv")
    assert len(rows) == 2 * 3 * 50 and rows["k"].is_unique


def test_a_writer_that_keeps_losing_gives_up_with_one_line_naming_the_other_run(lake, spark, monkeypatch):
    from jobs.storage import retries
    from jobs.storage.lake import LakeError

    monkeypatch.setattr(retries, "CONFLICT_RETRIES", 1)  # no retry: the first conflict is the last
    errors = []
    for _ in range(5):  # each round starts both writers together; a conflict needs their commits to overlap
        errors = _merge_at_once(lake, spark, rounds=2)
        if errors:
            break
    assert errors, "no write conflict in 5 rounds of concurrent merges"
    for t, e in errors:
        assert isinstance(e, LakeError) and e.reason == "write_conflict", f"{type(e).__name__}: {str(e)[:500]}"
        assert "\n" not in e.message and "at org." not in e.message and len(e.message) < 600, e.message
        assert "another writer (the last one: pe score run run-" in e.message, e.message
        assert "committed first 1 times" in e.message
