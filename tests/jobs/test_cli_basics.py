"""The `pe` console script as a user runs it: tables, sql, config errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PE = str(Path(sys.executable).parent / "pe")


def run_pe(*args, check=True):
    p = subprocess.run([PE, *args], capture_output=True, text=True, timeout=300)
    if check:
        assert p.returncode == 0, p.stderr[-3000:]
    return p


def test_tables_on_an_empty_lake(tmp_path):
    p = run_pe("--lake", str(tmp_path / "empty"), "tables")
    assert "(no tables)" in p.stdout


def test_misspelled_config_key_fails_with_the_key(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("lak: ./x\n")
    p = run_pe("--config", str(bad), "tables", check=False)
    assert p.returncode == 2
    assert "unknown key 'lak'" in p.stderr and str(bad) in p.stderr


@pytest.mark.slow
def test_sql_select_one_and_formats(tmp_path):
    lake = str(tmp_path / "lake")
    assert run_pe("--lake", lake, "sql", "select 1 as x").stdout.split() == ["x", "1"]
    assert run_pe("--lake", lake, "sql", "select 1 as x, 'a' as y", "--format", "csv").stdout.splitlines() == ["x,y", "1,a"]
    assert json.loads(run_pe("--lake", lake, "sql", "select 2 as x", "--format", "json").stdout) == {"x": 2}
    bad = run_pe("--lake", lake, "sql", "select * from no_such_table", check=False)
    assert bad.returncode == 1 and "no_such_table" in bad.stderr


@pytest.mark.slow
def test_sparks_progress_bar_stays_out_of_a_log_file(tmp_path):
    """stderr to a file (a scheduler's log): a multi-second stage draws no '[Stage N:' bar there."""
    repo = Path(__file__).resolve().parents[2]
    script = (
        "from jobs.config import load_config\n"
        "from jobs.spark import get_spark\n"
        f"cfg = load_config(lake={str(tmp_path / 'lake')!r}, overrides={{'spark': {{'master': 'local[1]', "
        "'show_progress': True, 'shuffle_partitions': 1}})\n"
        "spark = get_spark(cfg)\n"
        "spark.range(0, 3, 1, 3).selectExpr(\"java_method('java.lang.Thread', 'sleep', 1500L)\").collect()\n"
        "print('done')\n")
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        p = subprocess.run([sys.executable, "-c", script], cwd=repo, stdout=subprocess.PIPE, stderr=err, text=True,
                           timeout=300, env={**__import__("os").environ, "PYTHONPATH": str(repo)})
    assert p.returncode == 0 and p.stdout.strip() == "done", log.read_text()[-2000:]
    assert "[Stage" not in log.read_text(), log.read_text()[-2000:]
