"""Turn consumed messages into transaction columns and dead letters.

Two decoders share one contract:

* `RecordDecoder` is the reference: the registry's `AvroDeserializer` (through
  `serde`) builds a `TransactionRecord` per message, whose constructor enforces the
  contract's meaning (finite numbers, amount >= 0, aware event time).
* `ColumnarDecoder` is the fast path the service runs: it reads the Confluent framing and the
  Avro bodies of a whole micro-batch column by column (`codec.column_reader`) with writer schemas
  checked by the registry (`SchemaGuard`), and applies the same meaning checks vectorised. Every
  message it cannot prove clean goes through `RecordDecoder`, so which message is dead-lettered,
  and with which error, is always the reference decoder's decision.

Poison messages become `DeadLetter`s; an unreachable registry raises (an outage, retried by the
service) and never turns good messages into dead letters.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import SerializationContext, SerializationError
from fastavro.read import SchemaResolutionError

from fraudpipe.adapters.avro import Contract, make_deserializer, registry_errors, value_context
from fraudpipe.adapters.avro.codec.column_reader import (
    Columns,
    FlatRecordReader,
    UnsupportedSchemaError,
)
from fraudpipe.adapters.avro.schema_guard import SchemaGuard, WriterSchema
from fraudpipe.columns import FEATURE_COLUMNS, MODEL_INPUT_COLUMNS, V_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.data.bounds import FeatureBounds, feature_bounds
from fraudpipe.errors import (
    ContractViolationError,
    MalformedAvroError,
    NotAvroError,
    OutOfBoundsError,
    PoisonMessageError,
)
from fraudpipe.microbatch import DeadLetter, TransactionBatch, empty_batch
from fraudpipe.records import TransactionRecord
from fraudpipe.uuid_columns import TEXT_WIDTH, parse_uuid_text

HEADER_BYTES: Final = 5  # magic byte 0 + big-endian 4-byte schema id
#: Zero bytes after the packed values: columnar gathers may read this far past a message.
PADDING: Final = 1024
#: Distinct batch ids found by comparison before falling back to sorting.
_MAX_PASSES: Final = 8
# Largest epoch-ms a Python datetime can hold (year 9999): beyond it the reference decoder fails.
_MAX_EVENT_MS: Final = 253_402_300_799_999
_STRING_FIELDS: Final = ("transaction_id", "batch_id", "source")
_NUMBER_FIELDS: Final = {"event_time": "long", "amount": "double"} | dict.fromkeys(
    V_COLUMNS, "double"
)
# What a corrupt body makes fastavro raise while reading it (it has no error class of its own).
_BODY_ERRORS: Final = (EOFError, ValueError, UnicodeDecodeError, OverflowError, IndexError)

_OBJECT_REPR: Final = re.compile(r" from <[^>]*>")

Poison = PoisonMessageError | ContractViolationError


@dataclass(frozen=True)
class Decoded:
    """A micro-batch after decoding: transactions to score, and messages to dead-letter."""

    transactions: TransactionBatch
    dead_letters: list[DeadLetter]


class TransactionDecoder(Protocol):
    """Decodes a micro-batch of (error-free) Kafka messages from the transactions topic."""

    def decode(self, messages: Sequence[Message]) -> Decoded:
        """Decode every message into a transaction or a dead letter (none is dropped)."""
        ...


def record_timestamp_ms(message: Message) -> int | None:
    """The Kafka record timestamp in epoch ms, or None when the record has none."""
    kind, value = message.timestamp()
    return value if kind != 0 else None  # 0 = TIMESTAMP_NOT_AVAILABLE


def dead_letter(message: Message, error: Poison) -> DeadLetter:
    """The dead letter for one message, keeping its bytes exactly as consumed."""
    return DeadLetter(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        timestamp_ms=record_timestamp_ms(message),
        key=message.key(),
        value=message.value(),
        error_type=type(error).__name__,
        error=str(error),
    )


def wire_schema_id(value: bytes | None) -> int:
    """The schema id of a Confluent-framed message value.

    Raises:
        NotAvroError: No value, too short, or no magic byte 0.
    """
    if value is None:
        raise NotAvroError("the message has no value")
    if len(value) <= HEADER_BYTES:
        raise NotAvroError(f"{len(value)} bytes, shorter than the 6-byte minimum")
    if value[0] != 0:
        raise NotAvroError(f"first byte is {value[0]:#04x}, not the magic byte 0x00")
    schema_id: int = struct.unpack_from(">I", value, 1)[0]
    return schema_id


def deserialize(
    settings: Settings,
    deserializer: AvroDeserializer,
    value: bytes | None,
    context: SerializationContext,
    schema_id: int,
) -> object:
    """One message's value through a contract's deserializer, its failures as poison.

    Raises:
        PoisonMessageError: Not Avro, a schema that does not resolve, a corrupt body.
        ContractViolationError: Decoded, but its values break the record's rules.
        ServiceUnavailableError: The registry cannot be reached.
    """
    try:
        with registry_errors(settings):
            return deserializer(value, context)
    except SerializationError as exc:
        raise NotAvroError(str(exc)) from exc
    except SchemaResolutionError as exc:
        raise MalformedAvroError(schema_id, f"schema resolution failed: {exc}") from exc
    except _BODY_ERRORS as exc:
        # fastavro names its BytesIO (an address) in EOF messages: noise, and not stable.
        problem = _OBJECT_REPR.sub("", str(exc))
        raise MalformedAvroError(schema_id, f"{type(exc).__name__}: {problem}") from exc


class RecordDecoder:
    """The reference decoder: `AvroDeserializer` into `TransactionRecord`, one message at a time."""

    def __init__(self, settings: Settings, client: SchemaRegistryClient, topic: str) -> None:
        """Build the deserializer for `topic` (no registry request is made yet).

        Args:
            settings: Registry URL for error messages.
            client: The registry client.
            topic: The transactions topic (its subject is `<topic>-value`).
        """
        self._settings = settings
        self.bounds = feature_bounds(settings.bounds_margin)
        self.guard = SchemaGuard(settings, client, topic)
        self._deserializer = make_deserializer(Contract.TRANSACTION, client)
        self._context = value_context(topic)

    def decode_one(self, message: Message) -> TransactionRecord:
        """Decode one message.

        Raises:
            PoisonMessageError: Not Avro, unknown schema id, wrong schema, corrupt body.
            ContractViolationError: Decoded, but its values break the contract.
            ServiceUnavailableError: The registry cannot be reached.
        """
        value = message.value()
        schema_id = wire_schema_id(value)
        self.guard.check(schema_id)
        record = deserialize(self._settings, self._deserializer, value, self._context, schema_id)
        if not isinstance(record, TransactionRecord):
            raise MalformedAvroError(schema_id, f"decoded to {type(record).__name__}")
        for name, feature in zip(FEATURE_COLUMNS, record.features(), strict=True):
            low, high = self.bounds.of(name)
            if not low <= feature <= high:
                raise OutOfBoundsError("Transaction", name, feature, low, high)
        return record

    def decode(self, messages: Sequence[Message]) -> Decoded:
        """Decode each message in turn (slow: tens of microseconds to milliseconds each)."""
        records: list[TransactionRecord] = []
        stamps: list[int] = []
        rows: list[int] = []
        dead: list[DeadLetter] = []
        for i, message in enumerate(messages):
            try:
                records.append(self.decode_one(message))
            except (PoisonMessageError, ContractViolationError) as exc:
                dead.append(dead_letter(message, exc))
                continue
            stamps.append(record_timestamp_ms(message) or 0)
            rows.append(i)
        batch = TransactionBatch.from_records(records, stamps, rows) if records else empty_batch()
        return Decoded(batch, dead)


@dataclass(frozen=True)
class _Packed:
    """Message values back to back in one zero-padded buffer."""

    buffer: npt.NDArray[np.uint8]
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]


def _pack(values: Sequence[bytes | None], padding: int) -> _Packed:
    blobs = [v if v is not None else b"" for v in values]
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    ends = np.cumsum(lengths)
    buffer = np.frombuffer(b"".join(blobs) + bytes(padding), dtype=np.uint8)
    return _Packed(buffer, ends - lengths, ends)


def _fast_reader(writer: WriterSchema) -> FlatRecordReader | None:
    """A columnar reader when the writer schema has every field the scorer reads, as-is."""
    types = {
        f["name"]: f["type"].get("type") if isinstance(f["type"], dict) else f["type"]
        for f in writer.parsed["fields"]
    }
    wanted = dict.fromkeys(_STRING_FIELDS, "string") | _NUMBER_FIELDS
    if any(types.get(name) != kind for name, kind in wanted.items()):
        return None  # e.g. an int event_time in an old version: the reference decoder promotes
    try:
        reader = FlatRecordReader(writer.parsed)
    except UnsupportedSchemaError:
        return None
    # A run of fixed-width fields wider than the buffer's padding could read past its end.
    return reader if reader.padding <= PADDING else None


class ColumnarDecoder:
    """The scorer's decoder: a micro-batch at a time, column by column."""

    def __init__(self, reference: RecordDecoder) -> None:
        """Wrap the reference decoder, which judges every message this one cannot vouch for."""
        self._reference = reference
        self._readers: dict[int, FlatRecordReader | None] = {}

    def decode(self, messages: Sequence[Message]) -> Decoded:
        """Decode a micro-batch; clean messages column-wise, the rest through the reference.

        Raises:
            ServiceUnavailableError: The registry cannot be reached.
        """
        if not messages:
            return Decoded(empty_batch(), [])
        values = [m.value() for m in messages]
        # Record timestamps (0 when absent) for latency; one C call per message, no Python frame.
        stamps = np.array([m.timestamp()[1] for m in messages], dtype=np.int64).clip(min=0)
        packed = _pack(values, padding=PADDING)
        buf, starts, ends = packed.buffer, packed.starts, packed.ends
        framed = (ends - starts > HEADER_BYTES) & (buf[starts] == 0)
        id_bytes = np.lib.stride_tricks.sliding_window_view(buf, 4)[starts + 1]
        schema_ids = id_bytes.astype(np.int64) @ np.array([1 << 24, 1 << 16, 1 << 8, 1])

        parts: list[TransactionBatch] = []
        clean = np.zeros(len(messages), dtype=np.bool_)
        for schema_id in np.unique(schema_ids[framed]).tolist():
            rows = np.flatnonzero(framed & (schema_ids == schema_id))
            reader = self._reader(int(schema_id))
            if reader is None:
                continue
            cols = reader.read(buf, starts[rows] + HEADER_BYTES, ends[rows])
            batch, ok = _columns_to_batch(cols, stamps, rows, self._reference.bounds)
            clean[rows[ok]] = True
            parts.append(batch)

        records: list[TransactionRecord] = []
        record_rows: list[int] = []
        dead: list[DeadLetter] = []
        for i in np.flatnonzero(~clean).tolist():
            try:
                records.append(self._reference.decode_one(messages[i]))
            except (PoisonMessageError, ContractViolationError) as exc:
                dead.append(dead_letter(messages[i], exc))
                continue
            record_rows.append(i)
        if records:
            parts.append(
                TransactionBatch.from_records(records, stamps[record_rows].tolist(), record_rows)
            )
        return Decoded(TransactionBatch.concat(parts), dead)

    def _reader(self, schema_id: int) -> FlatRecordReader | None:
        """The columnar reader for an accepted schema id; None sends its rows to the reference."""
        if schema_id not in self._readers:
            try:
                writer = self._reference.guard.check(schema_id)
            except PoisonMessageError:
                # Not cached: the reference decoder raises the same verdict for each message.
                return None
            self._readers[schema_id] = _fast_reader(writer)
        return self._readers[schema_id]


