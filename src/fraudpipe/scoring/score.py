"""Score a micro-batch with the serving model, vectorised, and explain its alerts.

What a model answers is checked before anything is stored: a score that is not a probability
(NaN, ±inf, outside [0, 1]) makes no prediction (`valid_scores`), and an alert's reasons are
worked out here, before the micro-batch's database transaction, so nothing about explaining
an alert can fail once it is written.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudpipe.microbatch import ScoredBatch, TransactionBatch
from fraudpipe.model.serving import ServingModel
from fraudpipe.records import AlertDriver

#: How many inputs an alert names as the reasons for its score.
TOP_DRIVERS: Final = 3


def score_batch(model: ServingModel, batch: TransactionBatch, scored_at: datetime) -> ScoredBatch:
    """One `predict_proba` call for the whole micro-batch, and the decisions at the threshold.

    Args:
        model: The serving model (its version and threshold become the lineage).
        batch: The decoded transactions.
        scored_at: The instant recorded for every row (aware, UTC).

    Returns:
        Scores, decisions and per-row latency from the Kafka record timestamp to `scored_at`.
    """
    scores = model.score_columns(batch.columns) if len(batch) else np.empty(0, dtype=np.float64)
    scored_ms = scored_at.timestamp() * 1000.0
    latency = scored_ms - batch.record_timestamps_ms.astype(np.float64)
    return ScoredBatch(
        transactions=batch,
        scores=scores,
        is_fraud=model.is_fraud(scores),
        model_name=model.name,
        model_version=model.version,
        threshold=model.threshold,
        scored_at=scored_at,
        latency_ms=latency,
    )


def valid_scores(scored: ScoredBatch) -> npt.NDArray[np.bool_]:
    """Per row, whether the model's answer is a probability: finite and in [0, 1]."""
    scores = scored.scores
    return np.asarray(np.isfinite(scores) & (scores >= 0.0) & (scores <= 1.0), dtype=np.bool_)


#: The reasons of a micro-batch's alerts, by the flagged row's position in the micro-batch's
#: messages (`TransactionBatch.message_rows`: it survives rows being set aside later).
AlertReasons = dict[int, tuple[AlertDriver, ...]]


def explain_alerts(model: ServingModel, scored: ScoredBatch) -> AlertReasons:
    """The drivers of each flagged row of a scored micro-batch (`alert_drivers`)."""
    rows = np.flatnonzero(scored.is_fraud)
    if not len(rows):
        return {}
    txs = scored.transactions
    drivers = alert_drivers(model, {c: v[rows] for c, v in txs.columns.items()})
    return dict(zip(txs.message_rows[rows].tolist(), drivers, strict=True))


def alert_drivers(
    model: ServingModel, inputs: pd.DataFrame | Mapping[str, npt.NDArray[Any]]
) -> list[tuple[AlertDriver, ...]]:
    """Per row, the inputs that pushed its log-odds up most (largest first).

    For a linear classifier at the end of the pipeline, an input's contribution is its
    transformed value times its coefficient. Other models cannot attribute their score this
    way; their alerts carry no drivers (the contract's documented empty list).

    Args:
        model: The serving model.
        inputs: Model-input rows of the alerts (a handful per micro-batch), as a frame or
            as arrays by column.

    Returns:
        One tuple of up to `TOP_DRIVERS` positive contributions per row. A contribution that
        is not finite (a degenerate model) cannot be stated: it is left out, and the alert
        still goes out with the reasons that can be given.
    """
    contributions: npt.NDArray[np.float64] | None
    if model.linear is not None:
        linear = model.linear
        columns = linear.columns_of(inputs) if isinstance(inputs, pd.DataFrame) else inputs
        contributions, names = linear.contributions(columns), linear.feature_names
    else:
        frame = inputs if isinstance(inputs, pd.DataFrame) else pd.DataFrame(dict(inputs))
        contributions, names = _linear_contributions(model.pipeline, frame)
        if contributions is None:
            return [() for _ in range(len(frame))]
    # One sort for the whole matrix; stable, so tied inputs keep their column order.
    top = np.argsort(-contributions, axis=1, kind="stable")[:, :TOP_DRIVERS]
    values = np.take_along_axis(contributions, top, axis=1)
    return [
        tuple(
            AlertDriver(names[j], v) for j, v in zip(cols, vals, strict=True) if 0.0 < v < math.inf
        )
        for cols, vals in zip(top.tolist(), values.tolist(), strict=True)
    ]


def _linear_contributions(
    pipeline: Any, frame: pd.DataFrame
) -> tuple[npt.NDArray[np.float64] | None, list[str]]:
    # A linear pipeline that `compile_linear` does not take (a transform of its own).
    steps = getattr(pipeline, "steps", None)
    if not steps or len(steps) < 2:
        return None, []
    classifier = steps[-1][1]
    coef = getattr(classifier, "coef_", None)
    if coef is None or np.ndim(coef) != 2 or coef.shape[0] != 1:
        return None, []
    features = pipeline[:-1]
    transformed = np.asarray(features.transform(frame), dtype=np.float64)
    names = [str(n) for n in features.get_feature_names_out()]
    return transformed * np.asarray(coef[0], dtype=np.float64), names
