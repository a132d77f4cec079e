"""`pe ingest`: manifests and folders of real clips into the lake, bad rows into ingest_rejects, re-ingest a no-op,
then `pe score` and `pe report --campaign` on what was ingested."""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import pytest

from jobs.ingest.checks import resolve_location
from jobs.ingest.job import inbox_manifests


# ---------------------------------------------------------------------- fast
def test_relative_paths_resolve_against_the_manifest_folder_and_io_rules_apply(tmp_path):
    clip = tmp_path / "clips" / "a.mp4"
    clip.parent.mkdir()
    clip.write_bytes(b"x")
    roots = (str(tmp_path),)
    assert resolve_location("clips/../clips/a.mp4", str(tmp_path), ("file",), roots) == (str(clip), None, None)
    assert resolve_location(str(clip), "/elsewhere", ("file",), roots)[1:] == (None, None)
    assert resolve_location("s3://bucket/a.mp4", str(tmp_path), ("file",), roots)[1] == "scheme_not_allowed"
    assert resolve_location("/etc/hostname", str(tmp_path), ("file",), roots)[1] == "outside_allowed_roots"
    assert resolve_location("clips/none.mp4", str(tmp_path), ("file",), roots)[1] == "not_found"
    assert resolve_location("../escape.mp4", str(tmp_path / "clips"), ("file",), (str(tmp_path / "clips"),))[1] == \
        "outside_allowed_roots"
    assert resolve_location("x/a.mp4", "s3a://b/m", ("s3a",), ("s3a://b",)) == ("s3a://b/m/x/a.mp4", None, None)
    assert resolve_location(None, str(tmp_path), ("file",), roots) == (None, None, None)


def test_inbox_lists_manifests_products_first(tmp_path):
    for name in ("sales.csv", "videos.jsonl", "Products.CSV", "notes.txt", "labels.parquet"):
        (tmp_path / name).write_text("x")
    assert [k for k, _ in inbox_manifests(str(tmp_path))] == ["products", "videos", "labels", "sales"]
    assert inbox_manifests(str(tmp_path / "missing")) == []


def test_cli_empty_inbox_is_a_noop_and_argument_mistakes_are_one_line(tmp_path):
    from typer.testing import CliRunner

    from jobs.cli import app

    lake = str(tmp_path / "lake")
    out = CliRunner().invoke(app, ["--lake", lake, "ingest", "inbox"])
    assert out.exit_code == 0 and f"nothing to ingest in {lake}/inbox" in out.output
    for args in (["videos"], ["videos", "m.csv", "--folder", str(tmp_path)], ["sales", "s.csv", "--format", "wide"]):
        out = CliRunner().invoke(app, ["--lake", lake, "ingest", *args])
        assert out.exit_code == 2 and out.output.startswith("error: ") and out.output.count("\n") == 1, out.output


# ---------------------------------------------------------------------- Spark (slow)
VIDEOS_CSV = """\
Video_ID,video_uri,PRODUCT_ID,influencer_id,campaign_id,own_product,published_at
v0,clips/v0.mp4,p-coffee,inf-1,c-own,false,2026-11-01T10:00:00Z
v1,clips/v1.mp4,p-coffee,inf-2,c-own,yes,2026-11-02
v2,{abs_v2},p-coffee,inf-2,c-own,,
v3,,p-coffee,inf-1,c-own,false,2026-11-01
v4,clips/v0.mp4,p-unknown,inf-1,c-own,false,2026-11-01
v5,clips/v1.mp4,p-coffee,inf-1,c-own,false,last tuesday
v6,s3://bucket/v6.mp4,p-coffee,inf-1,c-own,false,2026-11-01
v7,/etc/hostname,p-coffee,inf-1,c-own,false,2026-11-01
v0,clips/v2.mp4,p-coffee,inf-9,c-own,false,2026-11-03
"""
LABELS_CSV = """\
video_id,views,likes,comments,shares,collected_at
v0,1000,100,10,5,2026-11-20
v1,-5,100,10,5,2026-11-20
v2,800,80,8,4.0,2026-11-20
v9,10,1,1,1,2026-11-20
"""


@pytest.fixture
def own_campaign(cfg):
    """Three real H.264 clips (two show the product) and two listing photos of the product, under the lake root
    (the default allowed root), with a videos manifest of good and bad rows."""
    from skimage import data

    from tests.jobs.test_score_job import _write_clip

    root = Path(cfg.lake_path) / "incoming"
    (root / "clips").mkdir(parents=True)
    (root / "photos" / "p-coffee").mkdir(parents=True)
    coffee = data.coffee()
    cv2.imwrite(str(root / "photos" / "p-coffee" / "1-front.png"), cv2.cvtColor(coffee, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "photos" / "p-coffee" / "2-side.png"), cv2.cvtColor(coffee[:, ::-1], cv2.COLOR_RGB2BGR))
    for i, (scene, product) in enumerate([(data.astronaut(), coffee), (data.chelsea(), None), (data.rocket(), coffee)]):
        _write_clip(root / "clips" / f"v{i}.mp4", scene, product)
    (root / "videos.csv").write_text(VIDEOS_CSV.format(abs_v2=root / "clips" / "v2.mp4"))
    (root / "labels.csv").write_text(LABELS_CSV)
    return root



