"""Daily ingestion: source → validate → ids → one PostgreSQL transaction per day batch.

Each day of a source is one batch, written in one transaction: the batch row, its rows (binary
COPY) and its quarantined rows. A failure leaves no half batch. Ingesting a day again is a
no-op that says so; two ingests of one day at once serialise on an advisory lock on the batch
id, and the second finds the first one's batch. A file that overlaps rows loaded before adds
only its new rows, and only while the batch is still `loaded` (a published batch is closed).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol, TypedDict

import structlog

from fraudpipe.config import Settings
from fraudpipe.data.days import DayBatch, PreparedSource, QuarantineRecord, prepare
from fraudpipe.data.sources import ChunkedSource, Source
from fraudpipe.db.batches import Batch, BatchRepository, BatchStatus
from fraudpipe.db.bulk_load import (
    count_new_transactions,
    load_transactions,
    merge_transactions,
    source_row_span,
    transaction_payload,
)
from fraudpipe.db.connect import Connection, connect
from fraudpipe.db.quarantine import quarantine_rows
from fraudpipe.errors import BatchClosedError, IngestRequestError

BatchOutcome = Literal["loaded", "unchanged", "extended", "nothing valid"]


@dataclass(frozen=True)
class BatchReport:
    """What ingesting one day did.

    Attributes:
        batch_id: ``<source>:<day>``.
        day: The calendar day (UTC).
        outcome: ``loaded`` (new batch), ``unchanged`` (already there: nothing added),
            ``extended`` (new rows added to a batch still `loaded`), ``nothing valid`` (every
            row of the day was quarantined; no batch).
        status: The batch's status afterwards (None when there is no batch).
        rows_read: The day's rows in the source, valid or not.
        loaded: Rows added to `transactions`.
        duplicates_skipped: Valid rows whose id was already loaded.
        quarantined: The day's rejected rows (already quarantined before or not).
        frauds: Valid rows labelled fraud.
    """

    batch_id: str
    day: date
    outcome: BatchOutcome
    status: BatchStatus | None
    rows_read: int
    loaded: int
    duplicates_skipped: int
    quarantined: int
    frauds: int


@dataclass(frozen=True)
class IngestReport:
    """What one ingest run did, per batch and in total."""

    source: str
    is_synthetic: bool
    batches: list[BatchReport]
    unplaced_quarantined: int

    @property
    def rows_read(self) -> int:
        return sum(b.rows_read for b in self.batches) + self.unplaced_quarantined

    @property
    def loaded(self) -> int:
        return sum(b.loaded for b in self.batches)

    @property
    def duplicates_skipped(self) -> int:
        return sum(b.duplicates_skipped for b in self.batches)

    @property
    def quarantined(self) -> int:
        return sum(b.quarantined for b in self.batches) + self.unplaced_quarantined

    def summary_line(self) -> str:
        """One line for people: the source (marked SYNTHETIC when it is) and the counts."""
        kind = " [SYNTHETIC]" if self.is_synthetic else ""
        unchanged = sum(b.outcome == "unchanged" for b in self.batches)
        note = f" ({unchanged} already loaded: nothing to add)" if unchanged else ""
        return (
            f"{self.source}{kind}: {len(self.batches)} batch(es){note}; rows read "
            f"{self.rows_read:,}, loaded {self.loaded:,}, duplicates skipped "
            f"{self.duplicates_skipped:,}, quarantined {self.quarantined:,}"
        )

    def as_summary(self) -> IngestSummary:
        """The report as plain, JSON-ready data."""
        return IngestSummary(
            source=self.source,
            synthetic=self.is_synthetic,
            batches=[
                BatchSummary(
                    batch_id=b.batch_id,
                    outcome=b.outcome,
                    status=b.status.value if b.status else None,
                    rows_read=b.rows_read,
                    loaded=b.loaded,
                    duplicates_skipped=b.duplicates_skipped,
                    quarantined=b.quarantined,
                )
                for b in self.batches
            ],
            rows_read=self.rows_read,
            loaded=self.loaded,
            duplicates_skipped=self.duplicates_skipped,
            quarantined=self.quarantined,
            summary=self.summary_line(),
        )


class BatchSummary(TypedDict):
    """`BatchReport` as plain data (what a Prefect flow returns)."""

    batch_id: str
    outcome: str
    status: str | None
    rows_read: int
    loaded: int
    duplicates_skipped: int
    quarantined: int


class IngestSummary(TypedDict):
    """`IngestReport` as plain data (what a Prefect flow returns)."""

    source: str
    synthetic: bool
    batches: list[BatchSummary]
    rows_read: int
    loaded: int
    duplicates_skipped: int
    quarantined: int
    summary: str


class IngestProgress(Protocol):
    """Hooks for a progress display (the CLI's rich bar); the core never draws anything."""

    def batch_started(self, batch_id: str, rows: int) -> None:
        """A batch's rows are about to be sent."""

    def rows_sent(self, batch_id: str, sent: int) -> None:
        """`sent` rows of the current COPY are on their way (restarts at 0 on the dedup path)."""

    def batch_finished(self, report: BatchReport) -> None:
        """The batch's transaction committed."""


def ingest(
    settings: Settings,
    source: Source,
    days: Sequence[date] | None = None,
    progress: IngestProgress | None = None,
    *,
    workers: int = 1,
) -> IngestReport:
    """Ingest some days of a source (all it holds when `days` is None).

    Args:
        settings: Where the database is (the app role writes).
        source: The source.
        days: Calendar days (UTC) to ingest; None for every day the source holds.
        progress: Optional progress hooks.
        workers: Days loaded at the same time, each on its own connection (backfills of many
            days); the work per row is mostly the server's, so more workers than the server
            has cores does not help.

    Returns:
        Per-batch and total counts, batches in day order.

    Raises:
        IngestRequestError: A requested day is not in the source (nothing is written).
        BatchClosedError: New rows for a day whose batch is already published (that day is
            not written; other days are).
        SourceReadError, SourceColumnsError, EmptySourceError, DatasetError: The source
            itself is unusable (nothing is written).
    """
    if isinstance(source, ChunkedSource):
        # Imported here: that module builds on this one's reports and `load_day`.
        from fraudpipe.ingest_streaming import ingest_chunked

        return ingest_chunked(settings, source, days, progress, workers=workers)
    raw = source.read(days)
    prepared = prepare(source.name, raw)
    batches = _requested(prepared, days)
    log_start(source, [b.day for b in batches], workers)

    def load(todo: list[DayBatch]) -> list[BatchReport]:
        done = []
        with connect(settings, autocommit=True) as conn:
            for batch in todo:
                report = load_day(conn, source.name, source.is_synthetic, batch, progress)
                log_batch(report, source.is_synthetic)
                done.append(report)
        return done

    lanes = max(1, min(workers, len(batches)))
    if lanes == 1:
        reports = load(batches)
    else:
        # Day i goes to lane i % lanes; each lane is one connection working through its days.
        with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="ingest") as pool:
            futures = [pool.submit(load, batches[i::lanes]) for i in range(lanes)]
            reports = sorted((r for f in futures for r in f.result()), key=lambda r: r.day)
    unplaced = quarantine_unplaced(settings, source.name, prepared.unplaced)
    result = IngestReport(source.name, source.is_synthetic, reports, unplaced)
    log_done(result)
    return result


