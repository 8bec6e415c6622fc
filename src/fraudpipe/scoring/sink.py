"""PostgreSQL side of a micro-batch: predictions and dead letters in ONE transaction.

Predictions are idempotent on ``(transaction_id, model_version)``: a micro-batch redelivered
after a crash (or a transaction published twice) inserts nothing new. The rows go in by binary
COPY into a session-temporary staging table and one ``INSERT … SELECT … ON CONFLICT DO
NOTHING``; the COPY payload is built with numpy in one piece, because every column but the
UUID is fixed-width and the constants of a micro-batch (model name, version, threshold,
scored_at) travel as query parameters, not per row. Rows are inserted in key order, which keeps
the primary-key index probes on neighbouring pages.

Every prediction must name a transaction PostgreSQL holds under the message's batch. That is
checked set-based, in the same transaction and before the INSERT: one anti-join of the staged
ids against `transactions` (a nested loop whose inner side is the batch partitions' primary
keys, pruned at run time to the row's partition). A per-row foreign key did the same at a
trigger, a query and a row lock per prediction (see migration 0003). When ids are unknown the
sink rolls back and reports them, so the caller can dead-letter just them and write the rest.
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

log = structlog.get_logger(__name__)

_STAGE: Final = "scoring_stage"
#: A micro-batch's transaction never idles between statements; one that does is orphaned.
_IDLE_TIMEOUT: Final = "30s"
_CREATE_STAGE: Final = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (
    transaction_id uuid NOT NULL,
    batch_code integer NOT NULL,
    score double precision NOT NULL,
    is_fraud boolean NOT NULL,
    latency_ms double precision NOT NULL
) ON COMMIT DELETE ROWS
"""
_INSERT: Final = f"""
INSERT INTO predictions (transaction_id, model_name, model_version, batch_id, score, is_fraud,
                         threshold, scored_at, latency_ms)
SELECT s.transaction_id, %(model_name)s, %(model_version)s, b.batch_id, s.score, s.is_fraud,
       %(threshold)s, %(scored_at)s, s.latency_ms
FROM {_STAGE} s
JOIN unnest(%(batch_ids)s::text[]) WITH ORDINALITY AS b(batch_id, code) ON b.code = s.batch_code
ORDER BY s.transaction_id
ON CONFLICT (transaction_id, model_version) DO NOTHING
"""
_UNKNOWN: Final = f"""
SELECT s.transaction_id FROM {_STAGE} s
JOIN unnest(%(batch_ids)s::text[]) WITH ORDINALITY AS b(batch_id, code) ON b.code = s.batch_code
WHERE NOT EXISTS (
    SELECT 1 FROM transactions t
    WHERE t.batch_id = b.batch_id AND t.transaction_id = s.transaction_id
)
"""
_INSERT_DEAD_LETTER: Final = """
INSERT INTO dead_letters (topic, partition, "offset", key, value, error_type, error)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (topic, partition, "offset") DO NOTHING
"""
_COPY: Final = f"COPY {_STAGE} FROM STDIN (FORMAT BINARY)"

# PostgreSQL binary COPY: signature, flags, header extension length; then rows; then -1.
_COPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(4) + bytes(4)
_COPY_TRAILER: Final = b"\xff\xff"
_ROW: Final = np.dtype(
    [
        ("fields", ">i2"),
        ("id_len", ">i4"),
        ("id", "V16"),
        ("code_len", ">i4"),
        ("code", ">i4"),
        ("score_len", ">i4"),
        ("score", ">f8"),
        ("fraud_len", ">i4"),
        ("fraud", "u1"),
        ("latency_len", ">i4"),
        ("latency", ">f8"),
    ]
)


def copy_payload(scored: ScoredBatch) -> bytes:
    """The binary COPY stream of a scored micro-batch for the staging table."""
    n = len(scored)
    rows = np.empty(n, dtype=_ROW)
    rows["fields"] = 5
    rows["id_len"] = 16
    rows["id"] = np.ascontiguousarray(scored.transactions.ids).view("V16").reshape(n)
    rows["code_len"] = 4
    # 1-based: it joins the WITH ORDINALITY of the batch-id array.
    rows["code"] = scored.transactions.batch_codes + 1
    rows["score_len"] = 8
    rows["score"] = scored.scores
    rows["fraud_len"] = 1
    rows["fraud"] = scored.is_fraud
    rows["latency_len"] = 8
    rows["latency"] = scored.latency_ms
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


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
            ServiceUnavailableError: PostgreSQL cannot be reached or dropped the connection; the
                transaction did not commit, so the call can simply be repeated.
            psycopg.errors.TransactionRollback: A deadlock with another scorer rolled the
                transaction back; repeat the call.
        """
        conn = self._connection()
        try:
            with conn.transaction():
                inserted = 0
                with conn.cursor() as cur:
                    if scored is not None and len(scored):
                        with cur.copy(_COPY) as copy:
                            copy.write(copy_payload(scored))
                        params = _insert_params(scored)
                        unknown = [r[0] for r in cur.execute(_UNKNOWN, params).fetchall()]
                        if unknown:
                            raise _Unknown(unknown)
                        cur.execute(_INSERT, params)
                        inserted = max(cur.rowcount, 0)
                    if dead_letters:
                        cur.executemany(_INSERT_DEAD_LETTER, [_dead_row(d) for d in dead_letters])
        except _Unknown as unknown:
            return WriteOutcome(False, 0, unknown.ids)
        except pg_errors.TransactionRollback:
            raise  # deadlock/serialization: rolled back whole, the connection is fine; retry
        except psycopg.OperationalError as exc:
            self._drop_connection()
            raise self._unavailable(exc) from exc
        return WriteOutcome(True, inserted, np.empty((0, 16), np.uint8))

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._drop_connection()

    def _connection(self) -> Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = connect(self._settings, "app")
        try:
            # A connection lost mid-transaction without the server noticing (a network cut)
            # leaves its backend idle in the transaction, holding the rows the retry inserts
            # again; the retry would wait on them forever. The server ends such a session.
            conn.execute(f"SET idle_in_transaction_session_timeout = '{_IDLE_TIMEOUT}'")
            conn.execute(_CREATE_STAGE)
            conn.commit()
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


def _insert_params(scored: ScoredBatch) -> dict[str, object]:
    return {
        "model_name": scored.model_name,
        "model_version": scored.model_version,
        "threshold": scored.threshold,
        "scored_at": scored.scored_at,
        "batch_ids": list(scored.transactions.batch_ids),
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
