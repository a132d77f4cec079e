"""The lake: Delta tables, what each must hold, and what keeps them whole. Every job reads and writes through it.

    lake        the Delta facade: read, write, merge, maintain, catalog; a write conformed to its contract
    errors      LakeError and its kinds, Delta's (Java) failures translated; retries: a lost race re-run
    contracts   each table's schema, keys and NOT NULL columns; views: the analyst views by name
    integrity   do pe_scores and pe_seconds tell one story (run records); maintain: OPTIMIZE, Z-order, VACUUM;
    listings    which listing images a video is matched against, and the id of that set
    relocate    a lake moved to another folder
"""
from jobs.storage.contracts import TableContract, contract, spark_schema
from jobs.storage.errors import LakeError, NotNullViolation, SchemaMismatch, TableNotFound
from jobs.storage.lake import CommitResult, Lake, MergeResult, TableInfo
from jobs.storage.views import champion_version, current_seconds, register_views

__all__ = [
    "Lake", "TableInfo", "CommitResult", "MergeResult", "LakeError", "TableNotFound", "SchemaMismatch",
    "NotNullViolation", "TableContract", "contract", "spark_schema", "register_views", "current_seconds",
    "champion_version",
]
