"""Bulk load of transactions: binary COPY into a batch's own partition, dedup only where needed.

`transactions` has one partition per batch (migration 0002). The common case, a brand-new
batch, COPYs its rows into a new bare table, builds its key and index afterwards in one sort
each, and attaches it: no index is maintained row by row. Rows already loaded under another
batch of the same source can only be there if that batch's `source_row` range overlaps this
one's; only then are they looked for and removed. Rows added to an existing batch (an
overlapping file) go through a staging table and ``INSERT ... ON CONFLICT DO NOTHING``.
Everything happens in the caller's transaction, next to the batch row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from psycopg import sql
from psycopg.abc import Buffer

from fraudpipe.adapters.postgres import pgcopy
from fraudpipe.adapters.postgres.connect import Connection, set_for_transaction
from fraudpipe.columns import FEATURE_COLUMNS, LABEL_COLUMN
from fraudpipe.data.days import DayBatch

TRANSACTION_COLUMNS: Final = (
    "transaction_id",
    "batch_id",
    "source_row",
    "event_time",
    *FEATURE_COLUMNS,
    LABEL_COLUMN,
)
_COLUMN_LIST: Final = sql.SQL(", ").join(sql.Identifier(c) for c in TRANSACTION_COLUMNS)

RowsDone = Callable[[int], None]
"""Called with the rows sent so far by the current COPY (restarts at 0 if the load falls back to
the dedup path), for progress bars."""


@dataclass(frozen=True)
class Conflict:
    """A row whose id is loaded already, with other content: both versions, for quarantine.

    Attributes:
        source_row: The row's position (or id) in the source being loaded.
        stored_batch: The batch that holds the id.
        stored_row: The stored row's own `source_row`.
        received: The row as this load has it (event time, features, label).
        stored: The row as `transactions` holds it.
    """

    source_row: int
    stored_batch: str
    stored_row: int
    received: dict[str, object]
    stored: dict[str, object]


@dataclass(frozen=True)
class LoadResult:
    """What a load did.

    Attributes:
        inserted: Rows added to `transactions`.
        skipped: Rows whose id was already there (left untouched), conflicts included.
        path: ``copy`` (into a new partition) or ``merge`` (staging + ON CONFLICT DO NOTHING).
        conflicts: Of the skipped rows, those whose content differs from the stored row.
    """

    inserted: int
    skipped: int
    path: Literal["copy", "merge"]
    conflicts: list[Conflict]


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


def ensure_batch_partition(conn: Connection, batch_id: str) -> None:
    """Make sure the batch's partition of `transactions` exists and is attached (empty if new).

    For writers that insert rows through `transactions` itself (tests, tools); ingest uses
    `load_transactions`, which fills a new partition before attaching it.
    """
    conn.execute("SELECT fraudpipe_batch_table(%s)", (batch_id,))
    conn.execute("SELECT fraudpipe_attach_batch_table(%s)", (batch_id,))


def load_transactions(
    conn: Connection,
    batch: DayBatch,
    source: str,
    payload: pgcopy.BinaryCopyPayload,
    on_rows: RowsDone | None = None,
) -> LoadResult:
    """Load a new batch's rows, skipping ids already loaded, in the caller's transaction.

    The batch's row in `batches` (with its `source_row` range) must already be written in
    this transaction. Its rows go by binary COPY into the batch's own new partition, bare;
    rows whose id another batch of the source already holds are removed; then the partition
    gets its key and index (one sort each) and is attached.

    Args:
        conn: A connection inside a transaction (the batch's).
        batch: The day batch (its id and `source_row` range).
        source: The source's name.
        payload: The rows (`transaction_payload`).
        on_rows: Progress callback.

    Returns:
        Rows inserted and skipped, and which path was taken.
    """
    table = new_batch_table(conn, batch.batch_id)
    if table is None:
        # The partition outlived its batch row (rows removed by hand): add through the parent.
        inserted, conflicts = merge_transactions(conn, batch, source, payload, on_rows)
        return LoadResult(inserted, payload.rows - inserted, "merge", conflicts)
    # FREEZE: the table was created in this transaction, so its rows can be written already
    # frozen, sparing the first reader (the publisher) a rewrite of every page's hint bits.
    _copy(conn, table, payload, on_rows, freeze=True)
    skipped, conflicts = finish_batch_table(
        conn, table, batch.batch_id, source, source_row_span(batch)
    )
    return LoadResult(payload.rows - skipped, skipped, "copy", conflicts)


def new_batch_table(conn: Connection, batch_id: str) -> sql.Identifier | None:
    """Create the batch's own bare table, to fill then `finish_batch_table`, in this transaction.

    Also tunes the rest of the transaction for filling and indexing it (`tune_new_table_load`).

    Returns:
        The table, or None when the batch's partition already exists (then nothing is created).
    """
    row = conn.execute(
        "SELECT table_name, is_new FROM fraudpipe_batch_table(%s)", (batch_id,)
    ).fetchone()
    assert row is not None
    if not row[1]:
        return None
    tune_new_table_load(conn)
    return sql.Identifier(row[0])


#: What `tune_new_table_load` sets, for the rest of the transaction only.
NEW_TABLE_LOAD_SETTINGS: Final = {
    "backend_flush_after": "256kB",
    "max_parallel_maintenance_workers": "0",
}


def tune_new_table_load(conn: Connection) -> None:
    """Settings for the rest of this transaction, which fills a new table and then indexes it.

    - ``backend_flush_after``: with minimal WAL a table created and filled in one transaction
      is not WAL-logged; its files are fsynced at commit instead, ~75 MB for a ULB day, which
      took the commit 0.12-0.2 s. Written back every 256 kB as the COPY goes, the commit has
      little left (~0.07 s). Only here: elsewhere (the scorer's small COPYs and commits)
      early write-back only adds I/O.
    - ``max_parallel_maintenance_workers = 0``: a parallel index build starts worker processes
      and has each sort its share into a temporary file for the leader to merge. For a day's
      partition (~0.1 s per index) on cores already busy with the load, that cost more than it
      saved: serial builds made the whole ULB ingest ~8% faster (medians of 10 paired runs).
    """
    set_for_transaction(conn, NEW_TABLE_LOAD_SETTINGS)


def copy_statement(table: sql.Composable, *, freeze: bool = False) -> sql.Composed:
    """``COPY <table> (<transactions columns>) FROM STDIN`` in binary (FREEZE: a table new in
    this transaction)."""
    options = sql.SQL("FORMAT BINARY, FREEZE" if freeze else "FORMAT BINARY")
    return sql.SQL("COPY {} ({}) FROM STDIN ({})").format(table, _COLUMN_LIST, options)


@contextmanager
def streaming_copy(
    conn: Connection, table: sql.Identifier, *, freeze: bool = False
) -> Iterator[Callable[[Buffer], None]]:
    """A binary COPY into `table` left open while the caller sends rows, piece by piece.

    Yields the function that sends bytes of rows (`BinaryCopyPayload.records`); the stream's
    header goes first and its trailer last. Rows that fail make the COPY, and the caller's
    transaction, fail.
    """
    with conn.cursor() as cur, cur.copy(copy_statement(table, freeze=freeze)) as copy:
        copy.write(pgcopy.HEADER)
        yield copy.write
        copy.write(pgcopy.TRAILER)


def finish_batch_table(
    conn: Connection,
    table: sql.Identifier,
    batch_id: str,
    source: str,
    span: tuple[int, int] | None,
) -> tuple[int, list[Conflict]]:
    """Remove rows another batch already holds, then key, index and attach the table.

    Args:
        span: Lowest and highest `source_row` in the table (None: it is empty).

    Returns:
        Rows removed as already loaded, and those of them whose content differs.
    """
    overlapping = _overlapping_batches(conn, source, span)
    if not overlapping:
        conn.execute("SELECT fraudpipe_attach_batch_table(%s)", (batch_id,))
        return 0, []
    conflicts = find_conflicts(conn, table, overlapping)
    # The owner deletes (migration 0005): the app role has no DELETE on any table it does not own.
    row = conn.execute(
        "SELECT fraudpipe_drop_known_rows(%s, %s)", (batch_id, overlapping)
    ).fetchone()
    assert row is not None
    conn.execute("SELECT fraudpipe_attach_batch_table(%s)", (batch_id,))
    return int(row[0]), conflicts


def source_row_span(batch: DayBatch) -> tuple[int, int] | None:
    """Lowest and highest `source_row` of a batch's rows (None when it has none)."""
    if not batch.rows:
        return None
    return int(batch.source_rows.min()), int(batch.source_rows.max())


def merge_transactions(
    conn: Connection,
    batch: DayBatch,
    source: str,
    payload: pgcopy.BinaryCopyPayload,
    on_rows: RowsDone | None = None,
) -> tuple[int, list[Conflict]]:
    """Add the rows of an existing batch that are not loaded yet (staging, then INSERT).

    Returns:
        Rows inserted, and the rows whose id was loaded already with other content.
    """
    ensure_batch_partition(conn, batch.batch_id)
    staging = _staging_table(conn)
    _copy(conn, staging, payload, on_rows)
    _, conflicts = _drop_known_staged(conn, staging, source, source_row_span(batch))
    cur = conn.execute(
        sql.SQL(
            "INSERT INTO transactions ({cols}) SELECT {cols} FROM {staging} "
            "ON CONFLICT (batch_id, transaction_id) DO NOTHING"
        ).format(cols=_COLUMN_LIST, staging=staging)
    )
    conn.execute(sql.SQL("DROP TABLE {}").format(staging))
    return cur.rowcount, conflicts


def count_new_transactions(
    conn: Connection, batch: DayBatch, source: str, payload: pgcopy.BinaryCopyPayload
) -> tuple[int, list[Conflict]]:
    """How many of the payload's ids are not loaded yet, and the rows whose id is loaded with
    other content (nothing is inserted)."""
    staging = _staging_table(conn)
    _copy(conn, staging, payload, None)
    known, conflicts = _drop_known_staged(conn, staging, source, source_row_span(batch))
    conn.execute(sql.SQL("DROP TABLE {}").format(staging))
    return payload.rows - known, conflicts


def _overlapping_batches(conn: Connection, source: str, span: tuple[int, int] | None) -> list[str]:
    """Batches of `source` that may hold ids of rows in `span`, locked against new ones.

    An id is a function of ``(source, source_row)``, so only batches of the same source whose
    `source_row` range overlaps this one's can hold it. The per-source lock, held until the
    transaction ends, makes a concurrent load of an overlapping batch wait and then see this
    one's rows.
    """
    if span is None:
        return []
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"source-rows:{source}",)
    )
    lo, hi = span
    return [
        r[0]
        for r in conn.execute(
            "SELECT batch_id FROM batches WHERE source = %s AND (min_source_row IS NULL "
            "OR (min_source_row <= %s AND max_source_row >= %s))",
            (source, hi, lo),
        ).fetchall()
    ]


