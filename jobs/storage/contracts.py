"""Table contracts: every lake table's schema, key and partitioning, defined once.

Names and meanings are the contract; columns may be added. Schemas are Spark DDL so they read like SQL;
:func:`spark_schema` turns one into a ``StructType`` and :func:`arrow_schema` into a ``pyarrow.Schema``
(for pandas writers). All timestamps are UTC.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache


@dataclass(frozen=True)
class TableContract:
    name: str
    ddl: str
    keys: tuple[str, ...]
    partition_by: tuple[str, ...] = ()
    description: str = ""
    #: columns that may legitimately change on a re-run without it being a new fact (ignored by merge's
    #: change detection, so re-running a job with the same inputs is a no-op)
    volatile: tuple[str, ...] = field(default=())
    #: columns `pe maintain` Z-orders the files by, so a merge's key list skips the files that cannot match
    cluster_by: tuple[str, ...] = field(default=())

    @property
    def columns(self) -> list[str]:
        return spark_schema(self.name).fieldNames()


_CONTRACTS = [
    TableContract(
        "campaign_videos",
        "video_id STRING NOT NULL, video_uri STRING, product_id STRING, product_image_uri STRING, "
        "influencer_id STRING, campaign_id STRING, own_product BOOLEAN, published_at TIMESTAMP, "
        "ingested_at TIMESTAMP",
        keys=("video_id",),
        description="One row per influencer video to score: where the file is and which product it promotes.",
        volatile=("ingested_at",),
    ),
    TableContract(
        "engagement_labels",
        "video_id STRING NOT NULL, video_uri STRING, influencer_id STRING, product_id STRING, views BIGINT, "
        "likes BIGINT, comments BIGINT, shares BIGINT, collected_at TIMESTAMP",
        keys=("video_id",),
        description="Observed engagement counts per video, the training target of the engagement model.",
        volatile=("collected_at",),
    ),
    TableContract(
        "taobao_sales",
        "product_id STRING NOT NULL, date DATE NOT NULL, rolling_sales_30d DOUBLE, daily_sales DOUBLE, "
        "price DOUBLE, discount DOUBLE, search_index DOUBLE, advertised BOOLEAN",
        keys=("product_id", "date"),
        description="Daily sales panel per product (30-day rolling and daily), price, discount, search index; "
        "advertised is true from the day an influencer video for the product is published.",
    ),
    TableContract(
        "product_images",
        "product_id STRING NOT NULL, view STRING NOT NULL, image_uri STRING, view_rank INT, ingested_at TIMESTAMP",
        keys=("product_id", "view"),
        description="The seller's listing images of a product, one row per view (front, side, packaging...); "
        "view_rank 1 is the main image, which fills campaign_videos.product_image_uri when a video has none.",
        volatile=("ingested_at",),
    ),
    TableContract(
        "ingest_rejects",
        "source_file STRING NOT NULL, line BIGINT, column STRING, reason STRING NOT NULL, message STRING, "
        "value STRING, kind STRING, target_table STRING, ingest_run STRING, at TIMESTAMP",
        keys=("source_file", "line", "column", "reason"),
        description="One row per failed check of a `pe ingest` input row: the source file, its line (CSV and "
        "JSON Lines: the line in the file; Parquet: the row number, 1-based; null for a file found by --folder), "
        "the column, a reason code (missing_value, bad_timestamp, bad_number, bad_boolean, negative_count, "
        "duplicate_key, unknown_product, unknown_video, scheme_not_allowed, file_host_not_allowed, outside_allowed_roots, "
        "not_found) "
        "and a message. ingest_run and at are those of the first ingest that found it.",
        volatile=("ingest_run", "at"),
    ),
    TableContract(
        "sample_truth",
        "video_id STRING NOT NULL, second INT NOT NULL, product_visible BOOLEAN, quad_224 ARRAY<DOUBLE>, "
        "product_area_share DOUBLE, driver STRING, driver_x DOUBLE, driver_y DOUBLE, driver_weight DOUBLE, "
        "true_engagement DOUBLE, true_product_engagement DOUBLE, product_visible_share DOUBLE, drive DOUBLE, "
        "product_drive DOUBLE, time_weight DOUBLE, scenario STRING, true_sales_lift DOUBLE, n_frames INT, "
        "fps DOUBLE, width INT, height INT, quad_area_share DOUBLE, product_mask_png BINARY, product_view STRING, "
        "material STRING",
        keys=("video_id", "second"),
        description="Ground truth of the generated sample campaign (jobs/synth/truth.py), per second of the frame "
        "shown at t = second: the product quadrilateral in 224x224 coordinates of the squashed frame (x0,y0,...,x3,y3 "
        "= the listing image's corners TL,TR,BR,BL; null when not drawn), the product region = its silhouette "
        "(product_mask_png: 224x224 PNG, 0/255, the listing's alpha warped onto the quad; null when not drawn), "
        "product_visible (>= half of it on screen and unoccluded; product_visible_share the exact share), "
        "product_area_share (silhouette within the frame / frame; quad_area_share the same for the listing "
        "rectangle), the strongest engagement driver (face/product/motion/novelty) with its 224-coordinates and "
        "share of the second's drive, drive and product_drive (drive on the silhouette) and time_weight; per video "
        "(repeated) true_engagement = sum(time_weight*drive)/sum(time_weight), true_product_engagement = "
        "sum(time_weight*product_drive)/sum(time_weight*drive), the storyboard scenario, the true sales lift "
        "(CNY/day) and the file's declared n_frames, fps, width, height. Scenarios separate the product's area "
        "from the engagement on it: hero (large, central, moving: high area, high PE), prop (large and still "
        "beside a talking close-up face: high area, low PE), held (small, swung through the centre of b-roll: "
        "low area, high PE), wrong_reason (small and still in a corner beside a face: low, low), occluded "
        "(moving, partly behind the person's window and stickers), mixed (comes and goes), no_product; and, only "
        "when asked for (`pe sample --scenario turning`), turning (the product turns so its side panel faces the "
        "camera for part of the time; product_view says which face is drawn: front | side, null when not drawn). The "
        "product's drive depends on its motion and centrality, barely on its size; over the default 200-video "
        "campaign Spearman(area share, true PE) is about 0 (bench/world.py). material: the video's cast "
        "(jobs/synth/casting.py): held_out (people, backgrounds and products no other influencer's video shows, "
        "given to the influencers pe train's default split holds out for testing), seen, or any (no split held out).",
    ),
    TableContract(
        "training_clips",
        "video_id STRING NOT NULL, split STRING, label DOUBLE, n_seconds INT, backbone STRING, "
        "feature_shape ARRAY<INT>, features BINARY, label_definition STRING, clip_config STRING, "
        "error_stage STRING, error_reason STRING, error_message STRING, computed_at TIMESTAMP",
        keys=("video_id", "backbone"),
        description="Frozen-backbone features per labelled video (float16 bytes of shape feature_shape = "
        "(S, C, h, w)) with the training label and a deterministic split. clip_config (JSON: sampling and "
        "backbone weights) says which features are reusable; a video that could not be decoded has a null "
        "features column and error_stage/error_reason/error_message.",
        volatile=("computed_at",),
    ),
    TableContract(
        "pe_scores",
        "video_id STRING NOT NULL, model_version STRING NOT NULL, pe_raw DOUBLE, pe_share DOUBLE, pe_lift DOUBLE, "
        "e_score DOUBLE, p_score DOUBLE, pe_raw_6s DOUBLE, pe_share_6s DOUBLE, pe_lift_6s DOUBLE, "
        "e_score_6s DOUBLE, p_score_6s DOUBLE, predicted_engagement DOUBLE, n_seconds INT, "
        "product_found_seconds INT, model_name STRING, saliency_method STRING, product_method STRING, "
        "model_run_id STRING, run_id STRING, scored_at TIMESTAMP, window_seconds INT, scoring_config STRING, "
        "input_truncated BOOLEAN, input_warnings STRING, listing_views_id STRING, listing_files_id STRING",
        keys=("video_id", "model_version"),
        description="PE-score and companion scores per video and model version; model_run_id is the MLflow run "
        "that trained the model, run_id the scoring run that wrote the row; window_seconds the scoring window "
        "(clip.max_seconds: at most this many seconds from the start were scored, whatever the model trained on); "
        "scoring_config the id of the saliency method, product settings and window "
        "(<saliency>/<product>/<window>s/<hash>): a new one makes the video a candidate again and replaces the row; "
        "input_truncated: decoding stopped early (corrupt or cut-off file) and the video was scored from its "
        "decodable seconds (decode.on_truncated = flag), input_warnings says why; listing_views_id: which listing "
        "images the video was matched against (product_image_uri and the product's product_images views): a view "
        "added, removed or re-pointed makes the video a candidate again (NULL: scored before the id existed); "
        "listing_files_id: the size and modification time of those images' files when it was scored: a file "
        "replaced under the same URI makes it a candidate again (NULL: scored before the id existed).",
        volatile=("run_id", "scored_at"),
        cluster_by=("video_id",),
    ),
    TableContract(
        "pe_seconds",
        "video_id STRING NOT NULL, model_version STRING NOT NULL, second INT NOT NULL, e_mass DOUBLE, "
        "pe_mass DOUBLE, p_mass DOUBLE, product_found BOOLEAN, inliers INT, quad_224 ARRAY<DOUBLE>, "
        "e_grid ARRAY<FLOAT>, run_id STRING, scoring_config STRING, matched_view STRING",
        keys=("video_id", "model_version", "second"),
        description="Per-second sums (Σe, Σe·p, Σp), product match diagnostics and a coarse engagement grid "
        "(grid x grid, row-major) so every score variant can be recomputed without the CNN or SIFT; "
        "scoring_config as in pe_scores (rows whose scoring_config differs from the video's pe_scores row are "
        "left over from an earlier, longer scoring and are not part of the current score); matched_view: the "
        "listing view (product_images.view; 'main' for the video's own product_image_uri) whose match masked "
        "the second, NULL when the product was not found.",
        volatile=("run_id",),
        cluster_by=("video_id",),
    ),
    TableContract(
        "edit_advice",
        "video_id STRING NOT NULL, model_version STRING NOT NULL, rank INT NOT NULL, scoring_config STRING, "
        "kind STRING, text STRING, start_s INT, end_s INT, seconds ARRAY<INT>, region STRING, on_face BOOLEAN, "
        "pe_share_now DOUBLE, pe_share_after DOUBLE, pe_share_6s_now DOUBLE, pe_share_6s_after DOUBLE, gain DOUBLE, "
        "missed_moments STRING, run_id STRING, advised_at TIMESTAMP",
        keys=("video_id", "model_version", "rank"),
        description="Edit advice per video and model version (`pe advise`, pe_udfs/advice.py): rank 1 is the "
        "suggestion with the largest predicted gain; kind (an edit kind of pe_udfs.advice.EDITS) NULL means no "
        "suggestion at this rank (every advised video has advice.max_suggestions rows, so a re-run with fewer "
        "suggestions replaces older ones). seconds: the video seconds the edit changes ([start_s, end_s) spans "
        "them); region/on_face: where the attention went in the edited moment; pe_share_* now and after the "
        "edit as predicted from the per-second masses (a prediction, not a measurement; bench/advice.py measures "
        "it in the sample world), gain = after - now of advice.rank_by; missed_moments: JSON list of the video's "
        "missed moments; scoring_config: the pe_scores row the advice came from.",
        volatile=("run_id", "advised_at"),
        cluster_by=("video_id",),
    ),
    TableContract(
        "scoring_errors",
        "video_id STRING NOT NULL, run_id STRING NOT NULL, model_version STRING, stage STRING, "
        "error_class STRING, reason STRING, message STRING, video_uri STRING, at TIMESTAMP",
        keys=("video_id", "run_id"),
        description="One row per rejected input of a scoring run: the stage (validate/fetch/decode/product/"
        "model/score), the error class, a machine reason code and the message.",
        volatile=("at",),
    ),
    TableContract(
        "sales_lift",
        "product_id STRING NOT NULL, analysis_run STRING NOT NULL, lift DOUBLE, se DOUBLE, n BIGINT, "
        "method STRING, video_id STRING, model_version STRING, pe_raw DOUBLE, pe_share DOUBLE, "
        "e_score DOUBLE, p_score DOUBLE, analyzed_at TIMESTAMP, se_robust DOUBLE, n_treated_days BIGINT, "
        "n_post_days BIGINT, n_controls BIGINT, status STRING, reason STRING, campaign_id STRING, "
        "influencer_id STRING, pe_norm DOUBLE, e_norm DOUBLE, p_norm DOUBLE, cooks_d DOUBLE, leverage DOUBLE, "
        "influential BOOLEAN, se_cluster2 DOUBLE",
        keys=("product_id", "analysis_run"),
        description="First-stage sales lift per advertised product (lift = extra sales per day after the video; "
        "se conventional, se_robust heteroskedasticity-robust, se_cluster2 clustered two-way by product and day (the "
        "paper's); n observations; status ok/skipped with a reason), "
        "with the video's scores (raw and min-max normalised across the videos: *_norm) joined for the second "
        "stage and the headline specification's influence (Cook's distance, leverage, influential = D > 4/n).",
        volatile=("analyzed_at",),
    ),
    TableContract(
        "evaluations",
        "model_version STRING NOT NULL, run STRING NOT NULL, metric STRING NOT NULL, scope STRING NOT NULL, "
        "value DOUBLE, ci_low DOUBLE, ci_high DOUBLE, n BIGINT, evaluated_at TIMESTAMP, detail STRING",
        keys=("model_version", "run", "metric", "scope"),
        description="`pe evaluate` on the sample campaign (jobs/evaluation/against_truth.py): one row per metric and scope (test: "
        "videos of the model's test influencers, the headline; all; or a scenario name) with its bootstrap 95 % "
        "interval [ci_low, ci_high] over n videos, resampling whole influencers (product-map metrics: seconds, "
        "intervals by resampling videos). spearman_<score>: Spearman with the true product engagement of pe_share "
        "(the model) and of every model-free rule of pe_udfs.baselines (area_only, centre_prior, spectral_residual, "
        "motion_in_mask, product_speed, face_distance, steady_shots) and the constant; spearman_best_baseline: the "
        "best rule of that scope (its name in detail); spearman_pe_share_minus_<rule | best_baseline>: paired "
        "bootstrap; *_window: against the truth over the scored seconds only; spearman_pe_share_permuted: negative "
        "control, median and 95 % band of Spearman with pe_share shuffled across videos (2,000 permutations); "
        "product_iou_median (visible seconds, silhouette), product_false_found (absent seconds); lift_correlation: "
        "estimated (sales_lift, latest run) vs true sales lifts; mean_pe_share, mean_true_pe.",
        volatile=("evaluated_at",),
    ),
]

CONTRACTS: dict[str, TableContract] = {c.name: c for c in _CONTRACTS}


def contract(name: str) -> TableContract:
    try:
        return CONTRACTS[name]
    except KeyError:
        raise KeyError(f"no table contract named {name!r}; known: {', '.join(sorted(CONTRACTS))}") from None


@lru_cache(maxsize=None)
def spark_schema(name: str):
    """The contract's ``pyspark.sql.types.StructType`` (parsed without a Spark session)."""
    return parse_ddl(contract(name).ddl)


