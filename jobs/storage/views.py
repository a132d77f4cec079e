"""SQL views for analysts: every lake table under its own name, plus the analyst views.

Analyst views (registered by ``pe sql`` and :func:`register_views`):

``pe_latest``
    one row per scored video: the ``pe_scores`` row of the champion's model version when a champion is given
    and has scored the video, else of the newest model version that scored it (highest version number, then
    latest ``scored_at``); ``is_champion`` says which.
``pe_seconds_current``
    the ``pe_seconds`` rows that belong to a complete scoring run: those whose (video_id, model_version,
    scoring_config) has a ``pe_scores`` row. Each table commits atomically, but two tables do not commit
    together: a run killed between its ``pe_seconds`` and ``pe_scores`` commits leaves per-second rows without
    their score until the next run re-scores the video; an earlier, longer scoring leaves rows of another
    scoring_config. Readers (reports, ``pe evaluate``, ``pe validate``) read :func:`current_seconds`.
``scoring_errors_open``
    the ``scoring_errors`` rows still open: those of videos not scored since (no ``pe_scores`` row of the same
    model version scored after the error). A file that failed one night and was fixed and scored later keeps
    its error row as history, but readers of this view no longer see it.
``pe_sales``
    ``pe_latest`` joined to the video's campaign metadata (``campaign_videos``) and the newest sales-lift
    estimate of its product (``sales_lift``, latest analysis run; null columns when no analysis ran yet).

Example::

    pe sql "select campaign_id, video_id, pe_share, lift, se_robust from pe_sales order by pe_share desc"
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobs.storage import contracts
from jobs.storage.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalystView:
    """A view defined in SQL. ``needs``: tables that must exist; ``optional``: tables the query reads when they
    exist and otherwise reads as empty (from their contract); placeholders ``{champion}`` (a SQL literal)
    and ``{<optional table>}`` (the relation to read) are filled in at registration."""

    needs: tuple[str, ...]
    query: str
    optional: tuple[str, ...] = ()
    description: str = ""


def _score_columns() -> str:
    return ", ".join(f"s.`{c}`" for c in contracts.spark_schema("pe_scores").fieldNames())


PE_LATEST = f"""
SELECT {_score_columns()}, coalesce(s.model_version = {{champion}}, false) AS is_champion
FROM (
  SELECT t.*, row_number() OVER (
      PARTITION BY t.video_id
      ORDER BY CASE WHEN t.model_version = {{champion}} THEN 0 ELSE 1 END,
               try_cast(t.model_version AS BIGINT) DESC NULLS LAST, t.model_version DESC,
               t.scored_at DESC NULLS LAST) AS _pe_rank
  FROM pe_scores t
) s
WHERE s._pe_rank = 1
"""

#: What ties a pe_seconds row to the pe_scores row of the same scoring (null-safe: rows from before
#: scoring_config existed have NULL in both tables).
RUN_KEYS = ("video_id", "model_version", "scoring_config")

PE_SECONDS_CURRENT = ("SELECT s.* FROM pe_seconds s LEFT SEMI JOIN pe_scores p ON "
                      + " AND ".join(f"s.`{k}` <=> p.`{k}`" for k in RUN_KEYS))

PE_SALES = """
WITH lift AS (
  SELECT * FROM (
    SELECT l.*, row_number() OVER (PARTITION BY l.product_id
                                   ORDER BY l.analyzed_at DESC NULLS LAST, l.analysis_run DESC) AS _pe_rank
    FROM {sales_lift} l
  ) WHERE _pe_rank = 1
)
SELECT v.campaign_id, s.video_id, v.product_id, v.influencer_id, v.own_product, v.published_at, v.video_uri,
       s.model_version, s.is_champion, s.pe_raw, s.pe_share, s.pe_lift, s.e_score, s.p_score,
       s.pe_raw_6s, s.pe_share_6s, s.pe_lift_6s, s.predicted_engagement, s.n_seconds, s.product_found_seconds,
       s.scored_at,
       l.analysis_run, l.lift, l.se AS lift_se, l.se_robust AS lift_se_robust,
       l.se_cluster2 AS lift_se_cluster2, l.n AS lift_n,
       l.status AS lift_status, l.reason AS lift_reason, l.video_id AS lift_video_id, l.influential,
       l.cooks_d, l.analyzed_at
FROM pe_latest s
LEFT JOIN campaign_videos v ON v.video_id = s.video_id
LEFT JOIN lift l ON l.product_id = v.product_id
"""

SCORING_ERRORS_OPEN = """
SELECT e.* FROM scoring_errors e
LEFT ANTI JOIN {pe_scores} s
  ON s.video_id = e.video_id AND (e.model_version IS NULL OR s.model_version = e.model_version)
  AND s.scored_at > e.at
