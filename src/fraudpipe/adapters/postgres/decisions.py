"""The scoring API's decisions in PostgreSQL (`api_decisions`): recorded in batches, looked up
one by one.

`record_decisions` is the decision recorder's write: a batch of consumed messages in one
``INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING``, so a redelivered message,
or a second decision on an id, changes nothing (the first is the record). `DecisionLookup` is
the API's read of a decision already made, on its own asynchronous connection: a read, never a
write, on the response path.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import asyncpg
import numpy as np
import numpy.typing as npt
import structlog

from fraudpipe.adapters.postgres.arrays import (
    bool_array,
    float8_array,
    int4_array,
    int8_array,
    register_array_dumpers,
    uuid_array,
)
from fraudpipe.adapters.postgres.async_connect import ASYNC_CONNECTION_ERRORS, connect_async
from fraudpipe.adapters.postgres.connect import Connection, unreachable
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.records import AlertDriver, DecisionRecord

log = structlog.get_logger(__name__)

_COLUMNS: Final = (
    "transaction_id, request_id, client, batch_id, source, event_time, features, model_name, "
    "model_version, score, threshold, is_fraud, reasons_method, top_drivers, decided_at"
)
_SELECT_MANY: Final = f"SELECT {_COLUMNS} FROM api_decisions WHERE transaction_id = ANY($1::uuid[])"
_WIDTH: Final = len(FEATURE_COLUMNS)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
#: A batch of decisions as one array per column: one statement and one executor run for the
#: batch. Ids, numbers and times go as binary arrays built with numpy (times as microseconds
#: since the epoch; psycopg dumps a list element by element in Python). `bench/recorder.py`
#: (2026-12-05): 29.9 µs a decision, against 97.0 for a pipelined INSERT per row. The
#: features travel as one flat array and each row takes its slice (a row of a two-dimensional
#: array would stay two-dimensional). Repeats inside the batch keep the first.
_INSERT: Final = f"""
INSERT INTO api_decisions ({_COLUMNS})
SELECT d.transaction_id, d.request_id, d.client, d.batch_id, d.source,
       timestamptz 'epoch' + d.event_us * interval '1 microsecond',
       m.f[(d.n - 1) * {_WIDTH} + 1 : d.n * {_WIDTH}], d.model_name, d.model_version, d.score,
       d.threshold, d.is_fraud, d.reasons_method, d.top_drivers::jsonb,
       timestamptz 'epoch' + d.decided_us * interval '1 microsecond'
FROM (SELECT %(features)s::float8[] AS f) m,
     unnest(
        %(transaction_id)s::uuid[], %(request_id)s::uuid[], %(client)s::text[],
        %(batch_id)s::text[], %(source)s::text[], %(event_us)s::bigint[],
        %(model_name)s::text[], %(model_version)s::int[], %(score)s::float8[],
        %(threshold)s::float8[], %(is_fraud)s::bool[], %(reasons_method)s::text[],
        %(top_drivers)s::text[], %(decided_us)s::bigint[]
     ) WITH ORDINALITY AS d(
        transaction_id, request_id, client, batch_id, source, event_us, model_name,
        model_version, score, threshold, is_fraud, reasons_method, top_drivers, decided_us, n
     )
