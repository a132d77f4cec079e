"""The Delta lake layer against a real local Spark session and real Delta tables (delta-rs) in tmp folders."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType

from jobs.lake import Lake, SchemaMismatch, UnsupportedTable

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
    assert (m["num_target_rows_updated"], m["num_target_rows_inserted"]) == (1, 1)
    version = lake.delta_table("kv").version()
    again = lake.merge("kv", _kv(spark, [("b", 20), ("c", 3)]), keys=["k"])
    assert again["num_target_rows_updated"] == 0 and again["num_target_rows_inserted"] == 0
    assert lake.delta_table("kv").version() == version, "a no-op merge must not add a commit"
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
    assert lake.delta_table("kv").version() == 1
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
    # the same through delta-rs alone, and through a second, independent Delta reader (Spark SQL filter)
    pdf = lake.read_pandas("parts").sort_values("v")
    assert list(pdf["v"]) == [v for _, _, v in AWKWARD]
    assert lake.read("parts").where("k = 'slash/inside'").collect()[0].v == 3


def test_failed_task_leaves_table_at_previous_version(lake, spark, tmp_path):
    lake.ensure("kv", KV)
    lake.write("kv", _kv(spark, [("a", 1)]))
    before = lake.delta_table("kv").version()

    @F.udf("long")
    def explode_on_13(v):
        if v == 13:
            raise ValueError("boom on 13")
        return v

    bad = spark.range(0, 40, numPartitions=4).select(F.col("id").cast("string").alias("k"), explode_on_13("id").alias("v"))
    with pytest.raises(Exception, match="boom on 13"):
        lake.write("kv", bad)
    assert lake.delta_table("kv").version() == before
    assert _sorted(lake.read("kv")) == [("a", 1)]
    leftovers = [n for n in os.listdir(lake.path("kv")) if n.startswith("w-")]
    assert len(leftovers) == 1, f"only the committed write folder may remain, found {leftovers}"


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
    from jobs.lake import Lake
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
    assert lake.delta_table("kv").version() == 6


def test_column_mapping_table_is_refused_with_a_clear_message(tmp_path, spark):
    table = tmp_path / "lake" / "mapped"
    (table / "_delta_log").mkdir(parents=True)
    schema = {"type": "struct", "fields": [
        {"name": "a", "type": "long", "nullable": True,
         "metadata": {"delta.columnMapping.id": 1, "delta.columnMapping.physicalName": "col-5f4a"}}]}
    actions = [
        {"protocol": {"minReaderVersion": 2, "minWriterVersion": 5}},
        {"metaData": {"id": "00000000-0000-0000-0000-000000000001", "format": {"provider": "parquet", "options": {}},
                      "schemaString": json.dumps(schema), "partitionColumns": [],
                      "configuration": {"delta.columnMapping.mode": "name", "delta.columnMapping.maxColumnId": "1"},
                      "createdTime": 1700000000000}},
    ]
    (table / "_delta_log" / "00000000000000000000.json").write_text("\n".join(json.dumps(a) for a in actions))
    lake = Lake(str(tmp_path / "lake"), spark)
    with pytest.raises(UnsupportedTable, match="column mapping"):
        lake.read("mapped")
