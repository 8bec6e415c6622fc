"""What an ingest run reports: per batch and in total, for people, flows and progress bars."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol, TypedDict

import structlog

from fraudpipe.adapters.postgres.batches import BatchStatus
from fraudpipe.data.sources import Source

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


def _log() -> structlog.typing.FilteringBoundLogger:
    # Looked up per call, not cached at import: the logging configuration (and the stream it
    # writes to) belongs to the entry point and may change between calls in one process.
    return structlog.get_logger(__name__)  # type: ignore[no-any-return]