def log_start(source: Source, days: Sequence[date] | None, workers: int) -> None:
    """The ``ingest.start`` event (days None: all the source holds)."""
    _log().info(
        "ingest.start",
        source=source.name,
        synthetic=source.is_synthetic,
        days=[d.isoformat() for d in days] if days is not None else "all",
        workers=workers,
    )


def log_batch(report: BatchReport, is_synthetic: bool) -> None:
    """The ``ingest.batch`` event: one per batch written (or found unchanged)."""
    _log().info(
        "ingest.batch",
        batch_id=report.batch_id,
        synthetic=is_synthetic,
        outcome=report.outcome,
        loaded=report.loaded,
        duplicates_skipped=report.duplicates_skipped,
        quarantined=report.quarantined,
    )


def log_done(result: IngestReport) -> None:
    """The ``ingest.done`` event with the summary line."""
    _log().info("ingest.done", summary=result.summary_line(), rows_read=result.rows_read)


def _requested(prepared: PreparedSource, days: Sequence[date] | None) -> list[DayBatch]:
    if days is None:
        return list(prepared.days.values())
    missing = sorted(set(days) - set(prepared.days))
    if missing:
        held = ", ".join(d.isoformat() for d in prepared.days) or "none"
        raise IngestRequestError(
            f"{prepared.source} holds no rows for {', '.join(d.isoformat() for d in missing)} "
            f"(days it holds: {held}): nothing was ingested"
        )
    return [prepared.days[d] for d in sorted(set(days))]


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
            loaded = load_transactions(conn, batch, source, payload, on_rows).inserted
            if loaded != batch.rows:
                repo.record_rows(batch.batch_id, row_count=loaded, content_sha256=digest)
            outcome = "loaded"
        elif existing.content_sha256 == digest:
            outcome = "unchanged"
        elif existing.status is not BatchStatus.LOADED:
            new_rows = count_new_transactions(conn, batch, source, payload)
            if new_rows:
                raise BatchClosedError(batch.batch_id, existing.status.value, new_rows)
            outcome = "unchanged"
        else:
            loaded = merge_transactions(conn, batch, source, payload, on_rows)
            repo.record_rows(
                batch.batch_id,
                row_count=existing.row_count + loaded,
                content_sha256=digest,
                source_rows=span,
            )
            outcome = "extended" if loaded else "unchanged"
        after = close_batch(conn, batch.batch_id, batch.quarantined)
    return finished_batch(
        batch.batch_id,
        batch.day,
        outcome,
        after,
        valid=batch.rows,
        loaded=loaded,
        quarantined=len(batch.quarantined),
        frauds=batch.frauds,
        progress=progress,
    )


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
) -> BatchReport:
    """The report of a day whose transaction committed (valid rows not loaded were already
    there), told to the progress display."""
    report = BatchReport(
        batch_id=batch_id,
        day=day,
        outcome=outcome,
        status=after.status if after else None,
        rows_read=valid + quarantined,
        loaded=loaded,
        duplicates_skipped=valid - loaded,
        quarantined=quarantined,
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


def _log() -> structlog.typing.FilteringBoundLogger:
    # Looked up per call, not cached at import: the logging configuration (and the stream it
    # writes to) belongs to the entry point and may change between calls in one process.
    return structlog.get_logger(__name__)  # type: ignore[no-any-return]
