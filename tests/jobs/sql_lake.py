"""A small lake for the SQL tests: kv (two versions), pe_scores, campaign_videos, taobao_sales and the views."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from jobs.storage.contracts import contract

T0 = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)


def table(name: str, rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).reindex(columns=contract(name).columns).astype(object).where(lambda f: f.notna(), None)


def make_sql_lake(spark, root: str):
    """Write the tables into ``root`` (three pe_scores rows, two sales days per product) and return the Lake."""
    from jobs.storage.lake import Lake

    lake = Lake(root, spark)
    lake.write("kv", spark.createDataFrame([("a", 1)], "k string, v long"))
    lake.write("kv", spark.createDataFrame([("b", 2)], "k string, v long"))
    lake.write_arrow("pe_scores", table("pe_scores", [
        {"video_id": v, "model_version": "1", "pe_share": s, "scored_at": T0}
        for v, s in (("a", 0.2), ("b", 0.5), ("c", 0.7))]))
    lake.write_arrow("campaign_videos", table("campaign_videos", [
        {"video_id": v, "product_id": p, "campaign_id": "k1", "influencer_id": "i1"}
        for v, p in (("a", "p1"), ("b", "p2"), ("c", "p3"))]))
    lake.write_arrow("taobao_sales", table("taobao_sales", [
        {"product_id": p, "date": dt.date(2024, 5, d), "daily_sales": 10.0 * d, "price": 9.9}
        for p in ("p1", "p2", "p3") for d in (1, 2)]))
    return lake
