"""The scoring API's decisions table: the recorder's batch write and the API's lookup, on a real
PostgreSQL (a fresh, migrated database)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import numpy as np
import pytest

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.adapters.postgres.decisions import DecisionLookup, record_decisions
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError
from fraudpipe.records import AlertDriver, DecisionRecord


def decisions(count: int, seed: int) -> list[DecisionRecord]:
    """Decisions whose every feature differs, some flagged with reasons."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 12, 5, 9, tzinfo=UTC)
    made = []
    for i in range(count):
        features = rng.normal(size=len(FEATURE_COLUMNS))
        flagged = i % 7 == 0
        made.append(
            DecisionRecord(
                request_id=uuid4(),
                client=f"client-{i % 3}",
                transaction_id=uuid4(),
                batch_id=f"api:{i % 5}",
                source="test",
                event_time=start + timedelta(seconds=i, microseconds=i),
                **dict(zip(FEATURE_COLUMNS, features.tolist(), strict=True)),
                model_name="fraud-detector",
                model_version=1 + i % 2,
                score=float(rng.uniform()),
                threshold=0.5,
                is_fraud=flagged,
                reasons_method="linear" if flagged else "",
                top_drivers=(AlertDriver("v14", 1.25, "v14 low"),) if flagged else (),
                decided_at=start + timedelta(seconds=i, milliseconds=3),
            )
        )
    return made


def stored(settings: Settings, ids: list[UUID]) -> dict[UUID, DecisionRecord]:
    async def read() -> dict[UUID, DecisionRecord]:
        lookup = DecisionLookup(settings)
        await lookup.connect()
        try:
            return await lookup.find_many(ids)
        finally:
            await lookup.close()

    return asyncio.run(read())


def test_a_batch_is_stored_field_for_field_and_again_changes_nothing(fresh_db: Settings) -> None:
    made = decisions(300, seed=5)
    # A second decision on an id in the same batch, and a redelivery of the whole batch: the
    # first decision is the record.
    second = dataclasses.replace(made[10], score=0.999, request_id=uuid4())
    with connect(fresh_db, "app", autocommit=True) as conn:
        assert record_decisions(conn, [*made, second]) == len(made)
        assert record_decisions(conn, made[::-1]) == 0
        (rows,) = conn.execute("SELECT count(*) FROM api_decisions").fetchone() or (0,)
    assert rows == len(made)
    found = stored(fresh_db, [d.transaction_id for d in made])
    assert found == {d.transaction_id: d for d in made}


def test_nothing_to_record_touches_nothing(fresh_db: Settings) -> None:
    with connect(fresh_db, "app", autocommit=True) as conn:
        assert record_decisions(conn, []) == 0


def test_an_unreachable_database_is_a_service_error(fresh_db: Settings) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: the connection is refused
    away = fresh_db.model_copy(update={"pg_port": closed.getsockname()[1]})
    try:
        with pytest.raises(ServiceUnavailableError, match="PostgreSQL"):
            stored(away, [uuid4()])
    finally:
        closed.close()


def test_a_lookup_whose_connection_was_cut_fails_once_then_reconnects(
    fresh_db: Settings,
) -> None:
    made = decisions(3, seed=6)
    with connect(fresh_db, "app", autocommit=True) as conn:
        record_decisions(conn, made)

    async def cut_then_find() -> dict[UUID, DecisionRecord]:
        lookup = DecisionLookup(fresh_db)
        await lookup.connect()
        try:
            assert await lookup.find_many([made[0].transaction_id])
            # The server ends the lookup's session, as a restart or an administrator would. Only
            # this role's client sessions: an autovacuum worker may be in the database too, and
            # the app role may not signal it.
            with connect(fresh_db, "app", autocommit=True) as conn:
                cut = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND usename = current_user AND backend_type = 'client backend'"
                ).fetchone()
            assert cut == (1,)
            with pytest.raises(ServiceUnavailableError):
                await lookup.find_many([made[1].transaction_id])
            assert not lookup.connected
            return await lookup.find_many([d.transaction_id for d in made])
        finally:
            await lookup.close()

    assert asyncio.run(cut_then_find()) == {d.transaction_id: d for d in made}
