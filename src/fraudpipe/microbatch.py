"""What flows through one micro-batch: decoded transactions, their scores, and dead letters.

Transactions travel as numpy columns because every stage after decoding is vectorised; no pandas
object is built per micro-batch (a DataFrame's construction and column look-ups cost more than
scoring a micro-batch of a few hundred rows); the typed contract records (`TransactionRecord`,
`PredictionRecord`, `AlertRecord`) are built only at the edges that need them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudpipe.columns import MODEL_INPUT_COLUMNS, V_COLUMNS
from fraudpipe.records import AlertDriver, PredictionRecord, TransactionRecord
from fraudpipe.uuid_columns import format_uuid_text

Bytes2D = npt.NDArray[np.uint8]
Int64s = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TransactionBatch:
    """Decoded, valid transactions of one micro-batch, as columns.

    Attributes:
        ids: n×16 UUID bytes of each `transaction_id`.
        batch_codes: Per row, the index of its `batch_id` in `batch_ids`.
        batch_ids: The distinct batch ids of the micro-batch.
        sources: Per batch id, the `source` its transactions named (lineage only).
        columns: The model input by name (`MODEL_INPUT_COLUMNS`; ``event_time`` int64 epoch ms,
            the others float64), each as long as the batch.
        record_timestamps_ms: Kafka record timestamp of each message (for latency).
        message_rows: Per row, the position of its message in the decoded micro-batch.
    """

    ids: Bytes2D
    batch_codes: npt.NDArray[np.int32]
    batch_ids: tuple[str, ...]
    sources: tuple[str, ...]
    columns: dict[str, npt.NDArray[Any]]
    record_timestamps_ms: Int64s
    message_rows: Int64s

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def frame(self) -> pd.DataFrame:
        """The model input as a DataFrame (for tests, debugging and non-linear models)."""
        return pd.DataFrame({c: self.columns[c] for c in MODEL_INPUT_COLUMNS})

    def select(self, keep: npt.NDArray[np.bool_]) -> TransactionBatch:
        """The rows where `keep` is True (batch ids and sources kept as they are)."""
        return TransactionBatch(
            ids=self.ids[keep],
            batch_codes=self.batch_codes[keep],
            batch_ids=self.batch_ids,
            sources=self.sources,
            columns={c: values[keep] for c, values in self.columns.items()},
            record_timestamps_ms=self.record_timestamps_ms[keep],
            message_rows=self.message_rows[keep],
        )

    def id_text(self) -> Bytes2D:
        """Canonical text of each transaction id, as an n×36 byte matrix."""
        return format_uuid_text(self.ids)

    def records(self) -> list[TransactionRecord]:
        """The batch as typed contract records (slow; for tests and debugging)."""
        cols = {c: values.tolist() for c, values in self.columns.items()}
        out = []
        for i in range(len(self)):
            code = int(self.batch_codes[i])
            out.append(
                TransactionRecord(
                    uuid.UUID(bytes=self.ids[i].tobytes()),
                    self.batch_ids[code],
                    self.sources[code],
                    from_epoch_ms(int(cols["event_time"][i])),
                    float(cols["amount"][i]),
                    *(float(cols[c][i]) for c in V_COLUMNS),
                )
            )
        return out

    @classmethod
    def from_records(
        cls,
        records: Sequence[TransactionRecord],
        record_timestamps_ms: Sequence[int],
        message_rows: Sequence[int],
    ) -> TransactionBatch:
        """Columns of typed records (the reference decoder's output)."""
        labels: dict[str, int] = {}
        sources: list[str] = []
        for rec in records:
            if rec.batch_id not in labels:
                labels[rec.batch_id] = len(labels)
                sources.append(rec.source)
        columns: dict[str, npt.NDArray[Any]] = {
            "event_time": np.array([_epoch_ms(r.event_time) for r in records], dtype=np.int64),
            "amount": np.array([r.amount for r in records], dtype=np.float64),
            **{c: np.array([getattr(r, c) for r in records], dtype=np.float64) for c in V_COLUMNS},
        }
        ids = np.frombuffer(b"".join(r.transaction_id.bytes for r in records), np.uint8)
        return cls(
            ids=ids.reshape(len(records), 16),
            batch_codes=np.array([labels[r.batch_id] for r in records], dtype=np.int32),
            batch_ids=tuple(labels),
            sources=tuple(sources),
            columns=columns,
            record_timestamps_ms=np.asarray(record_timestamps_ms, dtype=np.int64),
            message_rows=np.asarray(message_rows, dtype=np.int64),
        )

    @classmethod
    def concat(cls, parts: Sequence[TransactionBatch]) -> TransactionBatch:
        """One batch of several, batch ids merged (row order kept)."""
        parts = [p for p in parts if len(p)] or list(parts[:1]) or [empty_batch()]
        if len(parts) == 1:
            return parts[0]
        labels: dict[str, int] = {}
        sources: list[str] = []
        codes = []
        for part in parts:
            remap = np.empty(len(part.batch_ids), dtype=np.int32)
            for i, (bid, src) in enumerate(zip(part.batch_ids, part.sources, strict=True)):
                if bid not in labels:
                    labels[bid] = len(labels)
                    sources.append(src)
                remap[i] = labels[bid]
            codes.append(remap[part.batch_codes])
        return cls(
            ids=np.concatenate([p.ids for p in parts]),
            batch_codes=np.concatenate(codes),
            batch_ids=tuple(labels),
            sources=tuple(sources),
            columns={c: np.concatenate([p.columns[c] for p in parts]) for c in MODEL_INPUT_COLUMNS},
            record_timestamps_ms=np.concatenate([p.record_timestamps_ms for p in parts]),
            message_rows=np.concatenate([p.message_rows for p in parts]),
        )


def empty_batch() -> TransactionBatch:
    """A micro-batch without transactions (every message was a dead letter)."""
    return TransactionBatch(
        ids=np.empty((0, 16), np.uint8),
        batch_codes=np.empty(0, np.int32),
        batch_ids=(),
        sources=(),
        columns={
            c: np.empty(0, np.int64 if c == "event_time" else np.float64)
            for c in MODEL_INPUT_COLUMNS
        },
        record_timestamps_ms=np.empty(0, np.int64),
        message_rows=np.empty(0, np.int64),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_epoch_ms(ms: int) -> datetime:
    """An aware UTC datetime of epoch milliseconds, exactly (no float rounding)."""
    return _EPOCH + timedelta(milliseconds=ms)


def epoch_us(moment: datetime) -> int:
    """Microseconds since 1970-01-01 UTC of an aware datetime, exactly."""
    # Integer arithmetic on the timedelta: float timestamps lose a microsecond now and then.
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _epoch_ms(moment: datetime) -> int:
    return epoch_us(moment) // 1000


@dataclass(frozen=True)
class ScoredBatch:
    """A micro-batch's transactions with the serving model's verdicts and lineage.

    Attributes:
        transactions: What was scored.
        scores: Fraud probability per row.
        is_fraud: ``scores >= threshold``.
        model_name: Registered model name.
        model_version: Registered version that produced the scores.
        threshold: That version's threshold.
        scored_at: When the micro-batch was scored (one instant for all rows).
        latency_ms: Per row, milliseconds from the Kafka record timestamp to `scored_at`.
        stored_at_ms: Per row, when its stored prediction was scored (epoch ms), for a
            redelivered micro-batch whose rows an earlier attempt wrote (`with_stored`);
            None when every row was written now, at `scored_at`.
    """

    transactions: TransactionBatch
    scores: Floats
    is_fraud: npt.NDArray[np.bool_]
    model_name: str
    model_version: int
    threshold: float
    scored_at: datetime
    latency_ms: Floats
    stored_at_ms: npt.NDArray[np.int64] | None = None

    def __len__(self) -> int:
        return len(self.transactions)

    def with_stored(
        self, scores: Floats, is_fraud: npt.NDArray[np.bool_], scored_at_ms: npt.NDArray[np.int64]
    ) -> ScoredBatch:
        """The same rows with the verdicts PostgreSQL holds for them (a redelivery)."""
        return replace(self, scores=scores, is_fraud=is_fraud, stored_at_ms=scored_at_ms)

    def scored_at_ms_rows(self) -> npt.NDArray[np.int64]:
        """Each row's scoring time (epoch ms): as stored, or this micro-batch's."""
        if self.stored_at_ms is not None:
            return self.stored_at_ms
        return np.full(len(self), self.scored_at_ms, dtype=np.int64)

    def select(self, keep: npt.NDArray[np.bool_]) -> ScoredBatch:
        """The rows where `keep` is True."""
        return ScoredBatch(
            transactions=self.transactions.select(keep),
            scores=self.scores[keep],
            is_fraud=self.is_fraud[keep],
            model_name=self.model_name,
            model_version=self.model_version,
            threshold=self.threshold,
            scored_at=self.scored_at,
            latency_ms=self.latency_ms[keep],
            stored_at_ms=None if self.stored_at_ms is None else self.stored_at_ms[keep],
        )

    @property
    def scored_at_ms(self) -> int:
        return _epoch_ms(self.scored_at)

    @property
    def scored_at_us(self) -> int:
        return epoch_us(self.scored_at)

    def predictions(self) -> list[PredictionRecord]:
        """The verdicts as typed `PredictionRecord`s (slow; for tests and debugging)."""
        txs = self.transactions
        return [
            PredictionRecord(
                transaction_id=uuid.UUID(bytes=txs.ids[i].tobytes()),
                batch_id=txs.batch_ids[int(txs.batch_codes[i])],
                model_name=self.model_name,
                model_version=self.model_version,
                score=float(self.scores[i]),
                is_fraud=bool(self.is_fraud[i]),
                threshold=self.threshold,
                scored_at=self.scored_at,
            )
            for i in range(len(self))
        ]


@dataclass(frozen=True)
class AlertReasons:
    """The reasons of a micro-batch's alerts.

    Attributes:
        method: How they were worked out (`fraudpipe.model.reasons`; "" when the model cannot
            attribute its scores).
        by_row: By the flagged row's position in the micro-batch's messages
            (`TransactionBatch.message_rows`: it survives rows being set aside later).
    """

    method: str = ""
    by_row: dict[int, tuple[AlertDriver, ...]] = field(default_factory=dict)

    def get(self, message_row: int) -> tuple[AlertDriver, ...]:
        """One alert's drivers (none when it has none)."""
        return self.by_row.get(message_row, ())


@dataclass(frozen=True)
class DeadLetter:
    """A message that can never be scored, and why.

    Attributes:
        topic: Where it was consumed from.
        partition: Its partition.
        offset: Its offset.
        timestamp_ms: Its Kafka record timestamp, if it had one.
        key: Its key bytes, kept as they were.
        value: Its value bytes, kept as they were.
        error_type: Name of the error class (e.g. `ContractViolationError`).
        error: The error message (what failed and what to do).
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    error_type: str
    error: str
