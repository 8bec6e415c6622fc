"""A new batch partition's transaction is tuned for its load, and only that transaction."""

from __future__ import annotations

import psycopg
import pytest

from fraudpipe.adapters.postgres.bulk_load import NEW_TABLE_LOAD_SETTINGS, new_batch_table
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings

pytestmark = pytest.mark.integration


def _settings(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, str]:
    return {
        name: str(conn.execute("SELECT current_setting(%s)", (name,)).fetchone()[0])  # type: ignore[index]
        for name in NEW_TABLE_LOAD_SETTINGS
    }


def test_settings_hold_inside_the_transaction_and_end_with_it(fresh_db: Settings) -> None:
    with connect(fresh_db, autocommit=True) as conn:
        before = _settings(conn)
        assert before != NEW_TABLE_LOAD_SETTINGS  # the server's defaults differ
        with conn.transaction():
            assert new_batch_table(conn, "test:2030-01-01") is not None
            assert _settings(conn) == NEW_TABLE_LOAD_SETTINGS
            raise psycopg.Rollback()
        # The scorer and every other session keep the server's settings.
        assert _settings(conn) == before


def test_an_existing_partition_changes_no_setting(fresh_db: Settings) -> None:
    with connect(fresh_db, autocommit=True) as conn:
        before = _settings(conn)
        with conn.transaction():
            assert new_batch_table(conn, "test:2030-01-02") is not None
        with conn.transaction():
            assert new_batch_table(conn, "test:2030-01-02") is None
            assert _settings(conn) == before
