"""One retrain, start to finish: skip if already done, else train, register and gate.

Shared by the weekly Prefect flow and `fraudpipe train`, so both are thin and behave alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fraudpipe.adapters.mlflow.registry import RegisteredVersion, find_registered, register_and_gate
from fraudpipe.config import Settings
from fraudpipe.model.point_in_time import LabelCut
from fraudpipe.model.training import (
    ProgressCallback,
    TrainingConfig,
    TrainingResult,
    TrainingSet,
    fingerprint,
    train_model,
)


@dataclass(frozen=True)
class RetrainOutcome:
    """The registered version, and the fresh training result unless an earlier one was reused."""

    registered: RegisteredVersion
    result: TrainingResult | None


def retrain(
    history: pd.DataFrame,
    config: TrainingConfig,
    settings: Settings,
    on_progress: ProgressCallback | None = None,
    cut: LabelCut | None = None,
) -> RetrainOutcome:
    """Train on ``history`` and register the version, unless this exact training already ran.

    The fingerprint covers the rows (as a set) and the configuration, so a re-run on unchanged
    data returns the version registered before without spending the search again.

    Args:
        history: The labelled frame to train on.
        config: Everything besides the data that decides the model.
        settings: Where MLflow is, and the gate's settings.
        on_progress: Called as ``(what, done, total)`` while the search runs.
        cut: The moment ``history`` was read as of (`read_labelled_history`), for the record.

    Raises:
        TrainingDataError: The history cannot be trained or evaluated on.
        ServiceUnavailableError: MLflow is not reachable.
    """
    rows = TrainingSet.of(history)
    earlier = find_registered(settings, fingerprint(rows.digest, config))
    if earlier is not None:
        return RetrainOutcome(earlier, None)
    result = train_model(rows, config, on_progress, cut)
    return RetrainOutcome(register_and_gate(result, settings), result)
