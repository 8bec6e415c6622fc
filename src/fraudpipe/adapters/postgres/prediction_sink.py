"""PostgreSQL side of a micro-batch: predictions, alert reasons, the shadow's scores and dead
letters in ONE transaction.

Predictions are idempotent on ``(transaction_id, model_version)``: a micro-batch redelivered
after a crash or a rebalance (or a transaction published twice) inserts nothing new. A
micro-batch is almost always new, so that case decides the design and a redelivery pays for
itself:

1. Check that every prediction names a transaction PostgreSQL holds under the message's batch,
   with the content the message carried, set-based: per batch id of the micro-batch, one join
   of its rows (binary array parameters, `arrays`: the ids in key order so neighbouring probes
   share index pages, and the event time and features the message carried) with the batch's
   partition of `transactions` (the batch id a constant, so the plan touches that partition
   alone). The queries of a micro-batch go in one pipeline: one round trip. A per-row foreign
   key did the existence half at a trigger, a query and a row lock per prediction (see
   migration 0003). A message whose id is unknown, or whose content differs from the stored
   row (a forged message with a real id, say), is reported by its row, and nothing is written,
   so the caller can dead-letter just those and write the rest: the stored row is the record,
   and the genuine message still gets its prediction.
2. Binary COPY of the rows (`prediction_rows`: encoded with numpy before anything is sent, in
   key order, each id once), then of the shadow's scores of the same rows, if a challenger
   scores in shadow. Alone, the COPY is its own transaction (autocommit); with dead letters,
   reasons or shadow rows, they share an explicit one. A 200-tree HGB in shadow cost 50.5% of
   the end-to-end rate while its rows went by INSERT, 29.7% by COPY (bench/stream.py, one run
   each, output transactions ON); the rest is scoring with it (22 ms per 5,000 rows).
3. Only if the COPY hits a row that is already there (``unique_violation``: a redelivery, or
   another scorer writing the same messages during a rebalance, its COPY waited for first) is
   the transaction rolled back and the micro-batch written again by ONE ``INSERT … ON
   CONFLICT DO NOTHING`` statement over array parameters, which inserts only what is missing
   and checks the ids again in the same statement. Then each row's prediction is read back as
   stored (`WriteOutcome.stored`), whichever attempt wrote it: the outputs a redelivered
   micro-batch publishes are the records PostgreSQL holds, with their first scoring time.

The check runs in its own (implicit) transaction, before the one that inserts. That is as
strong as checking inside it: rows of `transactions` are never updated or deleted, so a
transaction that is there stays there, and even inside one READ COMMITTED transaction (or one
statement) nothing locked the checked rows.

Measured on the dev database (2 shared cores, load ~1; random real ids over both batches; the
median of 3 runs): PostgreSQL CPU per row, old single statement → this design, was 38 → 24 µs
(100-row micro-batches), 24 → 16 µs (1,000), 22 → 12 µs (5,000), 19 → 12 µs (10,000): ~85k
rows/s per connection at 10k rows. Of the 12 µs the COPY is ~9 and the check ~3-5 (a join of
all ids against `transactions` with the batch id per row cost ~7.5: its partition was pruned per
row). COPY in key order saves PostgreSQL ~2 µs a row over the same rows unsorted. The price:
the scorer's thread spends ~3 ms (1,000 rows) to ~8 ms (10,000) of CPU per micro-batch instead
of 1-2 (sorting, encoding, a statement and two round trips more), and a redelivery costs ~1.5x
what it did (10,000 rows, all stored: 140 → 210 ms; half stored: 200 → 270 ms), as it pays for
the check and the failed COPY before the statement that used to be the whole write.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg
import structlog
from psycopg import errors as pg_errors
from psycopg import sql

from fraudpipe.adapters.postgres.arrays import (
    bool_array,
    float8_array,
    float8_matrix,
    int4_array,
    int8_array,
    register_array_dumpers,
    uuid_array,
)
from fraudpipe.adapters.postgres.connect import Connection, connect
from fraudpipe.adapters.postgres.pgcopy import BinaryCopyPayload
from fraudpipe.adapters.postgres.prediction_rows import (
    COPY_PREDICTIONS,
    COPY_SHADOW,
    KeyOrder,
    key_order,
    prediction_payload,
    shadow_payload,
)
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError
from fraudpipe.microbatch import AlertReasons, DeadLetter, ScoredBatch, TransactionBatch

log = structlog.get_logger(__name__)

#: Session settings of the sink's connection, and why:
_SESSION: Final = {
    # A connection lost mid-transaction without the server noticing (a network cut) leaves its
    # backend idle in the transaction, holding the rows the retry inserts again; the retry
    # would wait on them forever. The server ends such a session. A micro-batch's transaction
    # never idles between statements longer than the write thread takes to get the GIL back.
    "idle_in_transaction_session_timeout": "30s",
    # The same cut in the middle of a COPY leaves the backend waiting for the rest of the data
    # (not idle, and deaf to statement_timeout while it reads), holding the rows sent so far:
    # keepalive probes tell it the client is gone after 10 + 3 × 5 s.
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    # The generic plan from the first micro-batch on (the statements are prepared at once): a
    # custom plan sees the ids array's real length and, for a large micro-batch, hashes the
    # whole partition of `transactions` instead of probing its index per id. Measured on the
    # dev database (10k rows a query, 100k-row partition, median of 10): the check took 18 µs
    # a row with custom plans and 3.4 with the generic one. Without this, each connection ran
    # its first ten or so micro-batches with custom plans (psycopg prepares at the fifth).
    "plan_cache_mode": "force_generic_plan",
}
#: Step 1: the rows of one batch's part of the micro-batch that `transactions` does not hold
#: under it (unknown), or holds with other content (conflict). The message's event time has
#: millisecond precision (its Avro type), the stored one microseconds: compared in milliseconds,
#: as the publisher truncated it. The features go as ONE two-dimensional array, each row's
#: looked up by its ordinality: as 29 one-dimensional arrays unnested side by side, PostgreSQL
#: materialised each of them first, and the check cost 5.6 µs a row where this costs 3.5 (10k
#: rows a query, the median of 10 on the dev database; existence alone costs 0.9).
_CHECK_ROWS: Final = (
    "SELECT s.n, t.transaction_id IS NULL"
    " FROM (SELECT %(event_ms)s::bigint[] AS event_ms, %(features)s::float8[] AS f) m,"
    " unnest(%(ids)s) WITH ORDINALITY AS s(transaction_id, n)"
    " LEFT JOIN transactions t"
    " ON t.batch_id = %(batch_id)s AND t.transaction_id = s.transaction_id"
    " WHERE t.transaction_id IS NULL"
    " OR floor(extract(epoch FROM t.event_time) * 1000)::bigint <> m.event_ms[s.n]"
    " OR ("
    + ", ".join(f"t.{c}" for c in FEATURE_COLUMNS)
    + ") IS DISTINCT FROM ("
    + ", ".join(f"m.f[s.n][{k}]" for k in range(1, len(FEATURE_COLUMNS) + 1))
    + ")"
)
# Step 3, the redelivery: check and insert what is missing in one statement.
# MATERIALIZED: `unknown` is read twice (the insert's guard and the result) and must be
# computed once; `staged` feeds both the check and the insert. Rows go in the COPY's order
# (batch id by code point, which "C" is for UTF-8, then id): two writers of the same rows take
# their keys in the same order, whichever of the two ways each writes.
_MERGE: Final = """
WITH staged AS MATERIALIZED (
    SELECT s.transaction_id, b.batch_id, s.score, s.is_fraud, s.latency_ms
    FROM unnest(%(ids)s, %(codes)s, %(scores)s, %(is_fraud)s, %(latency_ms)s)
         AS s(transaction_id, batch_code, score, is_fraud, latency_ms)
    JOIN unnest(%(batch_ids)s::text[]) WITH ORDINALITY AS b(batch_id, code)
      ON b.code = s.batch_code
), unknown AS MATERIALIZED (
    SELECT st.transaction_id FROM staged st
    WHERE NOT EXISTS (
        SELECT 1 FROM transactions t
        WHERE t.batch_id = st.batch_id AND t.transaction_id = st.transaction_id
    )
), inserted AS (
    INSERT INTO predictions (transaction_id, model_name, model_version, batch_id, score,
                             is_fraud, threshold, scored_at, latency_ms)
    SELECT st.transaction_id, %(model_name)s, %(model_version)s, st.batch_id, st.score,
           st.is_fraud, %(threshold)s, %(scored_at)s, st.latency_ms
    FROM staged st
    WHERE NOT EXISTS (SELECT 1 FROM unknown)
    ORDER BY st.batch_id COLLATE "C", st.transaction_id
    ON CONFLICT (transaction_id, model_version) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted), ARRAY(SELECT transaction_id FROM unknown)
