"""The ``pe`` command line. Every command takes the global ``--config FILE`` and ``--lake DIR`` options.

Commands are thin: they load the one config object, then call a job function that does the work.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import typer

from jobs.config import ConfigError, PEConfig, load_config

app = typer.Typer(
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="PE-score: how much of an influencer video's engagement falls on the product.",
)


@dataclass
class State:
    config_path: Optional[Path] = None
    lake: Optional[str] = None
    _cfg: Optional[PEConfig] = field(default=None, repr=False)

    @property
    def cfg(self) -> PEConfig:
        if self._cfg is None:
            try:
                self._cfg = load_config(self.config_path, lake=self.lake)
            except ConfigError as e:
                fail(str(e), code=2)
        return self._cfg


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def state(ctx: typer.Context) -> State:
    return ctx.find_root().obj


@app.callback()
def main(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file (default: conf/local.yaml)."),
    lake: Optional[str] = typer.Option(None, "--lake", help="Lake root folder or URI; overrides the config's 'lake'."),
) -> None:
    ctx.obj = State(config, lake)


def open_lake(ctx: typer.Context, with_spark: bool = True):
    """The lake of the current config, with a Spark session when the command needs one."""
    from jobs.lake import Lake
    from jobs.spark import get_spark

    cfg = state(ctx).cfg
    return Lake.from_config(cfg, get_spark(cfg) if with_spark else None)


@app.command()
def tables(ctx: typer.Context) -> None:
    """List the lake's Delta tables with version, row count and files."""
    from jobs.lake import LakeError

    lake = open_lake(ctx, with_spark=False)
    try:
        infos = lake.tables()
    except LakeError as e:
        fail(str(e))
    typer.echo(f"lake: {lake.root}")
    if not infos:
        typer.echo("(no tables)")
        return
    w = max(len(i.name) for i in infos)
    typer.echo(f"{'table'.ljust(w)}  version      rows  files  partitioned by")
    for i in infos:
        typer.echo(f"{i.name.ljust(w)}  {i.version:>7}  {i.rows:>8}  {i.files:>5}  {', '.join(i.partition_by) or '-'}")


@app.command()
def sql(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="Spark SQL; every lake table (and analyst view) is a view by its name."),
    format: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
    limit: int = typer.Option(1000, help="Rows to print at most."),
) -> None:
    """Run a SQL query over the lake's tables and print the result."""
    from pyspark.errors import AnalysisException, ParseException

    from jobs.views import register_views

    if format not in ("table", "csv", "json"):
        fail(f"--format must be table, csv or json, not {format!r}", code=2)
    lake = open_lake(ctx)
    register_views(lake)
    try:
        df = lake.spark.sql(query)
        rows = df.limit(limit + 1).toPandas()
    except (AnalysisException, ParseException) as e:
        fail(f"query failed: {e.getMessage() if hasattr(e, 'getMessage') else e}")
    truncated = len(rows) > limit
    rows = rows.head(limit)
    if format == "csv":
        sys.stdout.write(rows.to_csv(index=False))
    elif format == "json":
        for rec in json.loads(rows.to_json(orient="records", date_format="iso")):
            typer.echo(json.dumps(rec))
    else:
        typer.echo(rows.to_string(index=False) if len(rows.columns) else "(no columns)")
    if truncated:
        typer.echo(f"(first {limit} rows shown; use --limit)", err=True)


if __name__ == "__main__":
    app()