def _columns_to_batch(
    cols: Columns,
    stamps: npt.NDArray[np.int64],
    rows: npt.NDArray[np.intp],
    bounds: FeatureBounds,
) -> tuple[TransactionBatch, npt.NDArray[np.bool_]]:
    """The clean rows of decoded columns as a batch, and the mask of which rows were clean.

    A row is clean when every value is within its bounds (which also rules out NaN and ±inf);
    the others go to the reference decoder, which names what is wrong.
    """
    ok = cols.ok.copy()
    id_text, fits = cols.fixed_width("transaction_id", TEXT_WIDTH)
    ids, parsed = parse_uuid_text(id_text)
    ok &= fits & parsed
    for c, low, high in zip(FEATURE_COLUMNS, bounds.low, bounds.high, strict=True):
        values = cols.numbers[c]
        ok &= (values >= low) & (values <= high)
    event_time = cols.numbers["event_time"]
    ok &= (event_time >= 0) & (event_time <= _MAX_EVENT_MS)

    labels, codes, label_ok = _distinct_text(cols, "batch_id", ok)
    ok &= label_ok
    keep = np.flatnonzero(ok)
    # Only batch ids of kept rows stay (rows dropped for the reference decoder take theirs along).
    used, codes_kept = np.unique(codes[keep], return_inverse=True)
    labels = [labels[k] for k in used.tolist()]
    codes = np.zeros(len(codes), dtype=np.intp)
    codes[keep] = codes_kept.reshape(-1)
    sources = _first_source_per_label(cols, codes, ok, len(labels))
    columns = {c: cols.numbers[c][keep] for c in MODEL_INPUT_COLUMNS}
    columns["event_time"] = np.asarray(columns["event_time"], dtype=np.int64)
    batch = TransactionBatch(
        ids=ids[keep],
        batch_codes=codes[keep].astype(np.int32),
        batch_ids=tuple(labels),
        sources=tuple(sources),
        columns=columns,
        record_timestamps_ms=stamps[rows[keep]],
        message_rows=rows[keep].astype(np.int64),
    )
    return batch, ok


