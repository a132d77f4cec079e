"""MLflow "models from code" entry of the engagement model (pyfunc flavour, for MLflow tooling and serving).

MLflow stores this file with the model instead of a pickled object. Its ``load_context`` rebuilds the network
from the logged config + state dict exactly as :func:`models.stored_model.load_model` does (the
``pe-score`` package must be installed). PE-score itself never loads models through this file.

    predict(clips (B, S, 3, H, W) float32 RGB in [0, 1]) → (B,) float32 predicted engagement
"""
from __future__ import annotations

import numpy as np
import torch
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from models.stored_model import build_from_files


class EngagementPyfunc(PythonModel):
    _skip_type_hint_validation = True  # the logged tensor signature describes the input; no type-hint checks

    def load_context(self, context) -> None:
        self.net = build_from_files(context.artifacts["config"], context.artifacts["weights"], device="auto")

    def predict(self, context, model_input, params=None):  # pyfunc signature
        if isinstance(model_input, dict):  # a named-tensor input
            (model_input,) = model_input.values()
        clips = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        device = next(self.net.parameters()).device
        with torch.inference_mode():
            return self.net(clips.to(device)).float().cpu().numpy()


set_model(EngagementPyfunc())
