"""Decide on transactions with the serving model: score, threshold, reasons, lineage.

The same model code and rules the stream uses: `ServingModel.score_columns` on the
transactions as columns (one vectorised call for a batch request), the decision at the
version's threshold, and, for each flagged transaction, the reasons of `alert_drivers`, as an
alert carries them. An approved transaction gets none: attributing it doubled the CPU of a
one-transaction request, for reasons nobody acts on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.errors import InvalidScoreError
from fraudpipe.model.explanations import alert_drivers
from fraudpipe.model.serving import ServingModel, probabilities
from fraudpipe.records import AlertDriver, DecisionRecord
from fraudpipe.serving.schema import Decision, Reason


def _columns(transactions: Sequence[BaseModel]) -> dict[str, npt.NDArray[Any]]:
    columns: dict[str, npt.NDArray[Any]] = {
        name: np.fromiter((getattr(t, name) for t in transactions), np.float64, len(transactions))
        for name in FEATURE_COLUMNS
    }
    columns["event_time"] = np.fromiter(
        (int(t.event_time.timestamp() * 1000) for t in transactions),  # type: ignore[attr-defined]
        np.int64,
        len(transactions),
    )
    return columns


def decide(
    model: ServingModel,
    transactions: Sequence[BaseModel],
    requests: Sequence[tuple[UUID, str]],
    *,
    decided_at: datetime,
) -> list[DecisionRecord]:
    """Score validated transactions and build their decision records, in order.

    Args:
        model: The serving model (its name, version and threshold are the lineage).
        transactions: Validated request transactions (`schema.transaction_model`), from one
            request or several.
        requests: For each transaction, the id of the request that asked and the name of
            its caller's API key.
        decided_at: The moment recorded for each (aware, UTC).

    Raises:
        InvalidScoreError: The model answered something that is not a probability.
    """
    columns = _columns(transactions)
    scores = model.score_columns(columns)
    valid = probabilities(scores)
    if not bool(valid.all()):
        bad = int(np.flatnonzero(~valid)[0])
        raise InvalidScoreError(
            str(transactions[bad].transaction_id),  # type: ignore[attr-defined]
            f"{model.name} version {model.version}",
            float(scores[bad]),
        )
    flags = model.is_fraud(scores)
    flagged = np.flatnonzero(flags)
    method = ""
    drivers: list[tuple[AlertDriver, ...]] = [()] * len(transactions)
    if len(flagged):
        method, explained = alert_drivers(model, {c: v[flagged] for c, v in columns.items()})
        for row, reasons in zip(flagged.tolist(), explained, strict=True):
            drivers[row] = reasons
    return [
        DecisionRecord(
            request_id=request_id,
            client=client,
            transaction_id=t.transaction_id,  # type: ignore[attr-defined]
            batch_id=t.batch_id,  # type: ignore[attr-defined]
            source=t.source,  # type: ignore[attr-defined]
            event_time=t.event_time,  # type: ignore[attr-defined]
            **{name: getattr(t, name) for name in FEATURE_COLUMNS},
            model_name=model.name,
            model_version=model.version,
            score=float(score),
            threshold=model.threshold,
            is_fraud=bool(flag),
            reasons_method=method,
            top_drivers=tuple(AlertDriver(d.feature, d.contribution, d.description) for d in row),
            decided_at=decided_at,
        )
        for t, (request_id, client), score, flag, row in zip(
            transactions, requests, scores, flags, drivers, strict=True
        )
    ]


def answer(record: DecisionRecord, *, replayed: bool) -> Decision:
    """The API's answer for a decision record."""
    return Decision(
        transaction_id=record.transaction_id,
        request_id=record.request_id,
        score=record.score,
        is_fraud=record.is_fraud,
        threshold=record.threshold,
        model_name=record.model_name,
        model_version=record.model_version,
        reasons=[Reason(**d.to_dict()) for d in record.top_drivers],
        reasons_method=record.reasons_method,
        decided_at=record.decided_at,
        replayed=replayed,
    )
