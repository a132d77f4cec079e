"""Weekly retraining: build training set → train → evaluate → promote.

The stages are the model job's (jobs/train.py, ``pe train``): features of the labelled videos into
training_clips (``pe train --features-only``), the 3-D head trained on them (``pe train``, which reuses those
features), evaluation on the held-out split against the @champion and a constant baseline, and @champion moved
only if the new version beats both. Evaluation and promotion need the trained model in memory, so they run
inside the ``train`` task's process and MLflow run; their tasks end as *skipped* (exit code 99) saying so.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from pe_common import DEFAULT_ARGS, dag_params, pe_task_command

#: The ``pe`` arguments of each stage; None: the stage runs inside another task's command (said in the log).
STAGE_COMMANDS: dict[str, tuple[str, ...] | None] = {
    "build_training_set": ("train", "--features-only"),
    "train": ("train",),
    "evaluate": None,
    "promote": None,
}
SKIPPED = 99  # BashOperator's skip_on_exit_code


def stage_command(stage: str, params) -> str:
    args = STAGE_COMMANDS[stage]
    if args is None:
        return (f"echo 'stage {stage}: runs inside `pe train` (task train: evaluation on the held-out split and "
                f"the gated promotion need the trained model in memory)'; exit {SKIPPED}")
    return pe_task_command(params, *args)


@dag(
    dag_id="pe_retrain",
    schedule="@weekly",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "trigger_rule": "none_failed"},  # a skipped stage does not skip the rest
    params=dag_params(),
    tags=["pe-score"],
    doc_md=__doc__,
)
def pe_retrain():
    @task.bash
    def build_training_set(params=None) -> str:
        """Labelled videos → frozen-backbone features in training_clips (reused when unchanged)."""
        return stage_command("build_training_set", params)

    @task.bash
    def train(params=None) -> str:
        """The 3-D head on the cached features (petastorm → PyTorch), logged to MLflow."""
        return stage_command("train", params)

    @task.bash
    def evaluate(params=None) -> str:
        """Held-out split: the new version vs the @champion and a constant baseline."""
        return stage_command("evaluate", params)

    @task.bash
    def promote(params=None) -> str:
        """Move @champion only if the new version beats both."""
        return stage_command("promote", params)

    build_training_set() >> train() >> evaluate() >> promote()


pe_retrain()
