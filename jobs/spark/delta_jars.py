"""Delta Lake's JARs for Spark: fetched once at install, found at run time, never downloaded by a job.

``python -m jobs.spark install`` copies the Maven artifacts listed in ``requirements/delta-jars.txt``
into the virtual environment (``<venv>/share/pe-score/jars``) with Maven (``mvn dependency:copy``), or
from a folder that already holds them (``PE_DELTA_JARS_DIR``) on a machine without Maven Central.
:func:`jar_paths` gives :mod:`jobs.spark.session` the files for ``spark.jars``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pe_udfs.errors import PEError

REPO_ROOT = Path(__file__).resolve().parents[2]
COORDINATES_FILE = REPO_ROOT / "requirements" / "delta-jars.txt"
JARS_DIR = Path(sys.prefix) / "share" / "pe-score" / "jars"


class DeltaJarsMissing(PEError):
    """The Delta JARs are not installed (and cannot be fetched); the message says how to supply them."""

    stage = "setup"


def coordinates(path: Path = COORDINATES_FILE) -> list[str]:
    """Maven coordinates ``group:artifact:version`` from the pinned list (comments and blanks skipped)."""
    lines = (ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines())
    return [ln for ln in lines if ln]


def jar_name(coordinate: str) -> str:
    """``io.delta:delta-storage:4.0.1`` → ``delta-storage-4.0.1.jar``."""
    _, artifact, version = coordinate.split(":")
    return f"{artifact}-{version}.jar"


def _how_to_supply(missing: list[str], folder: Path) -> str:
    return (f"missing Delta JARs in {folder}: {', '.join(missing)}. Run `make install` on a machine that "
            f"reaches Maven Central (it runs `python -m jobs.spark install`), or put the JARs in a folder "
            f"and run `PE_DELTA_JARS_DIR=/that/folder python -m jobs.spark install`, or set "
            f"`spark.conf.spark.jars` in the config to their paths.")


def jar_paths(folder: Path = JARS_DIR) -> list[str]:
    """Absolute paths of the installed JARs; :class:`DeltaJarsMissing` naming what is missing."""
    wanted = [jar_name(c) for c in coordinates()]
    missing = [n for n in wanted if not (folder / n).is_file()]
    if missing:
        raise DeltaJarsMissing("jars_missing", _how_to_supply(missing, folder))
    return [str(folder / n) for n in wanted]


def install(folder: Path = JARS_DIR, source_dir: str | None = None) -> list[str]:
    """Put every pinned JAR into ``folder`` (a no-op for those already there); return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    source_dir = source_dir or os.environ.get("PE_DELTA_JARS_DIR")
    for coord in coordinates():
        name = jar_name(coord)
        if (folder / name).is_file():
            continue
        if source_dir:
            src = Path(source_dir) / name
            if not src.is_file():
                raise DeltaJarsMissing("jars_missing", _how_to_supply([name], Path(source_dir)))
            shutil.copy2(src, folder / name)
        else:
            _maven_copy(coord, folder)
    return jar_paths(folder)


def _maven_copy(coord: str, folder: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DeltaJarsMissing("no_maven", "Maven (`mvn`) is not installed, so the Delta JARs cannot be fetched. "
                               + _how_to_supply([jar_name(coord)], folder))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={coord}", f"-DoutputDirectory={tmp}",
               "-Dmdep.overWriteReleases=true"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        fetched = Path(tmp) / jar_name(coord)
        if proc.returncode != 0 or not fetched.is_file():
            detail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
            raise DeltaJarsMissing("fetch_failed", f"Maven could not fetch {coord}: {' | '.join(detail) or 'no output'}. "
                                   + _how_to_supply([jar_name(coord)], folder))
        shutil.move(str(fetched), folder / jar_name(coord))
