"""Prefect flow `ingest-day`: load days of a source into PostgreSQL.

Only wiring: the work is `fraudpipe.ingest.ingest`. Retries are limited to failures a retry can
fix (the database or the package index unreachable); they are safe because every batch is one
transaction and re-ingesting a loaded day is a no-op. Results are not persisted and no frame
crosses a task boundary: tasks exchange file paths and small summaries.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

from fraudpipe.adapters.postgres.connect import CONNECTION_LOST_ERRORS
from fraudpipe.config import get_settings
from fraudpipe.data.resolve import (
    DEFAULT_SEED,
    SYNTHETIC_SPEC,
    ULB_SPEC,
    open_source,
    parse_day,
    requested_days,
)
from fraudpipe.data.synthetic import DriftScenario, synthetic_source_name
from fraudpipe.errors import DatasetError, ServiceUnavailableError
from fraudpipe.ingest import IngestSummary, ingest
from fraudpipe.logs import configure_logging


def ingest_run_name() -> str:
    """Run names like ``ingest-ulb-2025-09-20``, ``ingest-synthetic-s7-2025-09-22``."""
    params = flow_run.parameters
    spec = str(params.get("source", ULB_SPEC))
    if spec == SYNTHETIC_SPEC:
        drift = params.get("drift_from")
        name = synthetic_source_name(
            int(params.get("seed", DEFAULT_SEED)),
            DriftScenario(date.fromisoformat(drift)) if drift else None,
        )
    elif spec == ULB_SPEC:
        name = ULB_SPEC
    else:
        name = f"file-{Path(spec).stem}"
    day, until = params.get("day"), params.get("until")
    when = "all-days" if params.get("all_days") else f"{day}..{until}" if until else str(day)
    return f"ingest-{name}-{when}"


def _retry_if_unreachable(task: Any, task_run: Any, state: Any) -> bool:
    # Data problems (wrong columns, a closed batch) fail the same way every time: no retry.
    return isinstance(state.data, (ServiceUnavailableError, *CONNECTION_LOST_ERRORS))


def _retry_if_download_failed(task: Any, task_run: Any, state: Any) -> bool:
    return isinstance(state.data, DatasetError)


@task(
    name="fetch-ulb",
    retries=2,
    retry_delay_seconds=30,
    retry_condition_fn=_retry_if_download_failed,
    persist_result=False,
    cache_policy=NONE,
)
def fetch_ulb() -> str:
    """Make sure the ULB CSV is cached (the synthetic generator is fitted on it too)."""
    from fraudpipe.data.ulb import ensure_ulb_csv

    return str(ensure_ulb_csv(get_settings()))


@task(
    name="ingest-days",
    retries=2,
    retry_delay_seconds=20,
    retry_condition_fn=_retry_if_unreachable,
    persist_result=False,
    cache_policy=NONE,
)
def ingest_days(
    source: str, days: list[str] | None, seed: int, workers: int, drift_from: str | None = None
) -> IngestSummary:
    """Read, validate and load the days; returns the counts, never the rows."""
    settings = get_settings()
    drift = parse_day(drift_from) if drift_from else None
    opened = open_source(settings, source, seed=seed, drift_from=drift)
    wanted = [date.fromisoformat(d) for d in days] if days is not None else None
    return ingest(settings, opened, wanted, workers=workers).as_summary()


@flow(name="ingest-day", flow_run_name=ingest_run_name, persist_result=False)
def ingest_day(
    source: str = ULB_SPEC,
    day: str | None = None,
    until: str | None = None,
    all_days: bool = False,
    seed: int = DEFAULT_SEED,
    workers: int = 1,
    drift_from: str | None = None,
) -> IngestSummary:
    """Ingest `day` (through `until`, or every day with `all_days`) of `source`.

    Args:
        source: ``ulb``, ``synthetic`` or the path of a CSV/Parquet file (seen by the worker).
        day: ``YYYY-MM-DD``.
        until: Last day, inclusive (optional).
        all_days: Every day the source holds instead of `day` (not for synthetic).
        seed: Seed of synthetic days.
        workers: Days loaded at once (for backfills of many days).
        drift_from: ``YYYY-MM-DD``: synthetic days drift from that day on (`DriftScenario`).

    Returns:
        Per-batch outcomes and total counts (rows read, loaded, duplicates, quarantined).
    """
    configure_logging(json=True)
    days = requested_days(day, until, all_days)  # a bad request fails before any work
    if source in (ULB_SPEC, SYNTHETIC_SPEC):
        fetch_ulb()
    if drift_from:
        parse_day(drift_from)  # a bad request fails before any work
    summary = ingest_days(
        source, [d.isoformat() for d in days] if days else None, seed, workers, drift_from
    )
    get_run_logger().info(summary["summary"])
    return summary


if __name__ == "__main__":
    ingest_day()