def _distinct_text(
    cols: Columns, name: str, rows: npt.NDArray[np.bool_]
) -> tuple[list[str], npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Distinct UTF-8 values of a string column among `rows`, per-row codes, and which decoded.

    Batch ids repeat across a micro-batch (one or two distinct values), so they are compared as
    byte rows and only the distinct ones become Python strings.
    """
    col = cols.strings[name]
    selected = np.flatnonzero(rows)
    codes = np.zeros(len(rows), dtype=np.intp)
    if not len(selected):
        return [], codes, rows.copy()
    lengths = col.lengths[selected]
    width = max(int(lengths.max()), 1)
    buffer = cols.buffer
    if int(col.starts[selected].max()) + width > len(buffer):
        buffer = np.concatenate([buffer, np.zeros(width, dtype=np.uint8)])
    matrix = np.lib.stride_tricks.sliding_window_view(buffer, width)[col.starts[selected]]
    # Bytes past a row's own length belong to the next field: blank them before comparing.
    matrix = np.where(np.arange(width) < lengths[:, None], matrix, 0)
    first, inverse = _group_rows(matrix, lengths)
    codes[selected] = inverse
    labels: list[str] = []
    decodable = np.zeros(len(first), dtype=np.bool_)
    for k, position in enumerate(first.tolist()):
        try:
            labels.append(cols.text(name, int(selected[position])))
            decodable[k] = True
        except UnicodeDecodeError:
            labels.append("")
    usable = rows & decodable[codes] & (col.lengths > 0)
    return labels, codes, usable


def _group_rows(
    matrix: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Group equal rows: the first row of each group, and each row's group number.

    A micro-batch holds one or two batch ids, so comparing every row with the first row of each
    new group (a few vectorised passes) beats sorting them; beyond `_MAX_PASSES` groups the
    sort (`np.unique`) takes over.
    """
    n = len(lengths)
    inverse = np.full(n, -1, dtype=np.intp)
    firsts: list[int] = []
    for group in range(_MAX_PASSES):
        left = np.flatnonzero(inverse < 0)
        if not len(left):
            return np.array(firsts, dtype=np.intp), inverse
        head = int(left[0])
        same = (lengths[left] == lengths[head]) & (matrix[left] == matrix[head]).all(axis=1)
        inverse[left[same]] = group
        firsts.append(head)
    length_bytes = lengths.astype(">u4").view(np.uint8).reshape(-1, 4)
    keyed = np.column_stack([length_bytes, matrix])
    _, first, codes = np.unique(keyed, axis=0, return_index=True, return_inverse=True)
    return first.astype(np.intp), codes.reshape(-1).astype(np.intp)


def _first_source_per_label(
    cols: Columns, codes: npt.NDArray[np.intp], ok: npt.NDArray[np.bool_], count: int
) -> list[str]:
    """The `source` of the first clean row of each batch id (lineage; one source per batch)."""
    sources = [""] * count
    seen = np.zeros(count, dtype=np.bool_)
    for row in np.flatnonzero(ok).tolist():
        code = int(codes[row])
        if not seen[code]:
            seen[code] = True
            try:
                sources[code] = cols.text("source", row)
            except UnicodeDecodeError:
                sources[code] = ""
        if seen.all():
            break
    return sources
