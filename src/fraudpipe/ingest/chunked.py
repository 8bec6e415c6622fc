"""Ingestion of a chunked source: each day loads while the rest of the source is prepared.

Validating and encoding the whole source before loading leaves the server's core idle while
the client works, then the client's idle while the server stores. Here the reading thread
validates each piece of the source, cuts it into day fragments and hands them to that day's
loader: a thread with its own connection and the batch's COPY open, so PostgreSQL stores one
piece while the next is prepared, and a finished day gets its key, index and commit while
the next day streams on another connection.

The rules are `fraudpipe.ingest.day.load_day`'s: one transaction per batch (the batch row, its
partition, its quarantined rows), the same ids, the same counts. Only a brand-new batch is
streamed. A day that already has a batch (a re-run), has no valid row, or whose partition
is left over is gathered whole and given to `load_day`, which decides as for any source.
"""

from __future__ import annotations

import hashlib
import queue
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Final

import numpy as np

from fraudpipe.adapters.postgres.batches import BatchRepository
from fraudpipe.adapters.postgres.bulk_load import (
    finish_batch_table,
    new_batch_table,
    streaming_copy,
    transaction_payload,
)
from fraudpipe.adapters.postgres.connect import Connection, Rollback, connect
from fraudpipe.config import Settings
from fraudpipe.data.bounds import feature_bounds
from fraudpipe.data.days import DayBatch, QuarantineRecord, prepare
from fraudpipe.data.sources import ChunkedSource
from fraudpipe.errors import SourceOrderError
from fraudpipe.ingest.day import (
    check_requested_days,
    close_batch,
    conflict_records,
    finished_batch,
    load_day,
    quarantine_unplaced,
)
from fraudpipe.ingest.reports import (
    BatchReport,
    IngestProgress,
    IngestReport,
    log_batch,
    log_done,
    log_start,
)

#: Rows encoded, hashed and sent at a time: a piece this small (~3.4 MB on the wire) is still
#: in the CPU cache when it is hashed and copied to the socket; 32k-row pieces cost ~20% more.
_PIECE_ROWS: Final = 8_192


class _ReadingStoppedError(Exception):
    """Handed to a day's loader when reading failed: its transaction must roll back."""


_Item = DayBatch | _ReadingStoppedError | None


@dataclass
class _DayFeed:
    """The fragments of one day, from the reading thread to the day's loader, in order."""

    batch_id: str
    day: date
    #: Fragments in order, then None (day complete) or `_ReadingStoppedError`.
    inbox: queue.SimpleQueue[_Item] = field(default_factory=queue.SimpleQueue)
    taken: list[DayBatch] = field(default_factory=list)

    def __iter__(self) -> Iterator[DayBatch]:
        """Fragments until the day is complete; raises `_ReadingStoppedError` if reading failed."""
        while True:
            item = self.inbox.get()
            if item is None:
                return
            if isinstance(item, _ReadingStoppedError):
                raise item
            self.taken.append(item)
            yield item

    def whole(self) -> DayBatch:
        """The whole day, once every fragment is taken: the fragments joined in order."""
        for _ in self:
            pass
        parts = self.taken
        return DayBatch(
            batch_id=self.batch_id,
            day=self.day,
            ids=np.concatenate([p.ids for p in parts]),
            source_rows=np.concatenate([p.source_rows for p in parts]),
            event_time_us=np.concatenate([p.event_time_us for p in parts]),
            features=np.concatenate([p.features for p in parts]),
            labels=np.concatenate([p.labels for p in parts]),
            quarantined=[r for p in parts for r in p.quarantined],
        )


