"""The engagement network: backbone registry, 3-D head, training, evaluation, MLflow registry helpers."""