"""
#: After a redelivery's merge: each row's prediction as stored (by whichever attempt wrote it),
#: so the outputs a redelivery republishes are the records PostgreSQL holds.
_STORED: Final = """
SELECT s.n, p.score, p.is_fraud, floor(extract(epoch FROM p.scored_at) * 1000)::bigint
FROM unnest(%(ids)s) WITH ORDINALITY AS s(transaction_id, n)
JOIN predictions p ON p.transaction_id = s.transaction_id AND p.model_version = %(model_version)s
"""
#: An alert's reasons, in the micro-batch's transaction after its predictions (their foreign
#: key needs them); a redelivery adds nothing.
_INSERT_REASONS: Final = """
INSERT INTO alert_reasons
    (transaction_id, model_version, rank, feature, contribution, description, method)
SELECT r.transaction_id, %(model_version)s, r.rank, r.feature, r.contribution, r.description,
       %(method)s
FROM unnest(%(ids)s, %(ranks)s::smallint[], %(features)s::text[], %(contributions)s,
            %(descriptions)s::text[])
     AS r(transaction_id, rank, feature, contribution, description)
ORDER BY r.transaction_id, r.rank
ON CONFLICT (transaction_id, model_version, rank) DO NOTHING
"""
#: The challenger's scores of the same rows, in shadow (only rows the micro-batch writes).
_INSERT_SHADOW: Final = """
INSERT INTO shadow_predictions (transaction_id, model_name, model_version, champion_version,
                                batch_id, score, would_alert, threshold, scored_at)
