"""Score a micro-batch with the serving model, vectorised, and explain its alerts.

What a model answers is checked before anything is stored: a score that is not a probability
(NaN, ±inf, outside [0, 1]) makes no prediction (`valid_scores`), and an alert's reasons are
worked out here, before the micro-batch's database transaction, so nothing about explaining
an alert can fail once it is written.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
import structlog

from fraudpipe.microbatch import AlertReasons, ScoredBatch, TransactionBatch
from fraudpipe.model.explanations import alert_drivers
from fraudpipe.model.serving import ServingModel, probabilities

log = structlog.get_logger(__name__)


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
    return probabilities(scored.scores)


def explain_alerts(model: ServingModel, scored: ScoredBatch) -> AlertReasons:
    """The drivers of each flagged row of a scored micro-batch (`alert_drivers`)."""
    rows = np.flatnonzero(scored.is_fraud)
    if not len(rows) or model.explain is None:
        return AlertReasons()
    txs = scored.transactions
    try:
        method, drivers = alert_drivers(model, {c: v[rows] for c, v in txs.columns.items()})
    except Exception as exc:  # noqa: BLE001  # a model is untrusted code: alerts go out bare
        log.warning("alert reasons failed", model_version=model.version, error=repr(exc))
        return AlertReasons()
    return AlertReasons(method, dict(zip(txs.message_rows[rows].tolist(), drivers, strict=True)))