def ingest_chunked(
    settings: Settings,
    source: ChunkedSource,
    days: Sequence[date] | None = None,
    progress: IngestProgress | None = None,
    *,
    workers: int = 1,
) -> IngestReport:
    """`fraudpipe.ingest.ingest` for a chunked source (same arguments, result and errors).

    `workers` connections load days; with one, a day's loader waits for the previous day's
    commit. A day whose loader fails (say a closed batch with new rows) does not stop the
    others: reading goes on, and the first failure is raised once every day is done.
    """
    check_requested_days(source.name, days, lambda day: source.rows_on(day) > 0)
    wanted = set(days) if days is not None else None
    log_start(source, days, workers)
    feeds: dict[date, _DayFeed] = {}
    loads: dict[date, Future[BatchReport]] = {}
    unplaced: list[QuarantineRecord] = []
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ingest") as pool:
        current: _DayFeed | None = None
        try:
            for raw in source.read_chunks():
                prepared = prepare(
                    source.name,
                    raw,
                    feature_bounds(settings.bounds_margin),
                    ids_per_day=source.ids_per_day,
                )
                unplaced.extend(prepared.unplaced)
                for day, fragment in prepared.days.items():
                    if wanted is not None and day not in wanted:
                        continue
                    if day not in feeds:
                        if current is not None:
                            current.inbox.put(None)  # days come in order: that one is complete
                        feeds[day] = _DayFeed(fragment.batch_id, day)
                        loads[day] = pool.submit(_load_day, settings, source, feeds[day], progress)
                    elif feeds[day] is not current:
                        raise SourceOrderError(source.name, day)
                    current = feeds[day]
                    current.inbox.put(fragment)
            if current is not None:
                current.inbox.put(None)
        except BaseException as exc:
            for feed in feeds.values():
                feed.inbox.put(_ReadingStoppedError(str(exc)))
            raise
        reports = [loads[day].result() for day in sorted(loads)]
    unplaced_count = quarantine_unplaced(settings, source.name, unplaced)
    result = IngestReport(source.name, source.is_synthetic, reports, unplaced_count)
    log_done(result)
    return result


def _load_day(
    settings: Settings, source: ChunkedSource, feed: _DayFeed, progress: IngestProgress | None
) -> BatchReport:
    with connect(settings, autocommit=True) as conn:
        report = _stream_new_batch(conn, source, feed, progress)
        if report is None:
            report = load_day(conn, source.name, source.is_synthetic, feed.whole(), progress)
    log_batch(report, source.is_synthetic)
    return report


def _stream_new_batch(
    conn: Connection, source: ChunkedSource, feed: _DayFeed, progress: IngestProgress | None
) -> BatchReport | None:
    """Load the day as a new batch while it arrives; None (nothing written) if it is not new."""
    rows = frauds = 0
    quarantined: list[QuarantineRecord] = []
    lo, hi = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    digest = hashlib.sha256()  # the same bytes `load_day` hashes: the payload rows, in order
    skipped = 0
    after = None
    with conn.transaction():
        repo = BatchRepository(conn)
        repo.lock(feed.batch_id)
        if repo.get(feed.batch_id) is not None:
            return None
        repo.create(
            batch_id=feed.batch_id,
            source=source.name,
            batch_date=feed.day,
            is_synthetic=source.is_synthetic,
            row_count=0,
            content_sha256="",
        )
        table = new_batch_table(conn, feed.batch_id)
        if table is None:
            raise Rollback()
        if progress:
            progress.batch_started(feed.batch_id, source.rows_on(feed.day))
        with streaming_copy(conn, table, freeze=True) as send:
            for fragment in feed:
                quarantined.extend(fragment.quarantined)
                if not fragment.rows:
                    continue
                for piece in fragment.pieces(_PIECE_ROWS):
                    for data, _ in transaction_payload(piece).records():
                        digest.update(data)
                        send(data)
                rows += fragment.rows
                frauds += fragment.frauds
                lo = min(lo, int(fragment.source_rows.min()))
                hi = max(hi, int(fragment.source_rows.max()))
                if progress:
                    progress.rows_sent(feed.batch_id, rows)
        if not rows:
            raise Rollback()  # no valid row: `load_day` records "nothing valid"
        source.check_day(feed.day, rows, frauds, len(quarantined))
        # The batch row's own range only matters to other loads, which see it after commit.
        skipped, conflicts = finish_batch_table(conn, table, feed.batch_id, source.name, (lo, hi))
        repo.record_rows(
            feed.batch_id,
            row_count=rows - skipped,
            content_sha256=digest.hexdigest(),
            source_rows=(lo, hi),
        )
        conflicting = conflict_records(feed.batch_id, source.name, conflicts)
        after = close_batch(conn, feed.batch_id, [*quarantined, *conflicting])
    if after is None:
        return None  # rolled back above: the day goes the whole-day way
    return finished_batch(
        feed.batch_id,
        feed.day,
        "loaded",
        after,
        valid=rows,
        loaded=rows - skipped,
        quarantined=len(quarantined),
        conflicts=len(conflicting),
        frauds=frauds,
        progress=progress,
    )
