"""Ingestion of a source read whole: read, validate, then one transaction per day batch."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.data.bounds import feature_bounds
from fraudpipe.data.days import DayBatch, prepare
from fraudpipe.data.sources import Source
from fraudpipe.ingest.day import check_requested_days, load_day, quarantine_unplaced
from fraudpipe.ingest.reports import (
    BatchReport,
    IngestProgress,
    IngestReport,
    log_batch,
    log_done,
    log_start,
)


def ingest_whole(
    settings: Settings,
    source: Source,
    days: Sequence[date] | None = None,
    progress: IngestProgress | None = None,
    *,
    workers: int = 1,
) -> IngestReport:
    """`fraudpipe.ingest.ingest` for a source read whole (same arguments, result and errors)."""
    raw = source.read(days)
    prepared = prepare(
        source.name,
        raw,
        feature_bounds(settings.bounds_margin),
        ids_per_day=source.ids_per_day,
    )
    check_requested_days(source.name, days, prepared.days.__contains__, prepared.days)
    wanted = prepared.days if days is None else {d: prepared.days[d] for d in sorted(set(days))}
    batches = list(wanted.values())
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
