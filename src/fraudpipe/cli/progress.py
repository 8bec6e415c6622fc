"""A rich progress bar for `fraudpipe.ingest.ingest` (one bar per batch)."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from fraudpipe.ingest import BatchReport


def ingest_progress_bar() -> Progress:
    """The bar layout: batch id, bar, rows done of total, elapsed time."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    )


class RichIngestProgress:
    """Implements `fraudpipe.ingest.IngestProgress` on a started rich `Progress`."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, tuple[TaskID, int]] = {}

    def batch_started(self, batch_id: str, rows: int) -> None:
        total = max(rows, 1)
        self._tasks[batch_id] = (self._progress.add_task(batch_id, total=total), total)

    def rows_sent(self, batch_id: str, sent: int) -> None:
        self._progress.update(self._tasks[batch_id][0], completed=sent)

    def batch_finished(self, report: BatchReport) -> None:
        task, total = self._tasks[report.batch_id]
        self._progress.update(
            task, completed=total, description=f"{report.batch_id} [{report.outcome}]"
        )
