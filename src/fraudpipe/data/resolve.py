"""From what a person or a flow names (``ulb``, ``synthetic``, a file path, days) to a source."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Final

from fraudpipe.config import Settings
from fraudpipe.data.files import FileSource
from fraudpipe.data.sources import Source
from fraudpipe.data.synthetic import DriftScenario, SyntheticDayGenerator, SyntheticSource
from fraudpipe.data.ulb import UlbSource
from fraudpipe.errors import IngestRequestError

ULB_SPEC: Final = "ulb"
SYNTHETIC_SPEC: Final = "synthetic"
DEFAULT_SEED: Final = 7
MAX_DAYS_PER_RUN: Final = 366


def open_source(
    settings: Settings, spec: str, *, seed: int = DEFAULT_SEED, drift_from: date | None = None
) -> Source:
    """The source named by `spec`: ``ulb``, ``synthetic`` (fitted on the ULB data), or a path.

    Fitting the synthetic generator reads the ULB dataset (fetching it on first use).
    ``drift_from`` makes synthetic days drift from that day on (`DriftScenario`).

    Raises:
        IngestRequestError: ``drift_from`` for a source that is not synthetic.
    """
    if drift_from is not None and spec != SYNTHETIC_SPEC:
        raise IngestRequestError(f"only synthetic days drift on request, not {spec!r}")
    if spec == ULB_SPEC:
        return UlbSource(settings)
    if spec == SYNTHETIC_SPEC:
        drift = DriftScenario(drift_from) if drift_from is not None else None
        return SyntheticSource(fit_on_ulb(settings), seed, drift)
    return FileSource(Path(spec).expanduser())


def fit_on_ulb(settings: Settings) -> SyntheticDayGenerator:
    """A synthetic-day generator fitted on the whole ULB dataset."""
    from fraudpipe.data.schemas import validate_raw

    real = UlbSource(settings).read(None)
    return SyntheticDayGenerator.fit(validate_raw(real.frame).valid)


def parse_day(text: str) -> date:
    """A ``YYYY-MM-DD`` day.

    Raises:
        IngestRequestError: `text` is not such a date.
    """
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise IngestRequestError(f"{text!r} is not a day: write it as YYYY-MM-DD") from exc


def requested_days(day: str | None, until: str | None, all_days: bool) -> list[date] | None:
    """The days an ingest asks for: one day, a range (``day`` through ``until``), or all (None).

    Raises:
        IngestRequestError: Neither or both of a day and all days, or a bad range.
    """
    if all_days:
        if day or until:
            raise IngestRequestError("pass either --day (and --until) or --all-days, not both")
        return None
    if day is None:
        raise IngestRequestError(
            "say which days: --day YYYY-MM-DD [--until YYYY-MM-DD] or --all-days"
        )
    first = parse_day(day)
    last = parse_day(until) if until else first
    count = (last - first).days + 1
    if count < 1:
        raise IngestRequestError(f"--until {last} is before --day {first}")
    if count > MAX_DAYS_PER_RUN:
        raise IngestRequestError(
            f"{count} days in one run is too many (at most {MAX_DAYS_PER_RUN})"
        )
    return [first + timedelta(days=i) for i in range(count)]