ON CONFLICT (transaction_id) DO NOTHING
"""

#: The API's wait for a lookup. Past it the request is scored afresh (the recorder still keeps
#: the first decision), so a slow or absent database never fails an authorisation.
LOOKUP_TIMEOUT_S: Final = 0.05


def _drivers_json(drivers: Sequence[AlertDriver]) -> str:
    return json.dumps([d.to_dict() for d in drivers])


def _uuids(ids: Sequence[UUID]) -> npt.NDArray[np.uint8]:
    return np.frombuffer(b"".join(u.bytes for u in ids), np.uint8).reshape(-1, 16)


def _epoch_us(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def record_decisions(conn: Connection, decisions: Sequence[DecisionRecord]) -> int:
    """Insert the decisions not stored yet, in one statement (its own transaction).

    Args:
        conn: An app-role connection (autocommit).
        decisions: Decoded messages of the decisions topic, in any order, repeats allowed.

    Returns:
        How many rows were new.
    """
    if not decisions:
        return 0
    params = {
        "transaction_id": uuid_array(_uuids([d.transaction_id for d in decisions])),
        "request_id": uuid_array(_uuids([d.request_id for d in decisions])),
        "client": [d.client for d in decisions],
        "batch_id": [d.batch_id for d in decisions],
        "source": [d.source for d in decisions],
        "event_us": int8_array([_epoch_us(d.event_time) for d in decisions]),
        "features": float8_array(np.array([d.features() for d in decisions]).ravel()),
        "model_name": [d.model_name for d in decisions],
        "model_version": int4_array([d.model_version for d in decisions]),
        "score": float8_array([d.score for d in decisions]),
        "threshold": float8_array([d.threshold for d in decisions]),
        "is_fraud": bool_array([d.is_fraud for d in decisions]),
        "reasons_method": [d.reasons_method for d in decisions],
        "top_drivers": [_drivers_json(d.top_drivers) for d in decisions],
        "decided_us": int8_array([_epoch_us(d.decided_at) for d in decisions]),
    }
    register_array_dumpers(conn)
    with conn.cursor() as cursor:
        cursor.execute(_INSERT, params)
        return max(cursor.rowcount, 0)


def _from_row(row: tuple[Any, ...]) -> DecisionRecord:
    (tx, request, client, batch, source, event_time, features, name, version, score,
     threshold, is_fraud, method, drivers, decided_at) = row  # fmt: skip
    values = dict(zip(FEATURE_COLUMNS, features, strict=True))
    return DecisionRecord(
        request_id=request,
        client=client,
        transaction_id=tx,
        batch_id=batch,
        source=source,
        event_time=event_time,
        **values,
        model_name=name,
        model_version=version,
        score=score,
        threshold=threshold,
        is_fraud=is_fraud,
        reasons_method=method,
        top_drivers=tuple(AlertDriver(**d) for d in json.loads(drivers)),
        decided_at=decided_at,
    )


class DecisionLookup:
    """The API's reads of decisions already recorded, on one asynchronous connection.

    asyncpg, not psycopg's asynchronous connection: this read is on every request's path, and
    its statement, prepared once, cost 94-124 µs of the event loop's CPU a lookup against
    275-355 µs with psycopg (one id, nothing found; a loop of 500-1,000 lookups on the dev
    stack, `time.thread_time`, 2026-12-06).

    Lookups are coalesced: while one query is out, the ids of every request that arrives meanwhile
    wait, and go together in the next (one ``= ANY`` query for all of them). So one connection
    keeps up at any rate, one query in flight at a time: at 500 requests/s each asking on its
    own, the queries queued behind one another on the connection and most waits ran past
    `LOOKUP_TIMEOUT_S`. A lost connection is opened again at the next query, and a query the
    server takes over a second for is cancelled by the server (``statement_timeout``).
    """

    def __init__(self, settings: Settings) -> None:
        """Prepare the lookup; `connect` opens the connection."""
        self._settings = settings
        self._conn: asyncpg.Connection | None = None
        self._select: asyncpg.prepared_stmt.PreparedStatement | None = None
        self._waiting: list[tuple[list[UUID], asyncio.Future[dict[UUID, DecisionRecord]]]] = []
        self._draining: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """Whether the connection is open (what the API's readiness reports)."""
        return self._conn is not None and not self._conn.is_closed()

    async def connect(self) -> None:
        """Open the connection and prepare the lookup, if it is not open.

        Raises:
            ServiceUnavailableError: PostgreSQL did not accept it.
        """
        if self.connected:
            return
        conn = await connect_async(self._settings, "app", statement_timeout_ms=1000)
        try:
            self._select = await conn.prepare(_SELECT_MANY)
        except ASYNC_CONNECTION_ERRORS as exc:
            conn.terminate()
            raise unreachable(self._settings, "app", exc) from exc
        self._conn = conn

    async def find_many(self, ids: Sequence[UUID]) -> dict[UUID, DecisionRecord]:
        """The decisions recorded for some transaction ids, by id.

        Raises:
            ServiceUnavailableError: PostgreSQL is unreachable (the connection is dropped
                and opened again at the next query).
        """
        future: asyncio.Future[dict[UUID, DecisionRecord]] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiting.append((list(ids), future))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                found = await self._query([tx for ids, _ in batch for tx in ids])
            except Exception as exc:  # noqa: BLE001  # handed to every waiting request
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for ids, future in batch:
                if not future.done():  # a request that stopped waiting has it cancelled
                    future.set_result({tx: found[tx] for tx in ids if tx in found})

    async def _query(self, ids: list[UUID]) -> dict[UUID, DecisionRecord]:
        await self.connect()
        assert self._select is not None
        try:
            rows = await self._select.fetch(ids)
        except ASYNC_CONNECTION_ERRORS as exc:
            await self.close()
            raise unreachable(self._settings, "app", exc) from exc
        return {row[0]: _from_row(tuple(row)) for row in rows}

    async def close(self) -> None:
        """Close the connection (a later query opens it again)."""
        conn, self._conn, self._select = self._conn, None, None
        if conn is not None:
            conn.terminate()  # no goodbye to wait for: the connection may be the broken one
