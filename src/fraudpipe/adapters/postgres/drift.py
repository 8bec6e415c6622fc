"""A scored batch's rows as each version scored them, and its drift (`batch_drift`,
`batch_alert_rates`, migration 0010)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa

from fraudpipe.columns import MODEL_INPUT_COLUMNS, V_COLUMNS
from fraudpipe.model.drift import VersionDrift

# Only a fixed column list is interpolated, never a value.
_SCORED_ROWS: Final = sa.text(
    f"""
    SELECT p.model_name, p.model_version,
           (extract(epoch FROM t.event_time) * 1000)::bigint AS event_time,
           t.amount, {", ".join(f"t.{c}" for c in V_COLUMNS)}, p.score, p.is_fraud
    FROM predictions p
    JOIN transactions t ON t.batch_id = p.batch_id AND t.transaction_id = p.transaction_id
    WHERE p.batch_id = :batch_id AND t.batch_id = :batch_id
    """
)
_INSERT_DRIFT: Final = sa.text(
    """
    INSERT INTO batch_drift (batch_id, model_name, model_version, feature, psi, rows,
                             measured_at)
    VALUES (:batch_id, :model_name, :model_version, :feature, :psi, :rows, :measured_at)
    ON CONFLICT (batch_id, model_version, feature) DO NOTHING
    """
)
_INSERT_ALERT_RATE: Final = sa.text(
    """
    INSERT INTO batch_alert_rates (batch_id, model_name, model_version, rows, alerts,
                                   expected_alert_rate, measured_at)
    VALUES (:batch_id, :model_name, :model_version, :rows, :alerts, :expected_alert_rate,
            :measured_at)
    ON CONFLICT (batch_id, model_version) DO NOTHING
    """
)


@dataclass(frozen=True)
class ScoredRows:
    """The rows of a batch one version scored: model inputs, scores and alerts."""

    model_name: str
    model_version: int
    columns: dict[str, npt.NDArray[np.generic]]
    scores: npt.NDArray[np.float64]
    alerts: int


def scored_rows(engine: sa.Engine, batch_id: str) -> list[ScoredRows]:
    """Each version's scored rows of ``batch_id`` (the app or reader role), oldest version
    first; empty if nothing of it was scored."""
    with engine.connect() as conn:
        frame = pd.read_sql(_SCORED_ROWS, conn, params={"batch_id": batch_id})
    found = []
    for _, part in frame.groupby("model_version", sort=True):
        found.append(
            ScoredRows(
                str(part["model_name"].iat[0]),
                int(part["model_version"].to_numpy()[0]),
                {c: part[c].to_numpy() for c in MODEL_INPUT_COLUMNS},
                part["score"].to_numpy(dtype=np.float64),
                int(part["is_fraud"].sum()),
            )
        )
    return found


def record_drift(
    engine: sa.Engine, batch_id: str, measured: Sequence[VersionDrift], at: datetime
) -> None:
    """Store each version's PSI and alert rate for ``batch_id``, in one transaction.

    Idempotent: rows already stored for a batch and version stay as they are.
    """
    drift = [
        {
            "batch_id": batch_id,
            "model_name": m.model_name,
            "model_version": m.model_version,
            "feature": feature,
            "psi": psi,
            "rows": m.rows,
            "measured_at": at,
        }
        for m in measured
        for feature, psi in m.psi.items()
    ]
    rates = [
        {
            "batch_id": batch_id,
            "model_name": m.model_name,
            "model_version": m.model_version,
            "rows": m.rows,
            "alerts": m.alerts,
            "expected_alert_rate": m.expected_alert_rate,
            "measured_at": at,
        }
        for m in measured
    ]
    if not rates:
        return
    with engine.begin() as conn:
        conn.execute(_INSERT_DRIFT, drift)
        conn.execute(_INSERT_ALERT_RATE, rates)