"""

#: Analyst views over the lake tables; each is registered only when the tables it needs exist.
ANALYST_VIEWS: dict[str, AnalystView] = {
    "pe_latest": AnalystView(("pe_scores",), PE_LATEST,
                             description="champion (else newest) model version's scores, one row per video"),
    "pe_seconds_current": AnalystView(("pe_seconds", "pe_scores"), PE_SECONDS_CURRENT,
                                      description="per-second rows of complete scoring runs only"),
    "scoring_errors_open": AnalystView(("scoring_errors",), SCORING_ERRORS_OPEN, optional=("pe_scores",),
                                       description="scoring errors of videos not scored since"),
    "pe_sales": AnalystView(("pe_latest", "campaign_videos"), PE_SALES, optional=("sales_lift",),
                            description="pe_latest + campaign metadata + the product's newest sales lift"),
}


def current_seconds(lake: Lake) -> "DataFrame":
    """``pe_seconds`` rows of complete scoring runs (:func:`complete_seconds` of the two tables); empty when
    either table is missing."""
    if not (lake.exists("pe_seconds") and lake.exists("pe_scores")):
        return lake.spark.createDataFrame([], contracts.spark_schema("pe_seconds"))
    return complete_seconds(lake.read("pe_seconds"), lake.read("pe_scores"))


def complete_seconds(seconds: "DataFrame", scores: "DataFrame") -> "DataFrame":
    """The rows of ``seconds`` (pe_seconds) whose :data:`RUN_KEYS` have a row in ``scores`` (pe_scores),
    NULL-safe: the ``pe_seconds_current`` view's rule as a DataFrame."""
    from pyspark.sql import functions as F

    on = [F.col(f"s.{k}").eqNullSafe(F.col(f"p.{k}")) for k in RUN_KEYS]
    return seconds.alias("s").join(scores.select(*RUN_KEYS).alias("p"), on, "left_semi")


def _sql_literal(value: str | None) -> str:
    if value is None:
        return "CAST(NULL AS STRING)"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def register_views(lake: Lake, champion_version: str | None = None, *, persistent: bool = False) -> list[str]:
    """Register each lake table by name in the session catalog (Delta SQL works on it: ``DESCRIBE HISTORY``,
    ``VERSION AS OF``), then the analyst views as temp views; return the names. The same definitions are
    written to ``<lake>/_catalog/register.sql`` for other Spark sessions (``spark-sql -i`` that file).

    ``champion_version``: the model version ``pe_latest`` prefers (None: the newest version per video).
    ``persistent``: create the views in the catalog (``CREATE OR REPLACE VIEW``) rather than as temp views, so
    every session of a persistent metastore sees them (``pe serve-sql``); a missing optional table is then an
    empty inline relation typed by its contract."""
    names = lake.register_tables()
    statements = [f"CREATE TABLE IF NOT EXISTS `{n}` USING delta LOCATION {_sql_literal(lake.path(n))};" for n in names]
    for view, spec in ANALYST_VIEWS.items():
        if not all(n in names for n in spec.needs):
            continue
        relations = {}
        for opt in spec.optional:
            if opt in names:
                relations[opt] = opt
            elif persistent:  # a catalog view cannot name a temp view
                relations[opt] = _empty_relation(opt)
            else:  # read as empty, typed by its contract, so the view's columns never depend on history
                hidden = f"_pe_empty_{opt}"
                lake.spark.createDataFrame([], contracts.spark_schema(opt)).createOrReplaceTempView(hidden)
                relations[opt] = hidden
        query = spec.query.format(champion=_sql_literal(champion_version), **relations)
        if persistent:
            lake.spark.sql(f"CREATE OR REPLACE VIEW `{view}` AS {query}")
        else:
            lake.spark.sql(query).createOrReplaceTempView(view)
        names.append(view)
        if not any(r.startswith("_pe_empty_") for r in relations.values()):
            statements.append(f"CREATE OR REPLACE TEMPORARY VIEW `{view}` AS {query.strip()};")
    _write_catalog_script(lake, statements)
    return names


def _empty_relation(table: str) -> str:
    """``(SELECT CAST(NULL AS <type>) AS <column>, ... WHERE false)``: no rows, the table's contract columns."""
    columns = ", ".join(f"CAST(NULL AS {f.dataType.simpleString()}) AS `{f.name}`"
                        for f in contracts.spark_schema(table).fields)
    return f"(SELECT {columns} WHERE false)"


def _write_catalog_script(lake: Lake, statements: list[str]) -> None:
    """``<lake>/_catalog/register.sql``: the lake's tables and views for any Spark session with Delta."""
    if not lake.is_local:
        return
    folder = os.path.join(lake.root, "_catalog")
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".register.sql.{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("-- Generated by pe (jobs/storage/views.py): the lake's Delta tables and analyst views by name.\n")
            f.write("\n".join(statements) + "\n")
        os.replace(tmp, os.path.join(folder, "register.sql"))
    except OSError as e:  # a read-only lake still answers queries
        log.warning("cannot write %s/register.sql: %s", folder, e)


def champion_version(cfg) -> str | None:
    """The registered @champion's model version, or None when there is no registry or no champion.

    The embedded registry (a SQLite file in the lake) is only opened when the file exists, so asking never
    creates one."""
    from jobs.config import ConfigError

    try:
        uri = cfg.tracking_uri
    except ConfigError:
        return None
    if uri.startswith("sqlite:///") and not os.path.exists(uri[len("sqlite:///"):]):
        return None
    try:
        mv = cfg.model_registry().champion()
    except Exception as e:  # an unreachable or broken registry must not stop read-only analysis
        log.warning("cannot read the model registry at %s (%s); using the newest scored version", uri, e)
        return None
    return None if mv is None else str(mv.version)
