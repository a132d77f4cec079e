"""Weekly retraining: build training set → train → evaluate → promote.

Every task runs one ``pe`` command of the project in its own virtual environment (see pe_common):

    build_training_set  ``pe train --features-only``  features of the labelled videos into training_clips
    train               ``pe train --no-promote``     the 3-D head on those features (reused), evaluated on the
                                                      held-out split against the @champion and a constant
                                                      baseline, logged to MLflow and registered as a new
                                                      version tagged ``pe.promotion=pending``
    evaluate            ``pe models evaluate``        the newest version's logged held-out metrics beside the
                                                      constant baseline and the champion's on the same videos,
                                                      and its promotion gate with the bootstrap intervals
    promote             ``pe models promote``         @champion moved to it only if its logged gate passed (the
                                                      gate of ``pe train``); fails if @champion moved since
                                                      ``train``
"""
from __future__ import annotations

from airflow.sdk import dag, task

from pe_common import dag_arguments, pe_task_command

#: The ``pe`` arguments of each stage.
STAGE_COMMANDS: dict[str, tuple[str, ...]] = {
    "build_training_set": ("train", "--features-only"),
    "train": ("train", "--no-promote"),
    "evaluate": ("models", "evaluate"),
    "promote": ("models", "promote"),
}


def stage_command(stage: str, params) -> str:
    return pe_task_command(params, *STAGE_COMMANDS[stage])


@dag(**dag_arguments("pe_retrain", "@weekly", __doc__))
def pe_retrain():
    @task.bash
    def build_training_set(params=None) -> str:
        """Labelled videos → frozen-backbone features in training_clips (reused when unchanged)."""
        return stage_command("build_training_set", params)

    @task.bash
    def train(params=None) -> str:
        """The 3-D head on the cached features (petastorm → PyTorch), evaluated, logged and registered in MLflow;
        promotion left pending."""
        return stage_command("train", params)

    @task.bash
    def evaluate(params=None) -> str:
        """Held-out split: the new version vs the @champion and a constant baseline (from the run's metrics)."""
        return stage_command("evaluate", params)

    @task.bash
    def promote(params=None) -> str:
        """Move @champion only if the new version beats both."""
        return stage_command("promote", params)

    build_training_set() >> train() >> evaluate() >> promote()


pe_retrain()
