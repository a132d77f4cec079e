"""One validated configuration object for every job and command.

Load with :func:`load_config`; YAML files are merged over the defaults below, so a file only names what it
changes. Unknown keys and wrong types are rejected with the offending key and the file named::

    cfg = load_config("conf/local.yaml", lake="/tmp/lake")
    cfg.lake_path            # absolute lake root ("/tmp/lake" or "s3a://...")
    cfg.clip.fps             # 1.0 frame per second
"""
from __future__ import annotations

import difflib
import os
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from models.settings import ModelSettings, TrainSettings
from pe_udfs.errors import PEError
from pe_udfs.settings import (
    AdviceSettings,
    ClipSettings,
    DecodeSettings,
    ProductSettings,
    SaliencySettings,
    ScoringPlan,
    StrictSettings,
)

if TYPE_CHECKING:  # the registry imports MLflow: loaded only when a command asks for it
    from models.registry import ModelRegistry

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = REPO_ROOT / "conf" / "local.yaml"


class ConfigError(PEError):
    """A configuration file is missing, unreadable, or has an unknown key or a wrong type."""

    stage = "config"
    exit_code = 2


#: Spark's master URL forms (Spark 4 has no Mesos); anything else makes the JVM exit at start-up.
_MASTER_FORMS = (
    r"local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?",
    r"local-cluster\[[1-9]\d*,\s*[1-9]\d*,\s*[1-9]\d*\]",
    r"spark://[^/\s:,]+:\d{1,5}(,[^/\s:,]+:\d{1,5})*",
    r"yarn",
    r"k8s://(https?://)?[^/\s:]+(:\d{1,5})?(/\S*)?",
)
MASTER_HELP = "local, local[N], local[*], local[N,F], local-cluster[N,C,M], spark://HOST:PORT, yarn, k8s://HOST:PORT"
#: A JVM memory string Spark accepts: a whole number with an optional unit (a bare number is MiB).
_MEMORY = re.compile(r"([0-9]+)([kmgtp]?)b?", re.IGNORECASE)
_MEMORY_UNITS = {"": 2**20, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
#: The JVM heap Spark needs to start a driver or executor at all (it refuses less than 450 MiB).
MIN_HEAP_BYTES = 512 * 2**20
#: More shuffle partitions than this is a typo (each costs a task per shuffle; 10^9 exhausts the driver).
MAX_PARTITIONS = 100_000
#: spark.conf keys checked like the section's own settings, before any JVM starts: key → kind.
_CHECKED_CONF = {
    "spark.master": "master",
    "spark.driver.memory": "heap", "spark.executor.memory": "heap",
    "spark.driver.memoryOverhead": "memory", "spark.executor.memoryOverhead": "memory",
    "spark.executor.pyspark.memory": "memory", "spark.driver.maxResultSize": "memory",
    "spark.sql.shuffle.partitions": "partitions", "spark.default.parallelism": "partitions",
}


def memory_bytes(text: str) -> int | None:
    """A Spark memory string ('4g', '512m', '2048') → bytes; None when Spark would not accept it."""
    m = _MEMORY.fullmatch(text.strip())
    return int(m.group(1)) * _MEMORY_UNITS[m.group(2).lower()] if m else None


def check_master(value: str) -> str:
    """``value`` when it is one of Spark's master URL forms, else ValueError naming the forms."""
    if not any(re.fullmatch(form, value.strip()) for form in _MASTER_FORMS):
        raise ValueError(f"not a Spark master URL (forms: {MASTER_HELP})")
    return value.strip()


def check_memory(value: str, *, heap: bool) -> str:
    """``value`` when Spark accepts it as a memory size (a heap: at least 512m), else ValueError."""
    size = memory_bytes(value)
    if size is None:
        raise ValueError("not a memory size (a whole number and a unit: 512m, 4g, 1t)")
    if heap and size < MIN_HEAP_BYTES:
        raise ValueError("below 512m, the least heap Spark starts with")
    if size > 2**50:
        raise ValueError("above 1p")
    return value.strip()


def check_partitions(value: str) -> str:
    """``value`` when it is a whole number of partitions in [1, MAX_PARTITIONS], else ValueError."""
    if not value.strip().isdigit() or not 1 <= int(value) <= MAX_PARTITIONS:
        raise ValueError(f"must be a whole number from 1 to {MAX_PARTITIONS:,}")
    return value.strip()


class SparkSettings(StrictSettings):
    """Checked here, before any JVM starts: a value the JVM refuses would end in a Java gateway crash."""

    master: str = "local[*]"
    app_name: str = "pe-score"
    shuffle_partitions: int = Field(4, ge=1, le=MAX_PARTITIONS)
    driver_memory: str = "4g"
    conf: dict[str, str] = Field(default_factory=dict)
    show_progress: bool = True  # Spark's progress bar, drawn only when stderr is a terminal
    log_level: Literal["ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF", "TRACE"] = "ERROR"
    # a failed task (e.g. a Python worker killed by the OOM killer) is tried again this often, in local mode
    # too; a video that kills its worker twice becomes one scoring_errors row (stage worker)
    task_retries: int = Field(3, ge=0, le=20)

    @field_validator("master")
    @classmethod
    def _master_form(cls, v: str) -> str:
        return check_master(v)

    @field_validator("driver_memory")
    @classmethod
    def _driver_memory_form(cls, v: str) -> str:
        return check_memory(v, heap=True)

    @field_validator("conf")
    @classmethod
    def _known_conf_values(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            kind = _CHECKED_CONF.get(key)
            try:
                if kind == "master":
                    check_master(value)
                elif kind in ("heap", "memory"):
                    check_memory(value, heap=kind == "heap")
                elif kind == "partitions":
                    check_partitions(value)
            except ValueError as e:
                raise ValueError(f"{key}: {e}") from None
        return v


class MlflowSettings(StrictSettings):
    tracking_uri: str | None = None  # None → sqlite:///<lake>/mlflow.db
    registry_uri: str | None = None  # None → same as tracking
    experiment: str = "pe-score"
    model_name: str = "pe-engagement"
    alias: str = "champion"


class ScoreSettings(StrictSettings):
    limit: int | None = None
    partitions: int | None = Field(None, ge=1, le=MAX_PARTITIONS)  # None → Spark's default parallelism
    frame_batch: int = Field(64, ge=1)  # frames per backbone batch on the accelerator


class SampleSettings(StrictSettings):
    """The generated sample campaign (`pe sample`, jobs/synth/sample.py, jobs/synth/)."""

    videos: int = Field(12, ge=1)  # default --videos
    seed: int = Field(7, ge=0)  # default --seed
    width: int = Field(360, ge=64)  # even (H.264 4:2:0); 9:16 vertical by default
    height: int = Field(640, ge=64)
    fps: int = Field(30, ge=1)
    min_seconds: float = Field(15.0, gt=0)  # videos last a whole number of seconds in [min, max]
    max_seconds: float = Field(60.0, gt=0)
    controls: int = Field(0, ge=0)  # never-advertised products; 0 → as many as videos
    audio: bool = True  # an AAC soundtrack in every MP4
    workers: int = Field(0, ge=0)  # render processes; 0 → one per CPU core
    start_date: date = date(2024, 3, 1)  # first day of the sales panel
    panel_days: int = Field(100, ge=62)  # days in the sales panel (posts fall on days 30 .. panel_days - 30)


class MaintainSettings(StrictSettings):
    """Table maintenance (`pe maintain`, jobs/storage/maintain.py): compaction, Z-order and VACUUM."""

    # files no version younger than this needs are deleted; time travel reaches back this far. Below 168 h
    # (Delta's own floor) a concurrent reader or writer of an older snapshot can fail: keep it for tests.
    retention_hours: float = Field(168.0, ge=0, le=24 * 365 * 10)
    zorder: bool = True  # Z-order pe_scores / pe_seconds by video_id (the merge key), so merges skip files


class IoSettings(StrictSettings):
    allowed_schemes: list[str] = Field(default_factory=lambda: ["file"])
    allowed_roots: list[str] = Field(default_factory=list)  # empty → the lake root only


class IngestSettings(StrictSettings):
    """`pe ingest inbox` (the nightly DAG's ingest task): manifests named products|videos|labels|sales.<ext>."""

    inbox: str | None = None  # local folder; None → <lake>/inbox


class QualitySettings(StrictSettings):
    """Data quality gates (jobs/quality/validate.py, Great Expectations)."""

    # local folder for Data Docs (HTML, in data_docs/) and stored validation results (validations/);
    # None → <lake>/quality for a local lake; a remote lake without it keeps results in memory, no docs
    root: str | None = None
    # pe_seconds sums must match pe_scores within |a - b| <= sum_atol + sum_rtol * |b| (float32 sums)
    sum_rtol: float = Field(1e-4, ge=0)
    sum_atol: float = Field(1e-6, ge=0)


class SqlSettings(StrictSettings):
    """Analysts' SQL (`pe sql`, `pe serve-sql`, `pe catalog`): where the persistent catalog lives."""

    # an external Hive metastore (thrift://HOST:PORT) shared with other tools; None → an embedded Derby
    # metastore in metastore_dir, which one process at a time can open
    metastore_uri: str | None = Field(None, pattern=r"^thrift://[^/\s]+:\d+(,thrift://[^/\s]+:\d+)*$")
    metastore_dir: str | None = None  # None → <lake>/_metastore (local lakes)
    # how often a running server looks for new tables and a new champion and re-points its catalog, s
    refresh_seconds: float = Field(30.0, gt=0, le=86400)


class PEConfig(StrictSettings):
    lake: str = "./lake"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    spark: SparkSettings = Field(default_factory=SparkSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    clip: ClipSettings = Field(default_factory=ClipSettings)
    decode: DecodeSettings = Field(default_factory=DecodeSettings)
    product: ProductSettings = Field(default_factory=ProductSettings)
    saliency: SaliencySettings = Field(default_factory=SaliencySettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    score: ScoreSettings = Field(default_factory=ScoreSettings)
    maintain: MaintainSettings = Field(default_factory=MaintainSettings)
    sample: SampleSettings = Field(default_factory=SampleSettings)
    io: IoSettings = Field(default_factory=IoSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    sql: SqlSettings = Field(default_factory=SqlSettings)
    advice: AdviceSettings = Field(default_factory=AdviceSettings)
    source: str | None = Field(None, exclude=True)  # the file this came from, for messages

    @field_validator("saliency")
    @classmethod
    def _registered_map_method(cls, value: SaliencySettings) -> SaliencySettings:
        from pe_udfs.saliency import METHODS  # the registry is the list of allowed names

        if value.method not in METHODS:
            raise ValueError(f"unknown saliency method {value.method!r}; known: {', '.join(METHODS)}")
        return value

    @field_validator("product")
    @classmethod
    def _registered_matcher(cls, value: ProductSettings) -> ProductSettings:
        from pe_udfs.product import MATCHERS  # the registry is the list of allowed names

        if value.method not in MATCHERS:
            raise ValueError(f"unknown product method {value.method!r}; known: {', '.join(MATCHERS)}")
        return value

    @field_validator("advice")
    @classmethod
    def _registered_edit_kinds(cls, value: AdviceSettings) -> AdviceSettings:
        from pe_udfs.advice import EDITS  # the registry is the list of allowed names

        unknown = [k for k in value.edits if k not in EDITS]
        if unknown:
            raise ValueError(f"unknown edit kinds {unknown}; known: {', '.join(EDITS)}")
        return value

    @field_validator("lake")
    @classmethod
    def _lake_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("lake must not be empty")
        if "://" not in v and os.path.abspath(os.path.expanduser(v)) == os.path.abspath(os.sep):
            raise ValueError("lake must be a folder of its own, not the file system's root")
        return v

    @property
    def lake_path(self) -> str:
        """Absolute lake root: a local path, or a URI (``s3a://...``) kept as given."""
        if "://" in self.lake:
            scheme, rest = self.lake.split("://", 1)
            if scheme == "file":
                return os.path.abspath(rest)
            return self.lake.rstrip("/")
        return os.path.abspath(os.path.expanduser(self.lake))

    @property
    def tracking_uri(self) -> str:
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        if "://" in self.lake_path:
            raise ConfigError("tracking_uri_required", "mlflow.tracking_uri must be set when the lake is not a local folder")
        return f"sqlite:///{self.lake_path}/mlflow.db"

    def model_registry(self) -> "ModelRegistry":
        """The registered engagement model of this config's stores (``mlflow.*``): versions, champion, load,
        register, promote (:class:`models.registry.ModelRegistry`)."""
        from models.registry import ModelRegistry

        return ModelRegistry(self.tracking_uri, self.mlflow.model_name, self.mlflow.alias, self.mlflow.registry_uri)

    @property
    def artifact_root(self) -> str | None:
        """Where MLflow stores artifacts of new experiments: inside the lake for the embedded default; None for
        a tracking server, which decides itself (``mlflow server`` proxies them: ``mlflow-artifacts:/``)."""
        if self.tracking_uri.startswith(("http://", "https://", "databricks")):
            return None
        return f"{self.lake_path}/mlartifacts"

    @property
    def media_root(self) -> str:
        return f"{self.lake_path}/media"

    @property
    def inbox(self) -> str:
        """The folder `pe ingest inbox` reads (``ingest.inbox``, else ``<lake>/inbox``)."""
        return os.path.abspath(os.path.expanduser(self.ingest.inbox)) if self.ingest.inbox else f"{self.lake_path}/inbox"

    @property
    def allowed_roots(self) -> list[str]:
        return [os.path.abspath(r) if "://" not in r else r for r in self.io.allowed_roots] or [self.lake_path]

    def scoring_plan(self, model_clip: ClipSettings | None) -> ScoringPlan:
        """This run's scoring settings over the model's saved sampling (``model_clip``: a loaded model's
        ``clip``; None when no model takes part, as in ``pe score-video --product-only``: the configured clip).
        ``pe score`` and ``pe score-video`` both build their plan here, once per run."""
        return ScoringPlan.resolve(model_clip or self.clip, window_seconds=self.clip.max_seconds,
                                   product=self.product, saliency=self.saliency, decode=self.decode)


def _format_error(err: ValidationError, source: str) -> str:
    """One line: every problem of the file, separated by ';'."""
    problems = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            problems.append(f"unknown key '{key}'")
        else:
            problems.append(f"{key}: {e['msg']} (got {_short(e.get('input'))})")
    return f"invalid configuration in {source}: " + "; ".join(problems)


#: A config file is a few KB; anything far larger is a mistake (or an attack on the parser).
MAX_CONFIG_BYTES = 256 * 1024


def _short(value: Any, limit: int = 80) -> str:
    """``repr`` of a config value cut to ``limit`` characters (an error never echoes a huge input)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors/aliases (a few hundred bytes of nested aliases expand to gigabytes) and without
    duplicate keys (YAML would silently keep the last one)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError("yaml_alias", f"YAML aliases (*{event.anchor}) are not allowed in config files "
                              f"(line {event.start_mark.line + 1}); write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, str) and key in seen:
                raise ConfigError("duplicate_key", f"key '{_short(key, 40)[1:-1]}' appears twice in one mapping of the "
                                  f"config file (lines {seen[key]} and {line}); keep one")
            if isinstance(key, str):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(e: yaml.YAMLError) -> str:
    """The parser's problem without the text it quotes from the file (which may be anything, even a secret)."""
    problem = getattr(e, "problem", None) or "syntax error"
    return re.sub(r"'(?!<)[^']*'", "…", problem)


def load_config(path: str | os.PathLike | None = None, *, lake: str | None = None,
                overrides: dict[str, Any] | None = None) -> PEConfig:
    """Read a YAML config (default ``conf/local.yaml``), apply ``lake`` and ``overrides``, validate.

    Raises :class:`ConfigError` naming the file and the unknown or mistyped key.
    """
    source = Path(path) if path is not None else DEFAULT_CONFIG_FILE
    data: dict[str, Any] = {}
    if path is not None or source.exists():
        try:
            if source.is_file() and source.stat().st_size > MAX_CONFIG_BYTES:
                raise ConfigError("file_too_large", f"config file {source} is {source.stat().st_size:,} bytes; at most "
                                  f"{MAX_CONFIG_BYTES:,} are allowed")
            text = source.read_text()
        except OSError as e:
            raise ConfigError("unreadable", f"cannot read config file {source}: {e.strerror}") from e
        except UnicodeDecodeError:
            raise ConfigError("not_utf8", f"config file {source} is not UTF-8 text") from None
        try:
            data = yaml.load(text, Loader=_NoAliasLoader) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise ConfigError("bad_yaml", f"config file {source} is not valid YAML{where}: {_yaml_problem(e)}") from None
        if not isinstance(data, dict):
            raise ConfigError("not_a_mapping", f"config file {source} must hold a mapping at the top level")
        sections = set(PEConfig.model_fields) - {"source"}
        if data and not set(map(str, data)) & sections and not any(
                difflib.get_close_matches(str(k), sections, n=1, cutoff=0.75) for k in data):
            # not a config at all (a credentials file, someone's YAML): name nothing from it; a config whose only
            # keys are misspelt sections ('lak:') still gets the unknown-key error that names them
            raise ConfigError("not_a_config", f"config file {source} is not a PE-score config: none of its "
                              f"top-level keys is a section ({', '.join(sorted(set(PEConfig.model_fields) - {'source'}))})")
    data = _deep_merge(data, overrides or {})
    if lake is not None:
        data["lake"] = lake
    try:
        cfg = PEConfig(**data)
    except ValidationError as e:
        raise ConfigError("invalid", _format_error(e, str(source))) from None
    cfg.source = str(source)
    return cfg


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out
