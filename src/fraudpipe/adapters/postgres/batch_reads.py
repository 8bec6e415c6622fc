"""A loaded batch's transactions read back, in event-time order, for the publisher.

Two ways: as numpy columns from a binary COPY (`read_batch_columns`, what the publisher uses:
no Python object per row), and as `TransactionRecord`s from a server-side cursor
(`read_batch_records`, for a serializer that needs records).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from itertools import starmap
from typing import Final
from uuid import UUID

import numpy as np
import numpy.typing as npt
from psycopg import ClientCursor

from fraudpipe.adapters.postgres import pgcopy
from fraudpipe.adapters.postgres.batches import Batch
from fraudpipe.adapters.postgres.connect import Connection
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.records import TransactionRecord

#: Rows fetched per round trip from the server-side cursor: memory stays flat whatever the size
#: of the batch (some 10 MB of Python objects per chunk), and round trips are few.
FETCH_ROWS: Final = 10_000

# The record's fields in declaration order, batch and source as parameters: each row arrives
# as the exact argument tuple of `TransactionRecord`, so `starmap` builds the records straight
# from the fetched rows, with no per-row slicing or re-packing. Event-time order, so the stream
# looks like the day it replays.
_CONSTANT_FIELDS: Final = {"batch_id": "%(batch_id)s::text", "source": "%(source)s::text"}
_SELECT_BATCH: Final = (
    "SELECT "
    + ", ".join(_CONSTANT_FIELDS.get(f.name, f.name) for f in fields(TransactionRecord))
    + " FROM transactions WHERE batch_id = %(batch_id)s"
)
_ORDER: Final = " ORDER BY event_time, source_row"
#: A resend: only the transactions no model version has scored yet.
_UNSCORED: Final = (
    " AND NOT EXISTS (SELECT 1 FROM predictions p"
    " WHERE p.transaction_id = transactions.transaction_id AND p.batch_id = %(batch_id)s)"
)


def read_batch_records(
    conn: Connection, batch: Batch, *, unscored_only: bool = False
) -> Iterator[TransactionRecord]:
    """The batch's transactions in event-time order, streamed through a server-side cursor.

    Args:
        conn: A connection in a transaction (a named cursor lives inside one).
        batch: The batch whose rows to read.
        unscored_only: Only the transactions without a prediction (a resend).

    Yields:
        One `TransactionRecord` per row; at most `FETCH_ROWS` rows are held at a time.
    """
    # Binary results: floats, uuids and timestamps arrive without text parsing.
    with conn.cursor(name="publish_batch", binary=True) as cur:
        query = _SELECT_BATCH + (_UNSCORED if unscored_only else "") + _ORDER
        cur.execute(query, {"batch_id": batch.batch_id, "source": batch.source})
        while rows := cur.fetchmany(FETCH_ROWS):
            yield from starmap(TransactionRecord, rows)


#: A uuid's text form is always 36 characters: the id column has a fixed width on the wire.
UUID_TEXT_WIDTH: Final = 36
_COLUMNS_SELECT: Final = (
    "SELECT transaction_id::text, event_time, "
    + ", ".join(FEATURE_COLUMNS)
    + " FROM transactions WHERE batch_id = %(batch_id)s"
)
_COLUMN_DTYPES: Final = (f"S{UUID_TEXT_WIDTH}", ">i8", *([">f8"] * len(FEATURE_COLUMNS)))
_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TransactionColumns:
    """A block of a batch's transactions as columns (the fields of `TransactionRecord`)."""

    batch_id: str
    source: str
    ids: npt.NDArray[np.uint8]
    """n×36: each transaction id's text, the message key."""
    event_time_ms: npt.NDArray[np.int64]
    """Milliseconds since 1970-01-01 UTC, floored (what Avro's timestamp-millis holds)."""
    features: Mapping[str, npt.NDArray[np.float64]]
    """``amount``, ``v1``..``v28`` (`FEATURE_COLUMNS`)."""

    def __len__(self) -> int:
        return len(self.event_time_ms)

    def record(self, row: int) -> TransactionRecord:
        """One row as a record (its checks run: a bad value raises `ContractViolationError`)."""
        event_time = _UNIX_EPOCH + timedelta(milliseconds=int(self.event_time_ms[row]))
        return TransactionRecord(
            UUID(self.ids[row].tobytes().decode()),
            self.batch_id,
            self.source,
            event_time,
            *(float(self.features[name][row]) for name in FEATURE_COLUMNS),
        )


def read_batch_columns(
    conn: Connection,
    batch: Batch,
    *,
    unscored_only: bool = False,
    rows_per_block: int = FETCH_ROWS,
) -> Iterator[TransactionColumns]:
    """The batch's transactions in event-time order, as blocks of columns.

    One ``COPY (SELECT …) TO STDOUT (FORMAT BINARY)``, cut into blocks as it arrives
    (`pgcopy.decode_fixed_rows`): the server runs the query while the caller works on the
    previous block, and memory stays at a block or two whatever the size of the batch.

    Args:
        conn: A connection (in a transaction, to see the batch as the caller's lock left it).
        batch: The batch whose rows to read.
        unscored_only: Only the transactions without a prediction (a resend).
        rows_per_block: Rows per block yielded.

    Yields:
        Blocks of at most `rows_per_block` rows, in order.
    """
    query = _COLUMNS_SELECT + (_UNSCORED if unscored_only else "") + _ORDER
    # COPY takes no parameters: the batch id is bound client-side, quoted by psycopg.
    with ClientCursor(conn) as cur:
        statement = cur.mogrify(query, {"batch_id": batch.batch_id})
        with cur.copy(f"COPY ({statement}) TO STDOUT (FORMAT BINARY)") as copy:
            for rows in pgcopy.decode_fixed_rows(copy, _COLUMN_DTYPES, rows_per_block):
                yield _columns(batch, rows)


def _columns(batch: Batch, rows: npt.NDArray[np.void]) -> TransactionColumns:
    return TransactionColumns(
        batch_id=batch.batch_id,
        source=batch.source,
        ids=np.ascontiguousarray(rows["c0"]).view(np.uint8).reshape(len(rows), UUID_TEXT_WIDTH),
        event_time_ms=pgcopy.unix_ms_from_timestamptz(rows["c1"].astype(np.int64)),
        features={
            name: rows[f"c{i}"].astype(np.float64)
            for i, name in enumerate(FEATURE_COLUMNS, start=2)
        },
    )
