"""A range of whole UTC calendar days of event time: the window every history view filters on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from fraudpipe.errors import DashboardFilterError

DEFAULT_WINDOW_DAYS: Final = 2
"""Days the history pages show until the user widens the range.

Two days is the whole ULB dataset, and it bounds what one render scans: on millions of rows a
page's cost follows the window, not the size of the tables (see ``bench/dashboard.py``).
"""


@dataclass(frozen=True)
class DateWindow:
    """Inclusive range of calendar days (UTC) of event time.

    A batch covers exactly one such day (``batch_id = f"{source}:{batch_date}"``), so the same
    window selects transactions by ``event_time`` and batches by ``batch_date``.
    """

    first_day: date
    last_day: date

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise DashboardFilterError(
                f"date range {self.first_day} to {self.last_day} ends before it starts",
                "pick an end date on or after the start date",
            )

    @property
    def start(self) -> datetime:
        """First instant inside the window (midnight UTC of ``first_day``)."""
        return datetime.combine(self.first_day, time(), UTC)

    @property
    def end(self) -> datetime:
        """First instant after the window (exclusive bound)."""
        return datetime.combine(self.last_day + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @classmethod
    def latest(cls, last_event: datetime, days: int = DEFAULT_WINDOW_DAYS) -> DateWindow:
        """The ``days`` calendar days ending with the day of ``last_event`` (UTC)."""
        last_day = last_event.astimezone(UTC).date()
        return cls(last_day - timedelta(days=days - 1), last_day)
