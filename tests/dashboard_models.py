"""Registered model versions for the dashboard's Models page tests, made by the real pipeline.

Two small logistic regressions are trained on synthetic days (`model_frames.synthetic_history`)
and registered through `register_and_gate` under a model name of the test's own, so the page
reads exactly what a weekly retrain writes: version tags, the promotion decision, logged plots
and a skops model with coefficients. `delete_registered_model` removes them again.
"""

from __future__ import annotations

from model_frames import synthetic_history

from fraudpipe.adapters.mlflow.registry import RegisteredVersion, register_and_gate
from fraudpipe.config import Settings
from fraudpipe.model.training import Candidate, TrainingConfig, train_model

# On this history the second configuration ranks the holdout better than the first, so the gate
# promotes it and the champion alias moves once (v1 → v2).
FIRST = TrainingConfig(candidates=(Candidate("class_weight", True, 1.0),), validation_folds=2)
SECOND = TrainingConfig(candidates=(Candidate("none", False, 0.001),), validation_folds=2)


def register_two_versions(settings: Settings) -> list[RegisteredVersion]:
    """Train and register two versions of ``settings.model_name``; returns both registrations."""
    history = synthetic_history(days=3, rows_per_day=1500, fraud_rate=0.03, seed=11)
    return [register_and_gate(train_model(history, config), settings) for config in (FIRST, SECOND)]
