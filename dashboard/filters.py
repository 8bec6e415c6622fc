"""The sidebar's date range, shared by every page (rendered once, in the entry script)."""

from __future__ import annotations

from datetime import date

import streamlit as st

from fraudpipe.adapters.postgres.dashboard_queries import DataExtent
from fraudpipe.data.window import DEFAULT_WINDOW_DAYS, DateWindow

WINDOW_KEY = "fraudpipe_window"

NO_TRANSACTIONS = (
    "No transactions loaded yet: load a day with `fraudpipe ingest` (or run `make demo`)."
)


def render_date_range(extent: DataExtent) -> None:
    """Draw the date-range picker and remember the chosen window for the pages."""
    if extent.first_event is None or extent.last_event is None:
        st.sidebar.info(NO_TRANSACTIONS)
        st.session_state[WINDOW_KEY] = None
        return
    first, last = extent.first_event.date(), extent.last_event.date()
    default = DateWindow.latest(extent.last_event)
    picked = st.sidebar.date_input(
        "Event dates (UTC)",
        value=(max(default.first_day, first), last),
        min_value=first,
        max_value=last,
        help=f"Defaults to the latest {DEFAULT_WINDOW_DAYS} days of data; "
        "wide ranges on large tables take longer to aggregate.",
    )
    # While the user is picking, the widget holds only the start date.
    days: tuple[date, ...] = tuple(picked) if isinstance(picked, tuple | list) else (picked,)
    window = DateWindow(days[0], days[-1])
    st.session_state[WINDOW_KEY] = window
    st.sidebar.caption(f"{window.first_day} → {window.last_day} · {extent.batches} batches in all")


def current_window() -> DateWindow | None:
    """The window chosen in the sidebar, or None when there are no transactions."""
    window: DateWindow | None = st.session_state.get(WINDOW_KEY)
    return window
