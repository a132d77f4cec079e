"""The ``pe`` commands, by group; :mod:`jobs.cli` wires them into one Typer app.

    context   the global options (config, lake, --debug) and the lake a command opens
    data      sample, ingest …, tables, sql, maintain, validate: the lake's tables
    model     train, models (list / evaluate / promote): the engagement model in MLflow
    scoring   score, score-video, evaluate, analyze, report, demo: what the model says about videos

Each command is thin: it loads the one config object, calls a job function that does the work and prints its
summary. Commands raise, they never print errors: :mod:`jobs.cli` catches every
:class:`pe_udfs.errors.PEError` once and prints it on one line.
"""