def _drop_known_staged(
    conn: Connection, staging: sql.Identifier, source: str, span: tuple[int, int] | None
) -> tuple[int, list[Conflict]]:
    """Delete from a staging table (the session's own) the rows whose id is already loaded;
    returns how many, and those of them whose content differs."""
    overlapping = _overlapping_batches(conn, source, span)
    if not overlapping:
        return 0, []
    conflicts = find_conflicts(conn, staging, overlapping)
    cur = conn.execute(
        sql.SQL(
            "DELETE FROM {} n USING transactions t WHERE t.batch_id = ANY(%s) "
            "AND t.transaction_id = n.transaction_id"
        ).format(staging),
        (overlapping,),
    )
    return max(cur.rowcount, 0), conflicts


#: What a row is, beyond its id: compared to tell a re-send from a conflict.
_CONTENT: Final = ("event_time", *FEATURE_COLUMNS, LABEL_COLUMN)


def _content_json(alias: str) -> sql.Composed:
    pairs = [
        sql.SQL("{}, {}.{}").format(sql.Literal(c), sql.Identifier(alias), sql.Identifier(c))
        for c in _CONTENT
    ]
    return sql.SQL("json_build_object({})").format(sql.SQL(", ").join(pairs))


def find_conflicts(conn: Connection, table: sql.Identifier, batches: list[str]) -> list[Conflict]:
    """Rows of `table` whose id `batches` hold with other content (event time, features, label).

    Args:
        conn: A connection in the load's transaction.
        table: The rows being loaded (a new batch table, or a staging table).
        batches: The batches to look in (those that may hold the rows' ids).
    """
    query = sql.SQL(
        "SELECT n.source_row, t.batch_id, t.source_row, {received}, {stored} "
        "FROM {table} n JOIN transactions t ON t.transaction_id = n.transaction_id "
        "WHERE t.batch_id = ANY(%s) AND ({n_content}) IS DISTINCT FROM ({t_content})"
    ).format(
        received=_content_json("n"),
        stored=_content_json("t"),
        table=table,
        n_content=sql.SQL(", ").join(sql.SQL("n.{}").format(sql.Identifier(c)) for c in _CONTENT),
        t_content=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in _CONTENT),
    )
    return [
        Conflict(int(r[0]), str(r[1]), int(r[2]), dict(r[3]), dict(r[4]))
        for r in conn.execute(query, (batches,)).fetchall()
    ]


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
    *,
    freeze: bool = False,
) -> None:
    sent = 0
    with conn.cursor() as cur, cur.copy(copy_statement(table, freeze=freeze)) as copy:
        for chunk, rows in payload.chunks():
            copy.write(chunk)
            sent += rows
            if on_rows and rows:
                on_rows(sent)
