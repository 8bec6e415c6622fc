"""Fixtures for integration tests that need a database of their own.

`fresh_db` gives each test module a brand-new PostgreSQL database on the real local server,
migrated to head with the project's Alembic migrations and with the same role privileges as the
pipeline's database; it is dropped after the module. Use it whenever a test writes rows, so
tests never see each other's data or the pipeline's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fraudpipe.config import Settings


@pytest.fixture(scope="module")
def fresh_db(stack: Settings) -> Iterator[Settings]:
    """Settings whose `pg_database` is a fresh, migrated ``fraudpipe_test_<uuid>`` database."""
    from scratch_db import scratch_database

    with scratch_database(stack, prefix="fraudpipe_test") as scratch:
        yield scratch


@pytest.fixture(scope="session")
def ulb_csv(stack: Settings) -> Path:
    """The real ULB dataset (downloaded once into the stack directory, then cached)."""
    from fraudpipe.data.ulb import ensure_ulb_csv

    return ensure_ulb_csv(stack)


@pytest.fixture
def dashboard_on_loopback() -> Iterator[None]:
    """Streamlit's `server.address` as `fraudpipe dashboard` sets it, for AppTest runs.

    Unset, Streamlit listens on every interface, and the app refuses to show anything without a
    login (`fraudpipe.dashboard.access`).
    """
    from streamlit import config

    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    yield
    config.set_option("server.address", before)
