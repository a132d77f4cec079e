"""The ``pe`` command line: one Typer app over the commands of :mod:`jobs.cli.commands`.

Every command takes the global ``--config FILE``, ``--lake DIR`` and ``--debug`` options. Errors are caught
here, once: a :class:`pe_udfs.errors.PEError` (and a mistyped option) is printed as one line,
``error: <stage>: <message> [<reason>]``, and the command exits with the error's code (2: a mistake in the
command or its inputs, 1: anything else). Anything else is an internal error, also one line. ``--debug``
shows the traceback instead.

Under ``spark-submit`` the same app runs through :mod:`jobs.submit` (``spark-submit jobs/submit.py score
--config conf/cluster.yaml``).
"""
from __future__ import annotations

import atexit
import os
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn, Optional, Sequence

import typer
from typer._click import Context as ClickContext  # typer's own click: what TyperGroup.invoke is typed with
from typer.core import TyperGroup

from jobs.cli.commands import data, model, scoring
from jobs.cli.commands.context import State
from pe_udfs.errors import PEError

#: Options of the root command (taking a value: True); :mod:`jobs.submit` moves them in front of the command name.
GLOBAL_OPTIONS = {"--config": True, "-c": True, "--lake": True, "--debug": False}


def error_line(stage: str, message: str, reason: str | None = None) -> str:
    """``error: <stage>: <message> [<reason>]``; lines after a message's first are indented below it."""
    first, *rest = (message.strip() or "(no message)").splitlines()
    line = f"error: {stage}: {first}" + (f" [{reason}]" if reason else "")
    return "\n".join([line, *(f"  {r}" for r in rest)])


class OneLineErrors(TyperGroup):
    """The root group: prints errors once, on one line, unless ``--debug``."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        debug = "--debug" in args
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except typer.TyperException as e:  # a mistyped root option
            _report(e, debug)

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as e:  # any error: the one place where errors become a message and an exit code
            _report(e, getattr(ctx.obj, "debug", False))


def _report(e: Exception, debug: bool) -> NoReturn:
    if type(e).__name__ == "NoArgsIsHelpError" or debug:  # `pe ingest` alone: Typer prints the help
        raise e
    if isinstance(e, PEError):
        typer.echo(error_line(e.stage, e.message, e.reason), err=True)
        raise typer.Exit(e.exit_code)
    if isinstance(e, typer.TyperException):  # a mistyped option or argument, a value outside its choices
        typer.echo(error_line("usage", e.format_message()), err=True)
        raise typer.Exit(e.exit_code)
    typer.echo(error_line("internal", f"{type(e).__name__}: {e} (rerun with --debug for the traceback)"), err=True)
    raise typer.Exit(1)


app = typer.Typer(
    cls=OneLineErrors, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="PE-score: how much of an influencer video's engagement falls on the product.",
)


@app.callback()
def main(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file (default: conf/local.yaml)."),
    lake: Optional[str] = typer.Option(None, "--lake", help="Lake root folder or URI; overrides the config's 'lake'."),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error instead of one line."),
) -> None:
    ctx.obj = State(config, lake, debug)


app.command()(data.sample)
app.add_typer(data.ingest_app, name="ingest")
app.command()(data.tables)
app.command()(data.sql)
app.command("serve-sql")(data.serve_sql)
app.command("catalog")(data.catalog)
app.command()(data.maintain)
app.command()(data.validate)
app.command()(model.train)
app.add_typer(model.models_app, name="models")
app.command()(scoring.score)
app.command("score-video")(scoring.score_video)
app.command()(scoring.evaluate)
app.command()(scoring.advise)
app.command()(scoring.analyze)
app.command()(scoring.report)
app.command()(scoring.demo)


def run(argv: Sequence[str] | None = None) -> None:
    """The ``pe`` console script: the command, then a quick exit (:func:`_leave`)."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="pe")
        code = 0
    except SystemExit as e:
        if isinstance(e.code, str):  # sys.exit("message"): Python would print it
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    _leave(code)


def _leave(code: int) -> NoReturn:
    """Exit with ``code`` once the exit handlers ran (logging, temporary folders, MLflow), without tearing the
    interpreter down: freeing torch, MLflow, pandas and the Spark gateway's objects object by object took about
    2.5 s after every command, all of it after the work was done and written. A thread still running (not a
    daemon) gets the ordinary exit, which waits for it."""
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()  # what the interpreter would run at exit (CPython; multiprocessing exits so too)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
