"""Which days and which source an ingest asks for."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from fraudpipe.config import Settings
from fraudpipe.data.files import FileSource
from fraudpipe.data.resolve import open_source, requested_days
from fraudpipe.data.ulb import UlbSource
from fraudpipe.errors import IngestRequestError

pytestmark = pytest.mark.unit


def test_one_day_a_range_or_all() -> None:
    assert requested_days("2025-09-20", None, False) == [date(2025, 9, 20)]
    assert requested_days("2025-09-29", "2025-10-01", False) == [
        date(2025, 9, 29),
        date(2025, 9, 30),
        date(2025, 10, 1),
    ]
    assert requested_days(None, None, True) is None


@pytest.mark.parametrize(
    ("day", "until", "all_days", "message"),
    [
        (None, None, False, "say which days"),
        ("2025-09-20", None, True, "not both"),
        ("20/09/2025", None, False, "YYYY-MM-DD"),
        ("2025-09-21", "2025-09-20", False, "before"),
        ("2025-01-01", "2027-01-01", False, "too many"),
    ],
)
def test_unclear_requests_are_refused(
    day: str | None, until: str | None, all_days: bool, message: str
) -> None:
    with pytest.raises(IngestRequestError, match=message):
        requested_days(day, until, all_days)


def test_named_sources(settings: Settings, tmp_path: Path) -> None:
    assert isinstance(open_source(settings, "ulb"), UlbSource)
    source = open_source(settings, str(tmp_path / "cards.csv"))
    assert isinstance(source, FileSource)
    assert source.name == "file:cards"