@pytest.mark.slow
def test_ingest_folder_of_clips_rejects_bad_rows_reingest_is_a_noop_then_score_and_report(cfg, lake, spark,
                                                                                       own_campaign, tmp_path):
    from typer.testing import CliRunner

    from jobs.cli import app
    from jobs.ingest.job import run_ingest
    from jobs.report.write import write_campaign_report
    from jobs.scoring.nightly import run_score
    from tests.jobs.test_score_job import _register_tiny_champion

    root = own_campaign
    products = run_ingest(cfg, "products", folder=str(root / "photos"), spark=spark)
    assert (products.rows, products.good, products.rejected, products.inserted) == (2, 2, 0, 2)
    views = lake.read_pandas("product_images").sort_values("view_rank")
    assert views["view"].tolist() == ["1-front", "2-side"] and views["view_rank"].tolist() == [1, 2]

    dry = run_ingest(cfg, "videos", str(root / "videos.csv"), dry_run=True, spark=spark)
    assert (dry.rows, dry.good, dry.rejected) == (9, 3, 6) and not lake.exists("campaign_videos")

    videos = run_ingest(cfg, "videos", str(root / "videos.csv"), spark=spark)
    assert (videos.rows, videos.good, videos.rejected, videos.inserted) == (9, 3, 6, 3)
    assert videos.reasons == {"missing_value": 1, "unknown_product": 1, "bad_timestamp": 1, "scheme_not_allowed": 1,
                              "outside_allowed_roots": 1, "duplicate_key": 1}
    rows = lake.read_pandas("campaign_videos").set_index("video_id").sort_index()
    assert list(rows.index) == ["v0", "v1", "v2"]
    assert rows.loc["v0", "video_uri"] == str(root / "clips" / "v0.mp4")  # relative → the manifest's folder
    assert rows.loc["v0", "influencer_id"] == "inf-1"  # the first of the duplicate rows is kept
    assert (rows["product_image_uri"] == str(root / "photos" / "p-coffee" / "1-front.png")).all()  # main view
    assert rows["own_product"].tolist() == [False, True, None]
    assert str(rows.loc["v1", "published_at"]) == "2026-11-02 00:00:00+00:00"  # read back timezone-aware, in UTC

    labels = run_ingest(cfg, "labels", str(root / "labels.csv"), spark=spark)
    assert (labels.good, labels.reasons) == (2, {"negative_value": 1, "unknown_video": 1})

    rejects = lake.read_pandas("ingest_rejects")
    by_line = {(Path(r.source_file).name, r.line): (r.column, r.reason) for r in rejects.itertuples()}
    assert by_line == {
        ("videos.csv", 5): ("video_uri", "missing_value"), ("videos.csv", 6): ("product_id", "unknown_product"),
        ("videos.csv", 7): ("published_at", "bad_timestamp"), ("videos.csv", 8): ("video_uri", "scheme_not_allowed"),
        ("videos.csv", 9): ("video_uri", "outside_allowed_roots"), ("videos.csv", 10): ("video_id", "duplicate_key"),
        ("labels.csv", 3): ("views", "negative_value"), ("labels.csv", 5): ("video_id", "unknown_video"),
    }
    assert rejects["message"].str.len().gt(10).all() and rejects["ingest_run"].notna().all()
    dup = rejects[rejects["reason"] == "duplicate_key"].iloc[0]
    assert dup["message"].endswith("first at line 2") and dup["value"] == "v0"

    tables = ("product_images", "campaign_videos", "engagement_labels", "ingest_rejects")
    before = {t: lake.version(t) for t in tables}
    run_ingest(cfg, "products", folder=str(root / "photos"), spark=spark)
    again = run_ingest(cfg, "videos", str(root / "videos.csv"), spark=spark)
    run_ingest(cfg, "labels", str(root / "labels.csv"), spark=spark)
    assert (again.inserted, again.updated) == (0, 0)
    assert {t: lake.version(t) for t in tables} == before, "re-ingesting the same files must write no version"

    bad = root / "bad.csv"
    bad.write_text("video_id,video_uri,prodid\nv1,clips/v1.mp4,p-coffee\n")
    out = CliRunner().invoke(app, ["--lake", cfg.lake_path, "ingest", "videos", str(bad)])
    assert out.exit_code == 2
    assert out.output.strip().count("\n") == 0, out.output
    assert "missing columns ['product_id']" in out.output and "unknown columns ['prodid']" in out.output

    _register_tiny_champion(cfg)
    scored = run_score(cfg, spark=spark, validate_outputs=False)
    assert (scored.candidates, scored.scored, scored.errors) == (3, 3, 0)
    found = lake.read_pandas("pe_scores").set_index("video_id")["product_found_seconds"]
    assert found["v0"] >= 1 and found["v1"] == 0
    page = Path(write_campaign_report(cfg, lake, "c-own", str(tmp_path / "report")))
    html = page.read_text()
    ranked = re.findall(r"<tr><td>(\d+)</td><td>(v\d)</td>", html)
    assert sorted(v for _, v in ranked) == ["v0", "v1", "v2"] and [r for r, _ in ranked] == ["1", "2", "3"]
    assert html.count('class="thumb"') == 3  # a frame of each ingested clip decoded for its thumbnail


