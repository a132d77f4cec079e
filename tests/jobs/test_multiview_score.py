"""Multi-view products end to end: turning sample videos, two ingested listing views, `pe score`, matched_view."""
from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow


def test_turning_products_are_found_through_their_side_view(cfg, lake, spark):
    from jobs.ingest.job import run_ingest
    from jobs.scoring.nightly import run_score
    from jobs.synth.sample import run_sample
    from tests.jobs.test_score_job import _register_tiny_champion

    summary = run_sample(cfg, lake, n_videos=3, seed=5, min_seconds=8, max_seconds=9, workers=1, audio=False,
                         scenario="turning")
    assert summary.scenarios == {"turning": 3}
    sampled = lake.read_pandas("product_images").sort_values(["product_id", "view_rank"])
    assert sampled.groupby("product_id")["view"].apply(list).tolist() == [["front", "side"]] * 3
    truth = lake.read_pandas("sample_truth")
    assert set(truth["product_view"].dropna()) == {"front", "side"}

    # the same views as a brand would bring them: a products manifest, ingested into an emptied table
    lake.write_arrow("product_images", sampled.iloc[:0], mode="overwrite")
    manifest = Path(cfg.lake_path) / "incoming" / "products.csv"
    manifest.parent.mkdir(parents=True)
    paths = [os.path.relpath(urllib.parse.urlparse(u).path, manifest.parent) for u in sampled["image_uri"]]
    sampled.assign(image_uri=paths)[["product_id", "image_uri", "view"]].to_csv(manifest, index=False)
    ingested = run_ingest(cfg, "products", str(manifest), spark=spark)
    assert (ingested.good, ingested.rejected) == (6, 0), ingested.reasons

    _register_tiny_champion(cfg)
    scored = run_score(cfg, spark=spark)
    assert (scored.scored, scored.errors) == (3, 0)
    seconds = lake.read_pandas("pe_seconds").merge(truth[["video_id", "second", "product_view", "product_visible"]],
                                                   on=["video_id", "second"])
    assert seconds["matched_view"].isna().eq(~seconds["product_found"]).all()  # a view exactly when found
    found = seconds[seconds["product_found"]]
    assert (found["matched_view"] == "side").sum() >= 2, found[["video_id", "second", "matched_view", "product_view"]]
    # the view recorded is the face the video shows
    assert (found["matched_view"] == found["product_view"]).mean() >= 0.9
    side_seconds = seconds[seconds["product_visible"] & (seconds["product_view"] == "side")]
    assert len(side_seconds) and side_seconds["product_found"].mean() >= 0.5
    # each score records the views it was matched against, so an unchanged view set re-scores nothing
    assert lake.read_pandas("pe_scores")["listing_views_id"].str.fullmatch("[0-9a-f]{16}").all()
    assert run_score(cfg, spark=spark).candidates == 0


def test_without_product_images_the_video_image_is_the_single_view(cfg, lake, spark):
    from jobs.scoring.nightly import _candidates
    from jobs.storage.listings import with_listing_views

    now = pd.Timestamp("2026-11-01", tz="UTC")
    lake.write_arrow("campaign_videos", pd.DataFrame({
        "video_id": ["a", "b"], "video_uri": ["/v/a.mp4", "/v/b.mp4"], "product_id": ["p1", "p2"],
        "product_image_uri": ["/i/p1.jpg", "/i/p2.jpg"], "influencer_id": None, "campaign_id": None,
        "own_product": None, "published_at": now, "ingested_at": now}))
    rows = _candidates(lake, "1", "cfg", rescore=False, limit=None).set_index("video_id")
    assert rows["view_names"].isna().all() and rows["view_uris"].isna().all()
    lake.write_arrow("product_images", pd.DataFrame({
        "product_id": ["p1", "p1"], "view": ["side", "front"], "image_uri": ["/i/p1-side.jpg", "/i/p1.jpg"],
        "view_rank": [2, 1], "ingested_at": now}))
    views = with_listing_views(lake, lake.read("campaign_videos").select("video_id", "video_uri", "product_id",
                                                                 "product_image_uri")).toPandas().set_index("video_id")
    assert list(views.loc["a", "view_names"]) == ["front", "side"]  # by view_rank
    assert list(views.loc["a", "view_uris"]) == ["/i/p1.jpg", "/i/p1-side.jpg"]
    assert views.loc["b", "view_names"] is None


def _write_scores(lake, rows, before_ids=()):
    """pe_scores rows as the job writes them for these candidates; ``before_ids``: rows written before the
    listing ids existed (NULL)."""
    from jobs.scoring.nightly import FILES_ID, VIEWS_ID
    from jobs.storage.contracts import spark_schema

    given = {"video_id": list(rows.index), "model_version": "1", "scoring_config": "cfg",
             **{col: [None if v in before_ids else rows.loc[v, col] for v in rows.index] for col in (VIEWS_ID, FILES_ID)}}
    lake.write_arrow("pe_scores", pd.DataFrame({c: given.get(c) for c in spark_schema("pe_scores").fieldNames()},
                                               index=range(len(rows))), mode="overwrite")


