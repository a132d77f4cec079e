"""``python -m jobs.cli …`` is ``pe …``."""
from jobs.cli.main import run

run()