_SIMPLE = {
    "STRING": "string", "BOOLEAN": "boolean", "TIMESTAMP": "timestamp", "DATE": "date", "DOUBLE": "double",
    "FLOAT": "float", "INT": "integer", "BIGINT": "long", "BINARY": "binary",
}


def _parse_type(t: str):
    from pyspark.sql.types import ArrayType, _parse_datatype_json_value

    t = t.strip()
    if t.upper().startswith("ARRAY<") and t.endswith(">"):
        return ArrayType(_parse_type(t[6:-1]), True)
    return _parse_datatype_json_value(_SIMPLE[t.upper()])


def parse_ddl(ddl: str):
    """Parse the small DDL subset used in this project (scalars, ARRAY<...>, NOT NULL) into a StructType,
    without a JVM (StructType.fromDDL needs a running session)."""
    from pyspark.sql.types import StructField, StructType

    fields = []
    depth, start = 0, 0
    parts = []
    for i, ch in enumerate(ddl):
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            parts.append(ddl[start:i])
            start = i + 1
    parts.append(ddl[start:])
    for part in parts:
        words = part.strip().split(None, 1)
        name, rest = words[0], words[1]
        nullable = not rest.upper().endswith("NOT NULL")
        if not nullable:
            rest = rest[: -len("NOT NULL")]
        fields.append(StructField(name, _parse_type(rest), nullable))
    return StructType(fields)


def arrow_schema(name: str):
    """The contract as a ``pyarrow.Schema`` (timestamps in UTC microseconds, like Spark writes them)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(spark_schema(name))
