"""A loaded batch's transactions read back, in event-time order, for the publisher."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from itertools import starmap
from typing import Final

from fraudpipe.adapters.postgres.batches import Batch
from fraudpipe.adapters.postgres.connect import Connection
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