@pytest.mark.slow
def test_videos_folder_with_sidecar_and_sales_in_the_papers_panel_layout(cfg, lake, spark, own_campaign):
    import pandas as pd

    from jobs.ingest.job import IngestError, run_ingest

    root = own_campaign
    run_ingest(cfg, "products", folder=str(root / "photos"), spark=spark)
    (root / "clips" / "videos.csv").write_text("video_id,influencer_id\nv1,inf-7\n")
    got = run_ingest(cfg, "videos", folder=str(root / "clips"), defaults={"product_id": "p-coffee",
                                                                           "campaign_id": "c-dir"}, spark=spark)
    assert (got.rows, got.good, got.rejected) == (3, 3, 0)
    rows = lake.read_pandas("campaign_videos").set_index("video_id").sort_index()
    assert rows["campaign_id"].eq("c-dir").all() and rows.loc["v1", "influencer_id"] == "inf-7"
    assert rows.loc["v2", "video_uri"] == str(root / "clips" / "v2.mp4")

    panel = pd.DataFrame({"taobao_id": ["10505813036"] * 3 + ["7"], "updated_time": ["2019-05-01", "2019-05-02",
                                                                                     "2019-05-03", "2019-05-01"],
                          "rev": [16.9, 16.5, -1.0, 3.0], "treated": [0, 1, 1, 1], "search": [0.0, 0.1, 0.2, 0.0],
                          "price": 49.8, "discount": 38.2, "like": 5, "pe_score": 0.1})
    panel.to_parquet(root / "sales_panel.parquet")
    sales = run_ingest(cfg, "sales", str(root / "sales_panel.parquet"), fmt="panel", spark=spark)
    assert (sales.rows, sales.good, sales.reasons) == (4, 3, {"negative_value": 1})
    table = lake.read_pandas("taobao_sales").sort_values(["product_id", "date"])
    assert table["advertised"].tolist() == [False, True, True] and table["rolling_sales_30d"].tolist() == [16.9, 16.5, 3.0]
    with pytest.raises(IngestError, match=r"missing columns \['rev'\]"):
        panel.drop(columns=["rev"]).to_parquet(root / "no_rev.parquet")
        run_ingest(cfg, "sales", str(root / "no_rev.parquet"), fmt="panel", spark=spark)


@pytest.mark.slow
def test_csv_quoted_newlines_and_quotes_are_one_value_and_file_uris_with_a_host_are_refused(cfg, lake, spark):
    """A file name with a newline or quotes, quoted as CSV says, is one value; every reject carries the line its
    record starts on; ``file://HOST/...`` names another machine's file and is refused, ``file://localhost`` is not."""
    from jobs.ingest.job import run_ingest

    root = Path(cfg.lake_path) / "incoming"
    (root / "clips").mkdir(parents=True)
    for name in ("new\nline.mp4", 'say "hi".mp4', "a.mp4"):
        (root / "clips" / name).write_bytes(b"not decoded at ingest")
    (root / "photo.png").write_bytes(b"x")
    (root / "videos.csv").write_text(
        "video_id,video_uri,product_id,product_image_uri,published_at\n"
        'v1,"clips/new\nline.mp4",p1,photo.png,2026-11-01\n'                     # lines 2-3
        'v2,"clips/say ""hi"".mp4",p1,photo.png,2026-11-01\n'                    # line 4
        "v3,clips/a.mp4,p1,photo.png,last tuesday\n"                             # line 5
        '"v4\nx",clips/missing.mp4,p1,photo.png,2026-11-01\n'                    # lines 6-7
        f"v5,file://evil.example.com{root}/clips/a.mp4,p1,photo.png,2026-11-01\n"  # line 8
        f"v6,file://localhost{root}/clips/a.mp4,p1,photo.png,2026-11-01\n")        # line 9
    got = run_ingest(cfg, "videos", str(root / "videos.csv"), spark=spark)
    assert (got.rows, got.good, got.rejected) == (6, 3, 3)
    rows = lake.read_pandas("campaign_videos").set_index("video_id").sort_index()
    assert list(rows.index) == ["v1", "v2", "v6"]
    assert rows.loc["v1", "video_uri"] == str(root / "clips" / "new\nline.mp4")
    assert rows.loc["v2", "video_uri"] == str(root / "clips" / 'say "hi".mp4')
    rejects = lake.read_pandas("ingest_rejects")
    assert {r.line: (r.column, r.reason) for r in rejects.itertuples()} == {
        5: ("published_at", "bad_timestamp"), 6: ("video_uri", "not_found"), 8: ("video_uri", "file_host_not_allowed")}
    assert "evil.example.com" in rejects.set_index("line").loc[8, "message"]
