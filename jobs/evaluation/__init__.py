"""``pe evaluate``: PE-score held against the sample campaign's known truth (is the model's map valid?).

    against_truth   per test video, on Spark: each engagement-map method's and baseline's product share
                    against the true one (jobs.synth.truth), with bootstrap intervals ─► pe_evaluation

Not to be confused with :mod:`models.evaluate` (the regression metrics of a trained model on its test split).
"""
from jobs.evaluation.against_truth import EvaluateError, EvaluateSummary, require_truth, run_evaluate

__all__ = ["run_evaluate", "require_truth", "EvaluateSummary", "EvaluateError"]
