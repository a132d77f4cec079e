"""Every `pe` command, given one bad input, prints one `error: <stage>: <message> [<reason>]` line and no
traceback, and exits with the error's code; `--debug` shows the traceback instead."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from jobs.cli import app, error_line
from jobs.submit import pe_arguments
from pe_udfs.errors import PEError

PE = str(Path(sys.executable).parent / "pe")


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], int, str]]:
    """command → (arguments after --lake, exit code, text the error line must hold); none of them starts Spark."""
    bad_config = tmp / "bad.yaml"
    bad_config.write_text("lak: ./x\n")
    someone_elses = tmp / "data"
    someone_elses.mkdir()
    (someone_elses / "keep.csv").write_text("x\n")
    image = tmp / "missing.jpg"
    return {
        "tables": (["--config", str(bad_config), "tables"], 2, "error: config: "),
        "sql": (["sql", "select 1", "--format", "wide"], 2, "error: usage: "),
        "serve-sql": (["serve-sql", "--port", "1"], 1, "[no_lake]"),  # the lake is checked before the port
        "catalog": (["catalog"], 1, "[no_lake]"),
        "advise": (["--config", str(bad_config), "advise"], 2, "error: config: "),
        "maintain": (["maintain", "--retention-hours", "-1"], 2, "[bad_retention]"),
        "validate": (["validate", "--table", "no_such_table"], 2, "no_such_table"),
        "sample": (["sample", "--videos", "2", "--width", "181"], 2, "[bad_size]"),
        "ingest videos": (["ingest", "videos"], 2, "[bad_arguments]"),
        "ingest products": (["ingest", "products", "m.csv", "--folder", str(tmp)], 2, "[bad_arguments]"),
        "ingest labels": (["ingest", "labels", "--dry-run"], 2, "error: usage: "),
        "ingest sales": (["ingest", "sales", "s.csv", "--format", "wide"], 2, "error: usage: "),
        "ingest inbox": (["ingest", "inbox", "--no-such-option"], 2, "error: usage: "),
        "train": (["train", "--epochs", "0"], 2, "error: config: "),
        "train --sweep": (["train", "--sweep", str(tmp / "no-sweep.yaml")], 2, "error: sweep: "),
        "models evaluate": (["models", "evaluate", "--version", "3"], 1, "[no_registry]"),
        "models promote": (["models", "promote", "--version", "0"], 2, "error: usage: "),
        "score": (["score", "--limit", "0"], 2, "error: usage: "),
        "score-video": (["score-video", str(tmp / "v.mp4"), "--product", str(image), "--product-only"], 1,
                        "error: product: "),
        "evaluate": (["evaluate"], 1, "[no_sample_truth]"),
        "analyze": (["analyze", "--panel", str(tmp / "nope"), "--engine", "local"], 1, "[panel_not_found]"),
        "report": (["report", "--out", str(tmp / "r")], 2, "[bad_arguments]"),
        "demo": (["--lake", str(someone_elses), "demo"], 1, "[lake_not_empty]"),
    }


def test_every_command_prints_one_error_line(tmp_path):
    lake = str(tmp_path / "lake")
    runner = CliRunner()
    cases = _bad_inputs(tmp_path)
    root = typer.main.get_command(app)
    assert set(cases) >= {f"{name} {sub}".strip() for name, cmd in root.commands.items()
                          for sub in (getattr(cmd, "commands", None) or {"": None})}
    for name, (args, code, text) in cases.items():
        out = runner.invoke(app, ["--lake", lake, *args])
        lines = out.stderr.splitlines()
        assert out.exit_code == code, (name, out.exit_code, out.output)
        assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], (name, out.stderr)
        assert out.exception is None or isinstance(out.exception, SystemExit), (name, out.exception)


def test_debug_shows_the_traceback(tmp_path):
    bad = subprocess.run([PE, "--lake", str(tmp_path / "lake"), "report", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.splitlines() == [
        "error: usage: give exactly one of --video-id or --campaign [bad_arguments]"]
    debug = subprocess.run([PE, "--debug", "--lake", str(tmp_path / "lake"), "report", "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "UsageError" in debug.stderr


def test_an_unexpected_error_is_one_line_too(monkeypatch, tmp_path):
    import jobs.cli.demo

    def broken(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(jobs.cli.demo, "run_demo", broken)
    out = CliRunner().invoke(app, ["--lake", str(tmp_path / "lake"), "demo"])
    assert out.exit_code == 1 and out.stderr.splitlines() == [
        "error: internal: RuntimeError: disk on fire (rerun with --debug for the traceback)"]


def test_error_line_keeps_details_indented_below_it():
    assert error_line("model", "no champion\ncheck 1\ncheck 2", "no_champion") == \
        "error: model: no champion [no_champion]\n  check 1\n  check 2"


def test_submit_moves_the_global_options_in_front():
    argv = ["score", "--run-id", "n1", "--config", "c.yaml", "--lake=/x", "--debug", "--limit", "3"]
    assert pe_arguments(argv) == ["--config", "c.yaml", "--lake=/x", "--debug", "score", "--run-id", "n1", "--limit", "3"]


def test_the_submit_file_runs_pe_as_spark_submit_runs_it(tmp_path):
    """spark-submit runs jobs/submit.py as a file, from anywhere, with the repository on no path."""
    submit_file = Path(__file__).resolve().parents[2] / "jobs" / "submit.py"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(submit_file), "score", "--help"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--rescore" in done.stdout


def test_the_root_error_formats_as_message_and_reason():
    error = PEError("some_reason", "a message")
    assert str(error) == "a message [some_reason]" and (error.stage, error.exit_code) == ("pe", 1)
