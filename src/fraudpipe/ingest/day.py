"""One day batch, written in one PostgreSQL transaction, whatever the source.

Each day of a source is one batch, written in one transaction: the batch row, its rows (binary
COPY) and its quarantined rows. A failure leaves no half batch. Ingesting a day again is a
no-op that says so; two ingests of one day at once serialise on an advisory lock on the batch
id, and the second finds the first one's batch. A file that overlaps rows loaded before adds
only its new rows, and only while the batch is still `loaded` (a published batch is closed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

from fraudpipe.adapters.postgres.batches import Batch, BatchRepository, BatchStatus
from fraudpipe.adapters.postgres.bulk_load import (
    Conflict,
    count_new_transactions,
    load_transactions,
    merge_transactions,
    source_row_span,
    transaction_payload,
)
from fraudpipe.adapters.postgres.connect import Connection, connect
from fraudpipe.adapters.postgres.quarantine import quarantine_rows
from fraudpipe.config import Settings
from fraudpipe.data.days import DayBatch, QuarantineRecord
from fraudpipe.errors import BatchClosedError, IngestRequestError
from fraudpipe.ingest.reports import BatchOutcome, BatchReport, IngestProgress


def check_requested_days(
    source: str,
    requested: Iterable[date] | None,
    holds: Callable[[date], bool],
    held: Iterable[date] | None = None,
) -> None:
    """Refuse a request for a day the source does not hold, before anything is written.

    Args:
        source: The source's name (for the message).
        requested: The days asked for; None asks for all the source holds.
        holds: Whether the source holds a day.
        held: The days the source holds, when it can list them (for the message).

    Raises:
        IngestRequestError: A requested day is not in the source.
    """
    missing = sorted(d for d in set(requested or ()) if not holds(d))
    if not missing:
        return
    listing = ""
    if held is not None:
        listing = f" (days it holds: {', '.join(d.isoformat() for d in held) or 'none'})"
    raise IngestRequestError(
        f"{source} holds no rows for {', '.join(d.isoformat() for d in missing)}{listing}: "
        "nothing was ingested"
    )


def load_day(
    conn: Connection,
    source: str,
    is_synthetic: bool,
    batch: DayBatch,
    progress: IngestProgress | None = None,
) -> BatchReport:
    """Write one day batch in one transaction (see the module docstring for the cases).

    Args:
        conn: An autocommit connection (the transaction is opened here).
        source: The source's name.
        is_synthetic: Stored on the batch row.
        batch: The day's rows and rejections.
        progress: Optional progress hooks.

    Raises:
        BatchClosedError: The batch is past `loaded` and `batch` holds rows it lacks.
    """
    payload = transaction_payload(batch)
    digest = payload.sha256()
    on_rows = (lambda sent: progress.rows_sent(batch.batch_id, sent)) if progress else None
    if progress:
        progress.batch_started(batch.batch_id, batch.rows)
    span = source_row_span(batch)
    with conn.transaction():
        repo = BatchRepository(conn)
        repo.lock(batch.batch_id)
        existing = repo.get(batch.batch_id)
        outcome: BatchOutcome
        loaded = 0
        conflicts: list[Conflict] = []
        if batch.rows == 0:
            outcome = "nothing valid"
        elif existing is None:
            repo.create(
                batch_id=batch.batch_id,
                source=source,
                batch_date=batch.day,
                is_synthetic=is_synthetic,
                row_count=batch.rows,
                content_sha256=digest,
                source_rows=span,
            )
            result = load_transactions(conn, batch, source, payload, on_rows)
            loaded, conflicts = result.inserted, result.conflicts
            if loaded != batch.rows:
                repo.record_rows(batch.batch_id, row_count=loaded, content_sha256=digest)
            outcome = "loaded"
        elif existing.content_sha256 == digest:
            outcome = "unchanged"
        elif existing.status is not BatchStatus.LOADED:
            new_rows, conflicts = count_new_transactions(conn, batch, source, payload)
            if new_rows:
                raise BatchClosedError(batch.batch_id, existing.status.value, new_rows)
            outcome = "unchanged"
        else:
            loaded, conflicts = merge_transactions(conn, batch, source, payload, on_rows)
            repo.record_rows(
                batch.batch_id,
                row_count=existing.row_count + loaded,
                content_sha256=digest,
                source_rows=span,
            )
            outcome = "extended" if loaded else "unchanged"
        conflicting = conflict_records(batch.batch_id, source, conflicts)
        after = close_batch(conn, batch.batch_id, [*batch.quarantined, *conflicting])
    return finished_batch(
        batch.batch_id,
        batch.day,
        outcome,
        after,
        valid=batch.rows,
        loaded=loaded,
        quarantined=len(batch.quarantined),
        conflicts=len(conflicting),
        frauds=batch.frauds,
        progress=progress,
    )


def conflict_records(
    batch_id: str, source: str, conflicts: list[Conflict]
) -> list[QuarantineRecord]:
    """Rows whose id is loaded already with other content, as quarantine records holding both
    versions: the stored row stands, and nothing is skipped without a trace."""
    return [
        QuarantineRecord(
            batch_id,
            source,
            c.source_row,
            f"conflict: its id is loaded already with other content (batch {c.stored_batch}, "
            f"row {c.stored_row}); the stored row stands, both versions are kept here",
            {"received": c.received, "stored": c.stored},
        )
        for c in conflicts
    ]


def close_batch(
    conn: Connection, batch_id: str, quarantined: list[QuarantineRecord]
) -> Batch | None:
    """The last writes of a day's transaction: its rejected rows, and their count on the batch.

    Returns:
        The batch row as it now stands (None when the day has no batch: nothing valid).
    """
    quarantine_rows(conn, quarantined)
    repo = BatchRepository(conn)
    repo.refresh_quarantined_count(batch_id)
    return repo.get(batch_id)


def finished_batch(
    batch_id: str,
    day: date,
    outcome: BatchOutcome,
    after: Batch | None,
    *,
    valid: int,
    loaded: int,
    quarantined: int,
    frauds: int,
    progress: IngestProgress | None,
    conflicts: int = 0,
) -> BatchReport:
    """The report of a day whose transaction committed, told to the progress display.

    Valid rows not loaded were there already: identical (duplicates) or, `conflicts` of them,
    with other content (quarantined as conflicts).
    """
    report = BatchReport(
        batch_id=batch_id,
        day=day,
        outcome=outcome,
        status=after.status if after else None,
        rows_read=valid + quarantined,
        loaded=loaded,
        duplicates_skipped=valid - loaded - conflicts,
        quarantined=quarantined + conflicts,
        frauds=frauds,
    )
    if progress:
        progress.batch_finished(report)
    return report


def quarantine_unplaced(settings: Settings, source: str, records: list[QuarantineRecord]) -> int:
    """Rejected rows whose day cannot be told (unreadable ``Time``): their own transaction.

    Connects only when there are such rows: the usual ingest has none, and a connection at
    its very end is waited for.
    """
    if not records:
        return 0
    with connect(settings, autocommit=True) as conn, conn.transaction():
        BatchRepository(conn).lock(f"quarantine:{source}")
        quarantine_rows(conn, records)
    return len(records)
