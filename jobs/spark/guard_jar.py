"""The SQL guard's JAR (``jobs/sql/java/pe/sqlguard``): compiled once against pyspark's own JARs, found at run time.

``python -m jobs.spark install`` (run by ``make install``) compiles the Java sources with the JDK's ``javac``
into ``<venv>/share/pe-score/jars/pe-sql-guard-<hash>.jar``; the hash is of the sources and the Spark version,
so an edited source gets a new JAR. :func:`jar_path` gives :mod:`jobs.spark.session` the JAR, building it on first use
when ``javac`` is there; without it, sessions start without the guard and ``pe sql`` refuses every statement.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from jobs.spark.delta_jars import JARS_DIR
from pe_udfs.errors import PEError

#: The guard's Java sources live with the SQL guard they implement.
SOURCES_DIR = Path(__file__).resolve().parents[1] / "sql" / "java"
#: The class named in ``spark.sql.extensions``.
EXTENSION = "pe.sqlguard.GuardExtension"


class GuardJarMissing(PEError):
    """The guard's JAR cannot be built (no ``javac``, or it failed); the message says what to install."""

    stage = "setup"


def _sources() -> list[Path]:
    return sorted(SOURCES_DIR.rglob("*.java"))


def _spark_jars() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "jars"


def jar_file(folder: Path = JARS_DIR) -> Path:
    """Where the JAR of the current sources lives (built or not)."""
    import pyspark

    digest = hashlib.md5(pyspark.__version__.encode())
    for src in _sources():
        digest.update(src.read_bytes())
    return folder / f"pe-sql-guard-{digest.hexdigest()[:12]}.jar"


def build(folder: Path = JARS_DIR) -> Path:
    """Compile the sources against pyspark's JARs into :func:`jar_file` (a no-op when it exists)."""
    target = jar_file(folder)
    if target.is_file():
        return target
    javac = shutil.which("javac")
    if javac is None:
        raise GuardJarMissing("no_javac", "the SQL guard needs a JDK to build (javac not found): install "
                              "openjdk-17-jdk-headless (macOS: brew install openjdk@17) and run `make install`")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [javac, "-nowarn", "--release", "17", "-d", tmp, "-cp", str(_spark_jars() / "*"),
               *map(str, _sources())]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise GuardJarMissing("javac_failed", "javac failed on the SQL guard: "
                                  + " | ".join((proc.stdout + proc.stderr).strip().splitlines()[:5]))
        partial = folder / f".{target.name}.{os.getpid()}.partial"  # two installs at once: the last rename wins
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as jar:
            for cls in sorted(Path(tmp).rglob("*.class")):
                jar.write(cls, cls.relative_to(tmp).as_posix())
        partial.replace(target)
    return target


def jar_path() -> str | None:
    """The guard's JAR, built if needed; None when it cannot be built (the session then has no guard)."""
    try:
        return str(build())
    except GuardJarMissing:
        return None
