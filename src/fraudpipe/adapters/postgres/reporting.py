"""What the pipeline did to a batch, read from PostgreSQL with the app role.

`batch_progress` is the sensor's probe (status, rows, how many have a prediction);
`batch_outcomes` is the per-day report of the daily DAG and the demo's summary table.
A transaction scored by several model versions (the alias moved while its batch was being
scored) counts once, with its latest prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from fraudpipe.config import Settings


@dataclass(frozen=True)
class BatchProgress:
    batch_id: str
    status: str | None  # None: no such batch
    rows: int
    scored: int


@dataclass(frozen=True)
class BatchOutcome:
    """One batch's numbers: how many rows, frauds, flags, and which model versions scored it.

    Attributes:
        rows: Transactions of the batch.
        frauds: Rows labelled fraud (`label = 1`).
        scored: Rows with at least one prediction.
        flagged: Rows whose latest prediction says fraud.
        caught: Flagged rows labelled fraud.
        false_alarms: Flagged rows labelled not fraud.
        model_versions: Versions that made the latest predictions, ascending.
    """

    batch_id: str
    batch_date: date
    source: str
    is_synthetic: bool
    status: str
    rows: int
    frauds: int
    scored: int
    flagged: int
    caught: int
    false_alarms: int
    model_versions: tuple[int, ...]

    @property
    def missed(self) -> int:
        return self.frauds - self.caught

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (Airflow XCom, logs): the date as ISO text, versions as a list."""
        out = asdict(self)
        out["batch_date"] = self.batch_date.isoformat()
        out["model_versions"] = list(self.model_versions)
        out["missed"] = self.missed
        return out


_PROGRESS = sa.text(
    """
    SELECT b.status, b.row_count,
           (SELECT count(DISTINCT p.transaction_id) FROM predictions p
             WHERE p.batch_id = b.batch_id) AS scored
      FROM batches b
     WHERE b.batch_id = :batch_id
    """
)

_OUTCOMES = sa.text(
    """
    WITH latest AS (
        SELECT DISTINCT ON (p.transaction_id) p.transaction_id, p.model_version, p.is_fraud
          FROM predictions p
         WHERE p.batch_id = ANY(:batch_ids)
         ORDER BY p.transaction_id, p.scored_at DESC, p.model_version DESC
    )
    SELECT b.batch_id, b.batch_date, b.source, b.is_synthetic, b.status,
           count(t.transaction_id) AS rows,
           count(*) FILTER (WHERE t.label = 1) AS frauds,
           count(l.transaction_id) AS scored,
           count(*) FILTER (WHERE l.is_fraud) AS flagged,
           count(*) FILTER (WHERE l.is_fraud AND t.label = 1) AS caught,
           count(*) FILTER (WHERE l.is_fraud AND t.label = 0) AS false_alarms,
           coalesce(array_agg(DISTINCT l.model_version)
                    FILTER (WHERE l.model_version IS NOT NULL), '{}') AS model_versions
      FROM batches b
      JOIN transactions t ON t.batch_id = b.batch_id
      LEFT JOIN latest l ON l.transaction_id = t.transaction_id
     WHERE b.batch_id = ANY(:batch_ids)
       AND t.batch_id = ANY(:batch_ids)  -- lets the transactions index serve the join
     GROUP BY b.batch_id, b.batch_date, b.source, b.is_synthetic, b.status
     ORDER BY b.batch_date, b.batch_id
    """
)


def app_engine(settings: Settings) -> sa.Engine:
    """An engine on the pipeline database as the app role (DML only); dispose it after use."""
    from fraudpipe.adapters.postgres.connect import create_engine

    return create_engine(settings, "app")


def pipeline_counts(engine: sa.Engine) -> tuple[int, int, int]:
    """How many batches, transactions and predictions the database holds."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM batches), (SELECT count(*) FROM transactions),"
                " (SELECT count(*) FROM predictions)"
            )
        ).one()
    return int(row[0]), int(row[1]), int(row[2])


def batch_progress(engine: sa.Engine, batch_id: str) -> BatchProgress:
    """The batch's status and how many of its rows have a prediction."""
    with engine.connect() as conn:
        row = conn.execute(_PROGRESS, {"batch_id": batch_id}).one_or_none()
    if row is None:
        return BatchProgress(batch_id, None, 0, 0)
    return BatchProgress(batch_id, str(row.status), int(row.row_count), int(row.scored))


def batch_outcomes(engine: sa.Engine, batch_ids: Sequence[str]) -> list[BatchOutcome]:
    """The numbers of each listed batch that exists, oldest day first."""
    if not batch_ids:
        return []
    with engine.begin() as conn:
        # A batch is reported minutes after it was loaded and scored, before autovacuum has
        # analysed its rows: the planner then expects one prediction per batch and picks a
        # nested loop over the deduplicated predictions, which rescans them for every
        # transaction (seen: 15 minutes for one 140k-row day). Hash and merge joins cost the
        # same whatever the estimates, so nested loops are off for this transaction only.
        conn.execute(sa.text("SET LOCAL enable_nestloop = off"))
        rows = conn.execute(_OUTCOMES, {"batch_ids": list(batch_ids)}).all()
    return [
        BatchOutcome(
            batch_id=r.batch_id,
            batch_date=r.batch_date,
            source=r.source,
            is_synthetic=bool(r.is_synthetic),
            status=r.status,
            rows=int(r.rows),
            frauds=int(r.frauds),
            scored=int(r.scored),
            flagged=int(r.flagged),
            caught=int(r.caught),
            false_alarms=int(r.false_alarms),
            model_versions=tuple(sorted(int(v) for v in r.model_versions)),
        )
        for r in rows
    ]
