"""The ``pe`` command line, the top of the house: every command calls one job of the packages below.

    main       the Typer app; catches every PEError once (one line and its exit code); ``run`` is ``pe``
    commands   the commands by group (data, model, scoring) and their shared context
    demo       ``pe demo``: the whole pipeline on a fresh lake

``python -m jobs.cli`` runs it too; under ``spark-submit`` it runs through :mod:`jobs.submit`.
"""
from jobs.cli.main import GLOBAL_OPTIONS, app, error_line, run

__all__ = ["app", "run", "error_line", "GLOBAL_OPTIONS"]
