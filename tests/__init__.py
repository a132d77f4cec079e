"""PE-score tests (a package, so that tests/models never shadows the project's models package)."""