SELECT s.transaction_id, %(model_name)s, %(model_version)s, %(champion_version)s, b.batch_id,
       s.score, s.is_fraud, %(threshold)s, %(scored_at)s
FROM unnest(%(ids)s, %(codes)s, %(scores)s, %(is_fraud)s, %(latency_ms)s)
     AS s(transaction_id, batch_code, score, is_fraud, latency_ms)
JOIN unnest(%(batch_ids)s::text[]) WITH ORDINALITY AS b(batch_id, code) ON b.code = s.batch_code
ORDER BY s.transaction_id
ON CONFLICT (transaction_id, model_version) DO NOTHING
"""
_INSERT_DEAD_LETTER: Final = """
INSERT INTO dead_letters (topic, partition, "offset", key, value, error_type, error)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (topic, partition, "offset") DO NOTHING
"""


@dataclass(frozen=True)
class WriteOutcome:
    """What one `PredictionSink.write` did.

    Attributes:
        committed: True when the transaction committed; False when nothing was written
            because some rows cannot be (`unknown_rows`, `conflicting_rows`).
        inserted: Prediction rows inserted (redelivered ones are not counted).
        stored: Set when rows were stored already: the verdicts PostgreSQL holds, per row.
        unknown_rows: Rows of the micro-batch whose transaction `transactions` does not hold.
        conflicting_rows: Rows whose transaction it holds with other content.
    """

    committed: bool
    inserted: int
    stored: StoredVerdicts | None = None
    """When some rows were there already (a redelivery): every row's verdict as stored."""
    unknown_rows: npt.NDArray[np.intp] = field(default_factory=lambda: np.empty(0, np.intp))
    conflicting_rows: npt.NDArray[np.intp] = field(default_factory=lambda: np.empty(0, np.intp))


