"""The numpy-built binary encoders write exactly the bytes psycopg's own would.

`pgcopy` replaces psycopg's `Copy.write_row`, and `arrays` replaces psycopg's list dumpers, on
the hot paths (see their docstrings for what that saves). Here psycopg writes the same rows and
arrays itself, through a real connection's adapters: `write_row` into a `FileWriter`, so nothing
is sent to the server, and the binary dumpers for ``uuid[]``, ``integer[]``, ``double
precision[]`` and ``boolean[]``. Edge values included: negative zero, subnormals, the largest
finite doubles, times before PostgreSQL's epoch (2000-01-01), NULL labels.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pytest
from psycopg.adapt import PyFormat, Transformer
from psycopg.copy import FileWriter
from psycopg.types.numeric import Int4

from fraudpipe.adapters.postgres import arrays
from fraudpipe.adapters.postgres.bulk_load import TRANSACTION_COLUMNS, transaction_payload
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.adapters.postgres.prediction_rows import COLUMNS, key_order, prediction_payload
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.data.days import DayBatch
from fraudpipe.microbatch import ScoredBatch, TransactionBatch

pytestmark = pytest.mark.integration

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EDGE_FLOATS = [0.0, -0.0, 5e-324, -5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 1e-300]


def psycopg_copy(settings: Settings, types: Sequence[str], rows: list[tuple[object, ...]]) -> bytes:
    """The binary COPY stream psycopg's `write_row` makes of `rows`."""
    out = io.BytesIO()
    with (
        connect(settings) as conn,
        conn.cursor() as cur,
        psycopg.Copy(cur, binary=True, writer=FileWriter(out)) as copy,
    ):
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)
    return out.getvalue()


def from_unix_us(us: int) -> datetime:
    return UNIX_EPOCH + timedelta(microseconds=us)


def day_batch(n: int) -> DayBatch:
    rng = np.random.default_rng(11)
    features = rng.normal(scale=1e3, size=(n, len(FEATURE_COLUMNS)))
    features[: len(EDGE_FLOATS), 1] = EDGE_FLOATS
    labels = rng.integers(0, 2, n).astype(np.float64)
    labels[::3] = np.nan
    # Times on both sides of PostgreSQL's epoch, to the microsecond.
    event_us = rng.integers(-(10**15), 2 * 10**15, n, dtype=np.int64)
    return DayBatch(
        batch_id="test:2025-09-20",
        day=date(2025, 9, 20),
        ids=rng.integers(0, 256, (n, 16), dtype=np.uint8),
        source_rows=rng.integers(0, 2**62, n, dtype=np.int64),
        event_time_us=event_us,
        features=features,
        labels=labels,
    )


def test_transaction_rows_are_psycopgs_write_row_bytes(stack: Settings) -> None:
    batch = day_batch(200)
    ours = b"".join(bytes(chunk) for chunk, _ in transaction_payload(batch).chunks())
    # The encoder groups rows by which columns are NULL (labelled rows first); same order here.
    order = np.argsort(np.isnan(batch.labels), kind="stable")
    rows = [
        (
            uuid.UUID(bytes=bytes(batch.ids[i])),
            batch.batch_id,
            int(batch.source_rows[i]),
            from_unix_us(int(batch.event_time_us[i])),
            *batch.features[i].tolist(),
            None if np.isnan(batch.labels[i]) else int(batch.labels[i]),
        )
        for i in order
    ]
    types = ["uuid", "text", "int8", "timestamptz", *["float8"] * len(FEATURE_COLUMNS), "int2"]
    assert len(types) == len(TRANSACTION_COLUMNS)
    assert ours == psycopg_copy(stack, types, rows)


def test_prediction_rows_are_psycopgs_write_row_bytes(stack: Settings) -> None:
    n = 60
    rng = np.random.default_rng(5)
    txs = TransactionBatch(
        ids=rng.integers(0, 256, (n, 16), dtype=np.uint8),
        batch_codes=rng.integers(0, 2, n).astype(np.int32),
        batch_ids=("b:2025-09-21", "a:2025-09-20"),
        sources=("b", "a"),
        columns={},
        record_timestamps_ms=np.zeros(n, np.int64),
        message_rows=np.arange(n, dtype=np.int64),
    )
    scores = rng.random(n)
    scores[:4] = [0.0, -0.0, 1.0, 5e-324]
    scored = ScoredBatch(
        transactions=txs,
        scores=scores,
        is_fraud=scores > 0.5,
        latency_ms=rng.random(n) * 100,
        model_name="fraud-detector",
        model_version=3,
        threshold=0.5,
        scored_at=datetime(2026, 12, 3, 20, 0, 0, 123_456, tzinfo=UTC),
    )
    ours = b"".join(bytes(chunk) for chunk, _ in prediction_payload(scored).chunks())
    rows = [
        (
            uuid.UUID(bytes=bytes(txs.ids[i])),
            scored.model_name,
            scored.model_version,
            txs.batch_ids[code],
            float(scores[i]),
            bool(scored.is_fraud[i]),
            scored.threshold,
            scored.scored_at,
            float(scored.latency_ms[i]),
        )
        for code, positions in key_order(txs)
        for i in positions
    ]
    types = ["uuid", "text", "int4", "text", "float8", "bool", "float8", "timestamptz", "float8"]
    assert len(types) == len(COLUMNS)
    assert ours == psycopg_copy(stack, types, rows)


@pytest.mark.parametrize(
    ("ours", "values", "element"),
    [
        # Int4: a plain int would be dumped as the smallest type that holds it.
        (arrays.int4_array, [Int4(v) for v in (0, 1, -1, 2**31 - 1, -(2**31))], "int4"),
        (arrays.float8_array, EDGE_FLOATS, "float8"),
        (arrays.bool_array, [True, False, True], "bool"),
    ],
)
def test_arrays_are_psycopgs_list_dump(
    stack: Settings, ours: object, values: list[object], element: str
) -> None:
    with connect(stack) as conn:
        expected = dump_list(conn, values, element)
    assert bytes(ours(np.array(values))) == expected  # type: ignore[operator]


def test_uuid_array_is_psycopgs_list_dump(stack: Settings) -> None:
    ids = [uuid.uuid4() for _ in range(17)]
    matrix = np.frombuffer(b"".join(u.bytes for u in ids), np.uint8).reshape(len(ids), 16)
    with connect(stack) as conn:
        expected = dump_list(conn, ids, "uuid")
    assert bytes(arrays.uuid_array(matrix)) == expected


def dump_list(
    conn: psycopg.Connection[tuple[object, ...]], values: list[object], element: str
) -> bytes:
    """psycopg's binary dump of `values` as a ``<element>[]`` parameter."""
    transformer = Transformer(conn)
    element_oid = conn.adapters.types[element].oid
    dumper = transformer.get_dumper([values[0]], PyFormat.BINARY)
    # A list dumper specialised by its first element's type, as psycopg picks it for a query.
    dumper = dumper.upgrade([values[0]], PyFormat.BINARY)
    assert dumper.oid == conn.adapters.types[element].array_oid, (dumper.oid, element_oid)
    dumped = dumper.dump(values)
    assert dumped is not None
    return bytes(dumped)
