"""The date window and the transaction-id search box's parsing."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from fraudpipe.adapters.postgres.dashboard_queries import parse_transaction_id
from fraudpipe.dashboard.launch import app_path, streamlit_command
from fraudpipe.data.window import DateWindow
from fraudpipe.errors import DashboardFilterError

pytestmark = pytest.mark.unit


def test_window_covers_whole_utc_days() -> None:
    window = DateWindow(date(2025, 9, 20), date(2025, 9, 21))
    assert window.start == datetime(2025, 9, 20, tzinfo=UTC)
    assert window.end == datetime(2025, 9, 22, tzinfo=UTC)
    assert window.days == 2


def test_latest_window_ends_on_the_utc_day_of_the_last_event() -> None:
    late = datetime(2025, 9, 21, 23, 59, 59, tzinfo=UTC)
    assert DateWindow.latest(late, days=2) == DateWindow(date(2025, 9, 20), date(2025, 9, 21))
    assert DateWindow.latest(late, days=1).days == 1


def test_a_backwards_window_is_a_named_error() -> None:
    with pytest.raises(DashboardFilterError, match="ends before it starts"):
        DateWindow(date(2025, 9, 21), date(2025, 9, 20))


def test_transaction_id_search_accepts_uuids_and_names_bad_input() -> None:
    tid = uuid.uuid4()
    assert parse_transaction_id(f"  {tid}\n") == tid
    with pytest.raises(DashboardFilterError, match="'not-an-id' is not a transaction id"):
        parse_transaction_id("not-an-id")


def test_the_cli_serves_the_checkouts_app_on_the_given_address() -> None:
    command = streamlit_command("127.0.0.1", 8765)
    assert app_path().name == "app.py" and app_path().parent.name == "dashboard"
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert command[command.index("--server.port") + 1] == "8765"
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
