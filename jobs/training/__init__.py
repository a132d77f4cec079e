"""Training: ``pe train``, the engagement model from the lake's labelled videos, logged and registered in MLflow.

    training_set ─► (sweep_trials: one trial per setting, optional) ─► train: fit, evaluate, gate, register

    train          the job: fit the head on cached features, evaluate on the test split, the promotion gate
    training_set   labelled videos → grouped splits → backbone features (Spark), the clip the model sees
    sweep_trials   the job's side of a hyper-parameter sweep (models.sweep fits each trial in memory)

The network, its fitting and the registry are :mod:`models`; this package reads the lake and runs them.
"""
from jobs.training.sweep_trials import TrialResult, run_sweep_trials
from jobs.training.train import TrainResult, run_training, train_overrides
from jobs.training.training_set import TrainingDataError, TrainingSet, build_training_set

__all__ = [
    "run_training", "train_overrides", "TrainResult", "TrainingDataError", "TrainingSet", "build_training_set",
    "run_sweep_trials", "TrialResult",
]
