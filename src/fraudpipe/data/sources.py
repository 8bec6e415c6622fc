"""What every source hands to ingestion: raw rows by position, and rows it could not parse.

Sources: the ULB dataset (`fraudpipe.data.ulb`), any CSV/Parquet file with the ULB columns
(`fraudpipe.data.files`) and synthetic days (`fraudpipe.data.synthetic`). All share the ULB
convention for time: ``Time`` counts seconds from `TIME_ZERO`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Final, Protocol, runtime_checkable

import pandas as pd

TIME_ZERO: Final = datetime(2025, 9, 20, tzinfo=UTC)
"""``Time = 0`` of every source: the ULB file's first second, placed on 2025-09-20 (UTC)."""

TIME_ZERO_DAY: Final = TIME_ZERO.date()


@dataclass(frozen=True)
class Rejection:
    """A row a source could not even turn into columns (e.g. a truncated line)."""

    position: int
    reason: str
    raw: dict[str, object]


@dataclass(frozen=True)
class RawRows:
    """Rows as a source holds them.

    Attributes:
        frame: One row per source row, indexed by its position (0 = first data row); the ULB
            columns, as numbers where they parsed and as text where a file held text.
        rejections: Rows that never made it into `frame`, with why.
    """

    frame: pd.DataFrame
    rejections: list[Rejection] = field(default_factory=list)


class Source(Protocol):
    """A place transactions come from, cut into calendar days of event time."""

    @property
    def name(self) -> str:
        """Stable name: part of every transaction and batch id (``ulb``, ``file:<stem>`` ...)."""
        ...

    @property
    def is_synthetic(self) -> bool:
        """True when the rows are generated rather than real."""
        ...

    @property
    def ids_per_day(self) -> bool:
        """True when rows without an ``id`` of their own are told apart by day and position.

        A file's position says where a row sits in that file, not which transaction it is: the
        same name can hold another day's rows tomorrow (``2025-09-21/cards.csv``). Scoping
        position ids by the row's day keeps two days' files apart, while a re-send of a day
        (identical, longer, or with a row corrected) still finds that day's ids. A source that
        is one fixed dataset (ULB) or numbers its rows itself (synthetic) needs no scope.
        """
        ...

    def read(self, days: Sequence[date] | None) -> RawRows:
        """The source's rows for `days` (None: all it holds).

        A file source returns every row whatever `days` is, because a row's day is only known
        once its ``Time`` is validated; ingestion keeps the days it was asked for.

        Raises:
            IngestRequestError: `days` is None for an unbounded source (synthetic).
        """
        ...


@runtime_checkable
class ChunkedSource(Source, Protocol):
    """A source that can hand over its rows in pieces, so loading starts before all are prepared.

    Its rows come in event-time day order (a day never reappears once a later one has
    started) and are keyed by position, so ids need no look at the whole source.
    """

    def read_chunks(self) -> Iterator[RawRows]:
        """All the source's rows, in pieces of consecutive positions, in file order.

        Raises:
            DatasetError: The source turns out to be damaged part way through.
        """
        ...

    def rows_on(self, day: date) -> int:
        """The valid rows the source holds for `day` (0: the source has no such day)."""
        ...

    def check_day(self, day: date, rows: int, frauds: int, rejected: int) -> None:
        """Refuse a day that is not what the source is known to hold, before its batch commits.

        Raises:
            DatasetError: The counts differ from the known ones.
        """
        ...