@dataclass(frozen=True)
class StoredVerdicts:
    """Each row's prediction as PostgreSQL holds it, in the micro-batch's row order."""

    scores: npt.NDArray[np.float64]
    is_fraud: npt.NDArray[np.bool_]
    scored_at_ms: npt.NDArray[np.int64]


class PredictionSink:
    """Writes micro-batches to PostgreSQL over one long-lived app-role connection."""

    def __init__(self, settings: Settings) -> None:
        """Prepare the sink; it connects on first use (and again after losing the connection)."""
        self._settings = settings
        self._conn: Connection | None = None

    def write(
        self,
        scored: ScoredBatch | None,
        dead_letters: Sequence[DeadLetter],
        reasons: AlertReasons | None = None,
        shadow: ScoredBatch | None = None,
    ) -> WriteOutcome:
        """Insert predictions, their alerts' reasons, the shadow's scores and dead-letter rows
        in one transaction.

        Args:
            scored: The micro-batch's predictions (None or empty when there are none).
            dead_letters: The micro-batch's dead letters (already on the DLQ topic).
            reasons: The alerts' reasons (`fraudpipe.microbatch.AlertReasons`), if any.
            shadow: The challenger's scores of the micro-batch, if one scores in shadow: only
                the rows `scored` holds are written.

        Returns:
            The outcome; when `unknown_ids` is not empty nothing was written.

        Raises:
            ServiceUnavailableError: PostgreSQL cannot be reached or dropped the connection;
                repeat the call (whether or not the lost statement committed, the repeat
                inserts only what is missing).
            psycopg.errors.TransactionRollback: A deadlock with another scorer rolled the
                transaction back; repeat the call.
        """
        conn = self._connection()
        try:
            inserted, stored = _write(conn, scored, dead_letters, reasons or AlertReasons(), shadow)
        except _Refused as refused:
            return WriteOutcome(
                False, 0, unknown_rows=refused.unknown, conflicting_rows=refused.conflicting
            )
        except pg_errors.TransactionRollback:
            raise  # deadlock/serialization: rolled back whole, the connection is fine; retry
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise self._unavailable(exc) from exc
        return WriteOutcome(True, inserted, stored)

    def connect(self) -> None:
        """Open the connection now (at start-up), so the first micro-batch does not wait for it.

        Raises:
            ServiceUnavailableError: PostgreSQL cannot be reached (retry).
        """
        self._connection()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._drop_connection()

    def _connection(self) -> Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        # Autocommit: without dead letters, a micro-batch's COPY is its own transaction.
        conn = connect(self._settings, "app", autocommit=True)
        conn.prepare_threshold = 0  # see ``plan_cache_mode`` in `_SESSION`
        register_array_dumpers(conn)
        try:
            for name, value in _SESSION.items():
                conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(name), value))
        except psycopg.OperationalError as exc:
            conn.close()
            raise self._unavailable(exc) from exc
        self._conn = conn
        return conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _unavailable(self, exc: Exception) -> ServiceUnavailableError:
        s = self._settings
        return ServiceUnavailableError(
            "PostgreSQL",
            f"{s.pg_host}:{s.pg_port}/{s.pg_database}",
            f"waiting for it to come back ({str(exc).strip()})",
        )


