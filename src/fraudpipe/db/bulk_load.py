"""Bulk load of transactions: binary COPY, with a dedup path only when it is needed.

The common case is a brand-new batch whose rows are all new: they are COPYed straight into
`transactions` (under a savepoint). Only when that COPY hits an id that already exists (a file
overlapping one loaded before) is the savepoint rolled back and the rows taken through a
staging table and ``INSERT ... ON CONFLICT DO NOTHING``, which is several times slower. Either
way everything happens in the caller's transaction, next to the batch row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import psycopg
from psycopg import sql

from fraudpipe.data.days import DayBatch
from fraudpipe.db import pgcopy
from fraudpipe.db.connect import Connection

V_COLUMNS: Final = tuple(f"v{i}" for i in range(1, 29))
TRANSACTION_COLUMNS: Final = (
    "transaction_id",
    "batch_id",
    "source_row",
    "event_time",
    "amount",
    *V_COLUMNS,
    "label",
)
_COLUMN_LIST: Final = sql.SQL(", ").join(sql.Identifier(c) for c in TRANSACTION_COLUMNS)

RowsDone = Callable[[int], None]
"""Called with the rows sent so far by the current COPY (restarts at 0 if the load falls back to
the dedup path), for progress bars."""


@dataclass(frozen=True)
class LoadResult:
    """What a load did.

    Attributes:
        inserted: Rows added to `transactions`.
        skipped: Rows whose id was already there (left untouched).
        path: ``copy`` (straight COPY) or ``merge`` (staging + ON CONFLICT DO NOTHING).
    """

    inserted: int
    skipped: int
    path: Literal["copy", "merge"]


def transaction_payload(batch: DayBatch) -> pgcopy.BinaryCopyPayload:
    """A day batch's rows in `transactions` column order, as binary COPY records."""
    n = batch.rows
    labels = batch.labels
    missing = np.isnan(labels)
    columns = [
        pgcopy.uuid_column(batch.ids),
        pgcopy.text_constant(batch.batch_id, n),
        pgcopy.int8(batch.source_rows),
        pgcopy.timestamptz_from_unix_us(batch.event_time_us),
        *(pgcopy.float8(batch.features[:, j]) for j in range(batch.features.shape[1])),
        pgcopy.int2(np.where(missing, 0, labels), missing),
    ]
    return pgcopy.encode(columns)


def load_transactions(
    conn: Connection, payload: pgcopy.BinaryCopyPayload, on_rows: RowsDone | None = None
) -> LoadResult:
    """Insert rows into `transactions`, skipping ids already there, in the caller's transaction.

    Args:
        conn: A connection inside a transaction (the batch's).
        payload: The rows (`transaction_payload`).
        on_rows: Progress callback.

    Returns:
        Rows inserted and skipped, and which path was taken.
    """
    try:
        with conn.transaction():
            _copy(conn, sql.SQL("transactions"), payload, on_rows)
    except psycopg.errors.UniqueViolation:
        inserted = merge_transactions(conn, payload, on_rows)
        return LoadResult(inserted, payload.rows - inserted, "merge")
    return LoadResult(payload.rows, 0, "copy")


def merge_transactions(
    conn: Connection, payload: pgcopy.BinaryCopyPayload, on_rows: RowsDone | None = None
) -> int:
    """The dedup path: COPY into a staging table, then insert only ids not yet present.

    Returns:
        Rows inserted.
    """
    staging = _staging_table(conn)
    _copy(conn, staging, payload, on_rows)
    cur = conn.execute(
        sql.SQL(
            "INSERT INTO transactions ({cols}) SELECT {cols} FROM {staging} "
            "ON CONFLICT (transaction_id) DO NOTHING"
        ).format(cols=_COLUMN_LIST, staging=staging)
    )
    conn.execute(sql.SQL("DROP TABLE {}").format(staging))
    return cur.rowcount


def count_new_transactions(conn: Connection, payload: pgcopy.BinaryCopyPayload) -> int:
    """How many of the payload's ids are not in `transactions` yet (nothing is inserted)."""
    staging = _staging_table(conn)
    _copy(conn, staging, payload, None)
    row = conn.execute(
        sql.SQL(
            "SELECT count(*) FROM {staging} s WHERE NOT EXISTS "
            "(SELECT 1 FROM transactions t WHERE t.transaction_id = s.transaction_id)"
        ).format(staging=staging)
    ).fetchone()
    conn.execute(sql.SQL("DROP TABLE {}").format(staging))
    return int(row[0]) if row else 0


def _staging_table(conn: Connection) -> sql.Identifier:
    # A temporary table: private to this session, gone at commit even if a step fails.
    name = sql.Identifier(f"staging_transactions_{uuid.uuid4().hex[:12]}")
    conn.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {} (LIKE transactions INCLUDING DEFAULTS) ON COMMIT DROP"
        ).format(name)
    )
    return name


def _copy(
    conn: Connection,
    table: sql.Composable,
    payload: pgcopy.BinaryCopyPayload,
    on_rows: RowsDone | None,
) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, _COLUMN_LIST)
    sent = 0
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for chunk, rows in payload.chunks():
            copy.write(chunk)
            sent += rows
            if on_rows and rows:
                on_rows(sent)