def test_a_changed_view_set_makes_only_that_products_videos_candidates_again(cfg, lake, spark):
    from jobs.scoring.nightly import VIEWS_ID, _candidates

    now = pd.Timestamp("2026-11-01", tz="UTC")
    lake.write_arrow("campaign_videos", pd.DataFrame({
        "video_id": ["a", "b", "c"], "video_uri": ["/v/a.mp4", "/v/b.mp4", "/v/c.mp4"], "product_id": ["p1", "p2", "p3"],
        "product_image_uri": ["/i/p1.jpg", "/i/p2.jpg", "/i/p3.jpg"], "influencer_id": None, "campaign_id": None,
        "own_product": None, "published_at": now, "ingested_at": now}))
    lake.write_arrow("product_images", pd.DataFrame({
        "product_id": ["p1", "p2"], "view": ["front", "front"], "image_uri": ["/i/p1.jpg", "/i/p2.jpg"],
        "view_rank": [1, 1], "ingested_at": now}))

    def scored(rows):  # pe_scores rows as the job writes them for these candidates (c: written before the id)
        _write_scores(lake, rows, before_ids=["c"])

    first = _candidates(lake, "1", "cfg", rescore=False, limit=None).set_index("video_id")
    assert sorted(first.index) == ["a", "b", "c"] and first[VIEWS_ID].str.fullmatch("[0-9a-f]{16}").all()
    assert first[VIEWS_ID].nunique() == 3
    scored(first)
    assert _candidates(lake, "1", "cfg", rescore=False, limit=None).empty  # scored, views unchanged

    lake.write_arrow("product_images", pd.DataFrame({
        "product_id": ["p1"], "view": ["side"], "image_uri": ["/i/p1-side.jpg"], "view_rank": [2], "ingested_at": now}))
    again = _candidates(lake, "1", "cfg", rescore=False, limit=None)
    assert list(again["video_id"]) == ["a"]  # only the product that gained a view
    assert list(again["view_names"].iloc[0]) == ["front", "side"]
    assert again[VIEWS_ID].iloc[0] != first.loc["a", VIEWS_ID]
    # another scoring config or model version: every video, whatever its views
    assert len(_candidates(lake, "1", "other-cfg", rescore=False, limit=None)) == 3


def test_an_image_file_replaced_under_the_same_uri_makes_only_its_videos_candidates_again(cfg, lake, spark, tmp_path):
    from jobs.scoring.nightly import FILES_ID, _candidates

    images = tmp_path / "lake" / "images"
    images.mkdir(parents=True)
    for name in ("p1.jpg", "p1-side.jpg", "p2.jpg"):
        (images / name).write_bytes(b"listing " + name.encode())
    now = pd.Timestamp("2026-11-01", tz="UTC")
    lake.write_arrow("campaign_videos", pd.DataFrame({
        "video_id": ["a", "b", "c", "d"], "video_uri": ["/v/a.mp4", "/v/b.mp4", "/v/c.mp4", "/v/d.mp4"],
        "product_id": ["p1", "p2", "p2", "p3"],
        "product_image_uri": [str(images / "p1.jpg"), str(images / "p2.jpg"), str(images / "p2.jpg"),
                              "https://cdn.example.com/p3.jpg"],
        "influencer_id": None, "campaign_id": None, "own_product": None, "published_at": now, "ingested_at": now}))
    lake.write_arrow("product_images", pd.DataFrame({
        "product_id": ["p1", "p1"], "view": ["front", "side"], "image_uri": [str(images / "p1.jpg"),
                                                                           (images / "p1-side.jpg").as_uri()],
        "view_rank": [1, 2], "ingested_at": now}))
    candidates = lambda: _candidates(lake, "1", "cfg", rescore=False, limit=None,
                                     allowed_schemes=["file", "https"], allowed_roots=[str(tmp_path / "lake")])

    first = candidates().set_index("video_id")
    assert sorted(first.index) == ["a", "b", "c", "d"] and first[FILES_ID].str.fullmatch("[0-9a-f]{16}").all()
    assert first.loc["b", FILES_ID] == first.loc["c", FILES_ID] != first.loc["a", FILES_ID]
    _write_scores(lake, first)
    assert candidates().empty  # nothing changed since

    (images / "p1-side.jpg").write_bytes(b"a new side photo of p1")  # replaced under the same URI (a view's)
    again = candidates().set_index("video_id")
    assert list(again.index) == ["a"] and again.loc["a", FILES_ID] != first.loc["a", FILES_ID]
    _write_scores(lake, pd.concat([first.drop(index="a"), again]))  # a re-scored
    st = os.stat(images / "p2.jpg")
    os.utime(images / "p2.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, written again
    assert sorted(candidates()["video_id"]) == ["b", "c"]
    # rows written before the id existed count as current: an upgrade re-scores nothing
    _write_scores(lake, first, before_ids=["a", "b", "c", "d"])
    assert candidates().empty
