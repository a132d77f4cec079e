"""Run with the Airflow environment's python (not pytest's): ``python dag_structure.py DAG_FOLDER OUT.json``
loads the DAG folder in a DagBag and writes, as JSON, the import errors, each DAG's schedule, catchup, start
date and tasks (upstream ids, retries, operator), and the top-level modules loaded by parsing."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


def main(dag_folder: str, out_path: str) -> None:
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = dag_folder
    from airflow.dag_processing.dagbag import BundleDagBag

    # as Airflow 3 parses a DAG bundle: the bundle's folder is on sys.path (the DAGs import pe_common)
    bag = BundleDagBag(dag_folder=dag_folder, bundle_path=Path(dag_folder))
    out = {"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}, "dags": {}}
    for dag_id, dag in sorted(bag.dags.items()):
        out["dags"][dag_id] = {
            "fileloc": dag.fileloc,
            "schedule": str(getattr(dag, "schedule", None)),
            "timetable": type(dag.timetable).__name__,
            "timetable_description": getattr(dag.timetable, "description", None),
            "cron": getattr(dag.timetable, "_expression", None),
            "catchup": dag.catchup,
            "start_date": dag.start_date.isoformat() if dag.start_date else None,
            "start_tz": str(dag.start_date.tzinfo) if dag.start_date else None,
            "params": sorted(dag.params.keys()),
            "tasks": {
                t.task_id: {"upstream": sorted(t.upstream_task_ids), "retries": t.retries,
                            "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
                            "operator": type(t).__name__}
                for t in dag.tasks
            },
            "topological": [t.task_id for t in dag.topological_sort()] if hasattr(dag, "topological_sort") else None,
        }
    # what parsing the DAG folder pulled in (it must stay light: no project or heavy packages at top level)
    out["modules"] = sorted({m.split(".")[0] for m in sys.modules})
    Path(out_path).write_text(json.dumps(out, indent=1, default=str))  # Airflow logs to stdout


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
