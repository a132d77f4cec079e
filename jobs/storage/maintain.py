"""Table maintenance: compact each table's small files (Z-ordered by its merge key where the contract says
so) and VACUUM files no version within the retention needs. `pe maintain`, and a nightly DAG task after
scoring; runnable as ``spark-submit jobs/submit.py maintain --config conf/cluster.yaml``.

Each nightly merge adds a few small files; without compaction reads slow down with every night, and without
VACUUM replaced files stay on disk forever. Both are safe to run at any time: OPTIMIZE commits a
re-arrangement of the same rows (readers of older versions are unaffected) and VACUUM only deletes files
older than the retention that no current version references.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from jobs.config import PEConfig
from jobs.storage import contracts
from jobs.storage.lake import Lake, TableNotFound


@dataclass
class TableMaintenance:
    table: str
    files_before: int
    files_after: int
    version_before: int
    version_after: int
    zorder_by: tuple[str, ...]
    seconds: float

    def line(self) -> str:
        z = f" z-order by {', '.join(self.zorder_by)}" if self.zorder_by else ""
        return (f"{self.table}: files {self.files_before} → {self.files_after}{z}, version {self.version_before} → "
                f"{self.version_after} ({self.seconds:.1f} s)")


def run_maintain(cfg: PEConfig, tables: list[str] | None = None, *, spark=None,
                 retention_hours: float | None = None) -> list[TableMaintenance]:
    """OPTIMIZE (+ Z-order) then VACUUM each named table (default: every table of the lake)."""
    from jobs.spark import get_spark

    lake = Lake.from_config(cfg, spark or get_spark(cfg))
    names = tables or lake.table_names()
    missing = [n for n in names if not lake.exists(n)]
    if missing:
        raise TableNotFound("table_not_found", f"no Delta table {', '.join(missing)} under {lake.root} "
                            f"(tables: {', '.join(lake.table_names()) or 'none'})")
    hours = cfg.maintain.retention_hours if retention_hours is None else retention_hours
    out = []
    for name in names:
        t0 = time.perf_counter()
        before = lake.detail(name)
        v0 = lake.version(name)
        c = contracts.CONTRACTS.get(name)
        zorder = tuple(c.cluster_by) if (c and cfg.maintain.zorder) else ()
        lake.optimize(name, zorder_by=zorder)
        lake.vacuum(name, retention_hours=hours)
        out.append(TableMaintenance(name, int(before["numFiles"]), int(lake.detail(name)["numFiles"]), v0,
                                    lake.version(name), zorder, time.perf_counter() - t0))
    return out

