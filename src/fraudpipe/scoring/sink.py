"""PostgreSQL side of a micro-batch: predictions and dead letters in ONE transaction.

Predictions are idempotent on ``(transaction_id, model_version)``: a micro-batch redelivered
after a crash (or a transaction published twice) inserts nothing new. The whole micro-batch goes
in ONE statement, so one round trip: its columns travel as binary array parameters built with
numpy (`pg_arrays`), the constants of a micro-batch (model name, version, threshold, scored_at)
as scalar parameters; rows are inserted in key order, which keeps the primary-key probes on
neighbouring pages. Without dead letters the statement runs on its own (autocommit: the
statement is the transaction); with them, it and their rows share an explicit transaction.
Staging through COPY into a temporary table took BEGIN, COPY, INSERT and COMMIT round trips,
each of which the write thread then had to win the GIL back for.

Every prediction must name a transaction PostgreSQL holds under the message's batch. The same
statement checks that set-based before it inserts: an anti-join of the micro-batch's ids against
`transactions` (a nested loop whose inner side is the batch partitions' primary keys, pruned at
run time to the row's partition). A per-row foreign key did the same at a trigger, a query and a
row lock per prediction (see migration 0003). When ids are unknown the statement inserts nothing
and returns them; the sink rolls back whatever else the transaction did and reports them, so the
caller can dead-letter just them and write the rest.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import psycopg
import structlog
from psycopg import errors as pg_errors

from fraudpipe.config import Settings
from fraudpipe.db.connect import Connection, connect
from fraudpipe.errors import ServiceUnavailableError
from fraudpipe.scoring.batch import DeadLetter, ScoredBatch
from fraudpipe.scoring.pg_arrays import (
    bool_array,
    float8_array,
    int4_array,
    register_array_dumpers,
    uuid_array,
)

log = structlog.get_logger(__name__)

#: A micro-batch's transaction never idles between statements; one that does is orphaned.
_IDLE_TIMEOUT: Final = "30s"
# MATERIALIZED: `unknown` is read twice (the insert's guard and the result) and must be
# computed once; `staged` feeds both the check and the insert.
_WRITE: Final = """
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
    ORDER BY st.transaction_id
    ON CONFLICT (transaction_id, model_version) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted), ARRAY(SELECT transaction_id FROM unknown)
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
        committed: True when the transaction committed; False when it was rolled back because
            of `unknown_ids` (nothing was written then).
        inserted: Prediction rows inserted (redelivered ones are not counted).
        unknown_ids: n×16 UUID bytes of transaction ids missing from `transactions`.
    """

    committed: bool
    inserted: int
    unknown_ids: npt.NDArray[np.uint8]


class PredictionSink:
    """Writes micro-batches to PostgreSQL over one long-lived app-role connection."""

    def __init__(self, settings: Settings) -> None:
        """Prepare the sink; it connects on first use (and again after losing the connection)."""
        self._settings = settings
        self._conn: Connection | None = None

    def write(self, scored: ScoredBatch | None, dead_letters: Sequence[DeadLetter]) -> WriteOutcome:
        """Insert predictions and dead-letter rows in one transaction.

        Args:
            scored: The micro-batch's predictions (None or empty when there are none).
            dead_letters: The micro-batch's dead letters (already on the DLQ topic).

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
            if dead_letters:
                with conn.transaction():
                    inserted = self._insert(conn, scored)
                    with conn.cursor() as cur:
                        cur.executemany(_INSERT_DEAD_LETTER, [_dead_row(d) for d in dead_letters])
            else:
                inserted = self._insert(conn, scored)
        except _Unknown as unknown:
            return WriteOutcome(False, 0, unknown.ids)
        except pg_errors.TransactionRollback:
            raise  # deadlock/serialization: rolled back whole, the connection is fine; retry
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise self._unavailable(exc) from exc
        return WriteOutcome(True, inserted, np.empty((0, 16), np.uint8))

    @staticmethod
    def _insert(conn: Connection, scored: ScoredBatch | None) -> int:
        """The one statement: check, then insert; raises `_Unknown` when it inserted nothing."""
        if scored is None or not len(scored):
            return 0
        row = conn.execute(_WRITE, _write_params(scored)).fetchone()
        assert row is not None  # an aggregate query always returns its one row
        inserted, unknown = row
        if unknown:
            raise _Unknown(unknown)
        return int(inserted)

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
        # Autocommit: a micro-batch without dead letters is one statement, its own transaction.
        conn = connect(self._settings, "app", autocommit=True)
        register_array_dumpers(conn)
        try:
            # A connection lost mid-transaction without the server noticing (a network cut)
            # leaves its backend idle in the transaction, holding the rows the retry inserts
            # again; the retry would wait on them forever. The server ends such a session.
            conn.execute(f"SET idle_in_transaction_session_timeout = '{_IDLE_TIMEOUT}'")
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


class _Unknown(Exception):  # noqa: N818  # unwinds the transaction; never leaves this module
    def __init__(self, ids: list[uuid.UUID]) -> None:
        super().__init__(f"{len(ids)} unknown transaction ids")
        raw = b"".join(i.bytes for i in ids)
        self.ids = np.frombuffer(raw, np.uint8).reshape(len(ids), 16)


def _write_params(scored: ScoredBatch) -> dict[str, object]:
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
