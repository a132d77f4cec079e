"""pe advise: the edit_advice contract, and the job on a tiny scored lake (Spark, slow)."""
from __future__ import annotations

import json

import pytest

from jobs.report.advice import AdviseError, run_advise
from jobs.storage.contracts import contract, spark_schema
from tests.jobs.test_report import scored_lake  # noqa: F401 (the fixture: 3 scored videos of campaign 'camp')


def test_edit_advice_contract_is_one_row_per_video_version_and_rank():
    c = contract("edit_advice")
    assert c.keys == ("video_id", "model_version", "rank")
    schema = spark_schema("edit_advice")
    assert {f.name for f in schema.fields if not f.nullable} == set(c.keys)
    for column in ("kind", "text", "seconds", "pe_share_now", "pe_share_after", "gain", "scoring_config",
                   "missed_moments", "region"):
        assert column in schema.fieldNames()
    assert schema["rank"].dataType.simpleString() == "int" and schema["seconds"].dataType.simpleString() == "array<int>"


@pytest.mark.slow
def test_advise_writes_ranked_advice_and_a_rerun_replaces_it(scored_lake, cfg):  # noqa: F811
    # the fixture's videos: product found on odd seconds only, engagement rising: second 2 is engaged, no product
    summary = run_advise(cfg, scored_lake, video_ids=["v0", "v1"])
    k = cfg.advice.max_suggestions
    table = scored_lake.read_pandas("edit_advice")
    assert len(table) == 2 * k and summary.videos == 2 and summary.with_suggestions == 2
    first = table[table["rank"] == 1].set_index("video_id")
    assert first["kind"].notna().all() and (first["gain"] > 0).all()
    assert first.loc["v0", "model_version"] == "1"
    moments = json.loads(first.loc["v0", "missed_moments"])
    assert [(m["start_s"], m["end_s"]) for m in moments] == [(2, 3)]
    assert moments[0]["product_shown"] is False and moments[0]["region"]
    # ranks are ordered by gain, ranks without a suggestion have no kind
    v0 = table[table["video_id"] == "v0"].sort_values("rank")
    gains = v0["gain"].dropna().tolist()
    assert gains == sorted(gains, reverse=True)

    run_advise(cfg, scored_lake, campaign="camp")  # all three videos of the campaign, v0 and v1 again
    again = scored_lake.read_pandas("edit_advice")
    assert len(again) == 3 * k and not again.duplicated(["video_id", "model_version", "rank"]).any()

    with pytest.raises(AdviseError) as err:
        run_advise(cfg, scored_lake, video_ids=["nope"])
    assert err.value.reason == "not_scored"
    with pytest.raises(AdviseError) as err:
        run_advise(cfg, scored_lake, campaign="other")
    assert err.value.reason == "unknown_campaign"


@pytest.mark.slow
def test_pe_advise_command_prints_the_advice(scored_lake, cfg):  # noqa: F811
    from typer.testing import CliRunner

    from jobs.cli import app

    res = CliRunner().invoke(app, ["--lake", cfg.lake_path, "advise", "--video-id", "v1"])
    assert res.exit_code == 0, res.output
    assert "advice for 1 videos of model v1" in res.output and "edit_advice:" in res.output
    bad = CliRunner().invoke(app, ["--lake", cfg.lake_path, "advise", "--video-id", "nope"])
    assert bad.exit_code == 2 and "not_scored" in bad.output and "Traceback" not in bad.output
