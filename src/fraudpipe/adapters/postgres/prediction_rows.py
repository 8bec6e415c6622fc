"""A micro-batch's predictions as binary COPY rows of the `predictions` table.

Rows go in key order, grouped by batch id: batch ids in code-point order, transaction ids
ascending within each. A batch id is a function of its transaction id, so two writers of
overlapping rows insert them in the same order and cannot deadlock on each other's uncommitted
keys (one waits, the other finishes). Grouping by batch id also gives every row of a group the
same width, which is what the numpy encoder (`pgcopy`) needs.

Each transaction id appears once: the table's key allows no more, and a duplicate in a COPY
fails the whole COPY. Of duplicates (a transaction published twice), the first in the
micro-batch is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt
from psycopg import sql

from fraudpipe.adapters.postgres import pgcopy
from fraudpipe.microbatch import ScoredBatch, TransactionBatch

#: The columns the payload carries, in its order.
COLUMNS: Final = (
    "transaction_id",
    "model_name",
    "model_version",
    "batch_id",
    "score",
    "is_fraud",
    "threshold",
    "scored_at",
    "latency_ms",
)
COPY_PREDICTIONS: Final = sql.SQL("COPY predictions ({}) FROM STDIN (FORMAT BINARY)").format(
    sql.SQL(", ").join(sql.Identifier(c) for c in COLUMNS)
)

#: A challenger's scores, in shadow (`shadow_payload`).
SHADOW_COLUMNS: Final = (
    "transaction_id",
    "model_name",
    "model_version",
    "champion_version",
    "batch_id",
    "score",
    "would_alert",
    "threshold",
    "scored_at",
)
COPY_SHADOW: Final = sql.SQL("COPY shadow_predictions ({}) FROM STDIN (FORMAT BINARY)").format(
    sql.SQL(", ").join(sql.Identifier(c) for c in SHADOW_COLUMNS)
)

#: Per batch id (as its code in the micro-batch), its rows' positions in key order.
KeyOrder = list[tuple[int, npt.NDArray[np.intp]]]


def key_order(txs: TransactionBatch) -> KeyOrder:
    """The micro-batch's rows in the order they are written, each transaction id once.

    Returns:
        Per batch id that has rows, in code-point order of the batch ids: its code in
        ``txs.batch_ids`` and the positions of its rows, ascending by transaction id.
    """
    order: KeyOrder = []
    for code in sorted(range(len(txs.batch_ids)), key=txs.batch_ids.__getitem__):
        rows = np.flatnonzero(txs.batch_codes == code)
        if len(rows):
            order.append((code, _first_of_each_id(txs.ids, rows)))
    return order


def prediction_payload(
    scored: ScoredBatch, order: KeyOrder | None = None
) -> pgcopy.BinaryCopyPayload:
    """The micro-batch's predictions in `COLUMNS` order, ready for `COPY_PREDICTIONS`.

    Args:
        scored: The micro-batch.
        order: Its `key_order`, when the caller has it already.
    """
    txs = scored.transactions

    def columns(code: int, rows: npt.NDArray[np.intp]) -> list[pgcopy.BinaryColumn]:
        n = len(rows)
        return [
            pgcopy.uuid_column(txs.ids[rows]),
            pgcopy.text_constant(scored.model_name, n),
            pgcopy.int4(np.full(n, scored.model_version)),
            pgcopy.text_constant(txs.batch_ids[code], n),
            pgcopy.float8(scored.scores[rows]),
            pgcopy.boolean(scored.is_fraud[rows]),
            pgcopy.float8(np.full(n, scored.threshold)),
            pgcopy.timestamptz_from_unix_us(np.full(n, scored.scored_at_us)),
            pgcopy.float8(scored.latency_ms[rows]),
        ]

    return _payload(scored, order, columns)


def shadow_payload(shadow: ScoredBatch, champion_version: int) -> pgcopy.BinaryCopyPayload:
    """A challenger's scores in `SHADOW_COLUMNS` order, ready for `COPY_SHADOW`.

    ``is_fraud`` is what it would have decided (``would_alert``); rows in key order, as the
    predictions they shadow.
    """
    txs = shadow.transactions

    def columns(code: int, rows: npt.NDArray[np.intp]) -> list[pgcopy.BinaryColumn]:
        n = len(rows)
        return [
            pgcopy.uuid_column(txs.ids[rows]),
            pgcopy.text_constant(shadow.model_name, n),
            pgcopy.int4(np.full(n, shadow.model_version)),
            pgcopy.int4(np.full(n, champion_version)),
            pgcopy.text_constant(txs.batch_ids[code], n),
            pgcopy.float8(shadow.scores[rows]),
            pgcopy.boolean(shadow.is_fraud[rows]),
            pgcopy.float8(np.full(n, shadow.threshold)),
            pgcopy.timestamptz_from_unix_us(np.full(n, shadow.scored_at_us)),
        ]

    return _payload(shadow, None, columns)


def _payload(
    scored: ScoredBatch,
    order: KeyOrder | None,
    columns: Callable[[int, npt.NDArray[np.intp]], list[pgcopy.BinaryColumn]],
) -> pgcopy.BinaryCopyPayload:
    groups: list[npt.NDArray[np.void]] = []
    rows_total = 0
    for code, rows in key_order(scored.transactions) if order is None else order:
        groups.extend(pgcopy.encode(columns(code, rows)).groups)
        rows_total += len(rows)
    return pgcopy.BinaryCopyPayload(groups, rows_total)


def _first_of_each_id(
    ids: npt.NDArray[np.uint8], rows: npt.NDArray[np.intp]
) -> npt.NDArray[np.intp]:
    # uuid order is byte order: the two big-endian halves as integers, high half first.
    # lexsort of the halves is ~3x faster than argsort of the ids as 16-byte strings, and
    # stable, so the first of equal ids stays first.
    halves = np.ascontiguousarray(ids[rows]).view(">u8")
    order = np.lexsort((halves[:, 1], halves[:, 0]))
    ordered = halves[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    return rows[order[first]]
