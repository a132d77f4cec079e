"""The one ``spark-submit`` entry point: ``spark-submit [spark options] jobs/submit.py COMMAND [pe options]`` runs
``pe COMMAND [pe options]`` in the driver, e.g.::

    spark-submit --master yarn --jars "$(.venv/bin/python -m jobs.spark path)" \\
        --py-files dist/pe_score.zip jobs/submit.py score --config conf/cluster.yaml

``python -m jobs.submit score --config conf/cluster.yaml`` is the same. The global options (``--config``,
``--lake``, ``--debug``) may come anywhere; they are moved in front of the command, where ``pe`` takes them.
Errors are those of ``pe``: one line and its exit code.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

# Run as a file (spark-submit), Python puts this file's folder, jobs/, first on the path: the repository root
# takes its place, so that `jobs` is importable and no jobs/*.py shadows a top-level module.
if __package__ in (None, ""):
    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _here:
        del sys.path[0]
    sys.path.insert(0, os.path.dirname(_here))

from jobs.cli import GLOBAL_OPTIONS, run

__all__ = ["pe_arguments", "submit"]


def pe_arguments(argv: Sequence[str]) -> list[str]:
    """``spark-submit``'s arguments after the file → ``pe``'s: the global options first, then the rest in order."""
    args = list(argv)
    front: list[str] = []
    rest: list[str] = []
    while args:
        arg = args.pop(0)
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            front.append(arg)
            if GLOBAL_OPTIONS[name] and "=" not in arg and args:
                front.append(args.pop(0))
        else:
            rest.append(arg)
    return [*front, *rest]


def submit(argv: Sequence[str] | None = None) -> None:
    """Run ``pe`` with ``argv`` (default: this process's arguments) rearranged by :func:`pe_arguments`."""
    run(pe_arguments(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    submit()
