"""One ingest run: a chunked source streams into its batches, any other is read whole."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from fraudpipe.config import Settings
from fraudpipe.data.sources import ChunkedSource, Source
from fraudpipe.ingest.chunked import ingest_chunked
from fraudpipe.ingest.reports import IngestProgress, IngestReport
from fraudpipe.ingest.whole import ingest_whole


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
        return ingest_chunked(settings, source, days, progress, workers=workers)
    return ingest_whole(settings, source, days, progress, workers=workers)