def _write(
    conn: Connection,
    scored: ScoredBatch | None,
    dead_letters: Sequence[DeadLetter],
    reasons: AlertReasons,
    shadow: ScoredBatch | None,
) -> tuple[int, StoredVerdicts | None]:
    """Steps 1-3 of the module doc; the predictions inserted, and after step 3 those stored."""
    if scored is None or not len(scored):
        with _transaction_if(conn, bool(dead_letters)):
            _insert_dead_letters(conn, dead_letters)
        return 0, None
    order = key_order(scored.transactions)
    # Encoded before the first statement: no transaction waits on numpy.
    payload = prediction_payload(scored, order)
    explained = _reason_params(scored, reasons)
    shadowed = _shadow_rows(scored, shadow)
    explicit = bool(dead_letters) or explained is not None or shadowed is not None
    _check_known(conn, scored.transactions, order)
    try:
        with _transaction_if(conn, explicit):
            _copy(conn, COPY_PREDICTIONS, payload)
            if shadowed is not None:
                # New predictions, so new shadow rows too (but for a challenger that shadowed
                # an earlier champion's attempt: then the merge path below takes them).
                _copy(conn, COPY_SHADOW, shadow_payload(shadowed, scored.model_version))
            _insert_extras(conn, explained, None, dead_letters)
        return payload.rows, None
    except _AlreadyStored:
        with _transaction_if(conn, explicit):
            inserted = _merge(conn, scored)
            _insert_extras(conn, explained, shadowed, dead_letters, scored.model_version)
        return inserted, _stored(conn, scored)


def _insert_extras(
    conn: Connection,
    reasons: dict[str, object] | None,
    shadow: ScoredBatch | None,
    dead_letters: Sequence[DeadLetter],
    champion_version: int = 0,
) -> None:
    """What goes in the micro-batch's transaction after its predictions (shadow rows here
    only on the merge path: set-based, idempotent)."""
    if reasons is not None:
        conn.execute(_INSERT_REASONS, reasons)
    if shadow is not None:
        conn.execute(
            _INSERT_SHADOW, {**_merge_params(shadow), "champion_version": champion_version}
        )
    _insert_dead_letters(conn, dead_letters)


def _shadow_rows(scored: ScoredBatch, shadow: ScoredBatch | None) -> ScoredBatch | None:
    """The shadow's scores of the rows `scored` holds (None: none)."""
    if shadow is None or not len(shadow):
        return None
    keep = np.isin(_as_keys(shadow.transactions.ids), _as_keys(scored.transactions.ids))
    if not keep.any():
        return None
    return shadow if keep.all() else shadow.select(keep)


def _as_keys(ids: npt.NDArray[np.uint8]) -> npt.NDArray[np.void]:
    return np.ascontiguousarray(ids).view(np.dtype((np.void, 16))).ravel()


def _stored(conn: Connection, scored: ScoredBatch) -> StoredVerdicts:
    """Every row's verdict as stored (rows never change once written: read after the commit)."""
    verdicts = StoredVerdicts(
        scored.scores.copy(), scored.is_fraud.copy(), np.full(len(scored), scored.scored_at_ms)
    )
    params = {"ids": uuid_array(scored.transactions.ids), "model_version": scored.model_version}
    for n, score, is_fraud, scored_at_ms in conn.execute(_STORED, params):
        verdicts.scores[n - 1] = score
        verdicts.is_fraud[n - 1] = is_fraud
        verdicts.scored_at_ms[n - 1] = scored_at_ms
    return verdicts


def _transaction_if(conn: Connection, explicit: bool) -> AbstractContextManager[object]:
    # Alone, a statement of the autocommit connection is its own transaction.
    return conn.transaction() if explicit else nullcontext()


def _check_known(conn: Connection, txs: TransactionBatch, order: KeyOrder) -> None:
    """Step 1; raises `_Refused` naming the rows that are unknown or conflicting."""
    with conn.pipeline():
        cursors = [
            (rows, conn.execute(_CHECK_ROWS, _check_params(txs, code, rows)))
            for code, rows in order
        ]
    unknown: list[int] = []
    conflicting: list[int] = []
    for rows, cur in cursors:
        for n, missing in cur.fetchall():
            (unknown if missing else conflicting).append(int(rows[n - 1]))
    if unknown or conflicting:
        raise _Refused(unknown, conflicting)


def _check_params(txs: TransactionBatch, code: int, rows: npt.NDArray[np.intp]) -> dict[str, Any]:
    columns = txs.columns
    return {
        "batch_id": txs.batch_ids[code],
        "ids": uuid_array(txs.ids[rows]),
        "event_ms": int8_array(columns["event_time"][rows]),
        "features": float8_matrix([columns[c][rows] for c in FEATURE_COLUMNS]),
    }


def _copy(conn: Connection, statement: sql.Composed, payload: BinaryCopyPayload) -> None:
    """Step 2; raises `_AlreadyStored` when a row's key is taken."""
    try:
        with conn.cursor() as cur, cur.copy(statement) as copy:
            for chunk, _ in payload.chunks():
                copy.write(chunk)
    except pg_errors.UniqueViolation as exc:
        raise _AlreadyStored from exc


def _merge(conn: Connection, scored: ScoredBatch) -> int:
    """Step 3; raises `_Refused` when it inserted nothing because of unknown ids."""
    inserted, unknown = _single_row(conn.execute(_MERGE, _merge_params(scored)))
    if unknown:
        wanted = {u.bytes for u in unknown}
        ids = scored.transactions.ids
        raise _Refused([i for i in range(len(ids)) if bytes(ids[i]) in wanted], [])
    return int(inserted)


def _reason_params(scored: ScoredBatch, reasons: AlertReasons) -> dict[str, object] | None:
    """The reasons of the micro-batch's alerts as array parameters (None when there are none)."""
    if not reasons.by_row:
        return None
    txs = scored.transactions
    rows = [
        (i, rank, driver)
        for i in np.flatnonzero(scored.is_fraud).tolist()
        for rank, driver in enumerate(reasons.get(int(txs.message_rows[i])), start=1)
    ]
    if not rows:
        return None
    return {
        "ids": uuid_array(txs.ids[np.array([r[0] for r in rows], dtype=np.intp)]),
        "ranks": [r[1] for r in rows],
        "features": [r[2].feature for r in rows],
        "contributions": float8_array(np.array([r[2].contribution for r in rows])),
        "descriptions": [r[2].description for r in rows],
        "model_version": scored.model_version,
        "method": reasons.method,
    }


def _insert_dead_letters(conn: Connection, dead_letters: Sequence[DeadLetter]) -> None:
    if dead_letters:
        with conn.cursor() as cur:
            cur.executemany(_INSERT_DEAD_LETTER, [_dead_row(d) for d in dead_letters])


def _single_row(cur: psycopg.Cursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    row = cur.fetchone()
    assert row is not None  # an aggregate or ARRAY() query always returns its one row
    return row


class _Refused(Exception):  # noqa: N818  # unwinds the transaction; never leaves this module
    def __init__(self, unknown: list[int], conflicting: list[int]) -> None:
        super().__init__(f"{len(unknown)} unknown and {len(conflicting)} conflicting rows")
        self.unknown = np.array(sorted(unknown), dtype=np.intp)
        self.conflicting = np.array(sorted(conflicting), dtype=np.intp)


class _AlreadyStored(Exception):  # noqa: N818  # unwinds the transaction; never leaves this module
    """Some of the micro-batch's predictions are in `predictions` already."""


def _merge_params(scored: ScoredBatch) -> dict[str, object]:
    txs = scored.transactions
    return {
        "ids": uuid_array(txs.ids),
        # 1-based: it joins the WITH ORDINALITY of the batch-id array.
        "codes": int4_array(txs.batch_codes + 1),
        "scores": float8_array(scored.scores),
        "is_fraud": bool_array(scored.is_fraud),
        "latency_ms": float8_array(scored.latency_ms),
        "batch_ids": list(txs.batch_ids),
        "model_name": scored.model_name,
        "model_version": scored.model_version,
        "threshold": scored.threshold,
        "scored_at": scored.scored_at,
    }


def _dead_row(letter: DeadLetter) -> tuple[object, ...]:
    # PostgreSQL text cannot hold NUL; an error message quoting raw bytes might.
    error = letter.error.replace("\x00", "\\x00")
    return (
        letter.topic,
        letter.partition,
        letter.offset,
        letter.key,
        letter.value,
        letter.error_type,
        error,
    )
