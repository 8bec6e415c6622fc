"""The columnar decoder against the reference `AvroDeserializer`, through the real registry.

Messages are what the producer side writes (`make_serializer` on typed records), plus every kind
of poison. For each micro-batch the fast decoder must return exactly the reference decoder's
transactions and dead letters, and take the fast path for the clean messages.
"""

from __future__ import annotations

import io
import json
import math
import random
import struct
import uuid
from collections.abc import Iterator
from typing import Any

import fastavro
import pytest
from confluent_kafka import Message
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from fraudpipe.adapters.avro import (
    Contract,
    load_schema_str,
    make_serializer,
    registry_client,
    value_context,
)
from fraudpipe.adapters.avro.decoding import ColumnarDecoder, Decoded, RecordDecoder
from fraudpipe.adapters.avro.registration import delete_subject_completely, register_contracts
from fraudpipe.columns import FEATURE_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.data.bounds import feature_bounds
from fraudpipe.errors import ServiceUnavailableError
from fraudpipe.microbatch import from_epoch_ms
from fraudpipe.records import TransactionRecord

pytestmark = pytest.mark.integration

TOPIC_SUFFIX = "transactions"


@pytest.fixture(scope="module")
def env(stack: Settings) -> Iterator[tuple[Settings, SchemaRegistryClient]]:
    unique = uuid.uuid4().hex[:10]
    settings = stack.model_copy(
        update={
            "topic_transactions": f"test.{unique}.{TOPIC_SUFFIX}",
            "topic_predictions": f"test.{unique}.predictions",
            "topic_alerts": f"test.{unique}.alerts",
            "topic_decisions": f"test.{unique}.decisions",
        }
    )
    with registry_client(settings, "admin") as client:
        register_contracts(client, settings)
        try:
            yield settings, client
        finally:
            for contract in Contract:
                delete_subject_completely(client, contract.subject(settings))


class CountingReference(RecordDecoder):
    """The reference decoder, counting the messages handed to it one by one."""

    calls = 0

    def decode_one(self, message: Message) -> TransactionRecord:
        self.calls += 1
        return super().decode_one(message)


def _records(n: int, seed: int) -> list[TransactionRecord]:
    rng = random.Random(seed)
    batches = ["ulb:2025-09-20", "synthetic-s7:2025-09-21", "file:" + "é" * 70 + ":2025-09-22"]
    out = []
    for _ in range(n):
        batch_id = rng.choice(batches)
        out.append(
            TransactionRecord(
                uuid.UUID(int=rng.getrandbits(128)),
                batch_id,
                batch_id.rsplit(":", 1)[0],
                from_epoch_ms(rng.choice([0, 1, 1_758_326_400_000 + rng.randrange(10**9)])),
                # Every value inside its bounds, the largest amount at its bound.
                rng.choice([0.0, 0.01, rng.uniform(0, 25_000), feature_bounds().of("amount")[1]]),
                *(max(-2.0, min(2.0, rng.gauss(0, 1))) for _ in range(28)),
            )
        )
    return out


def _messages(values: list[bytes | None], topic: str) -> list[Message]:
    return [
        Message(topic=topic, partition=i % 3, offset=i, key=b"k", value=v, timestamp=(1, 1000 + i))
        for i, v in enumerate(values)
    ]


def _frame(schema_id: int, schema: Any, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    out.write(b"\x00" + struct.pack(">I", schema_id))
    fastavro.schemaless_writer(out, schema, record)
    return out.getvalue()


def _same(fast: Decoded, reference: Decoded) -> None:
    """Same transactions (by message) and the same dead letters, whatever the row order."""

    def by_row(d: Decoded) -> dict[int, TransactionRecord]:
        rows = d.transactions.message_rows.tolist()
        stamps = d.transactions.record_timestamps_ms.tolist()
        assert stamps == [1000 + r for r in rows]
        return dict(zip(rows, d.transactions.records(), strict=True))

    assert by_row(fast) == by_row(reference)
    key = lambda d: (d.offset, d.error_type, d.error)  # noqa: E731
    assert sorted(map(key, fast.dead_letters)) == sorted(map(key, reference.dead_letters))


def test_clean_messages_decode_column_wise_exactly_as_the_reference(
    env: tuple[Settings, SchemaRegistryClient],
) -> None:
    settings, client = env
    topic = settings.topic_transactions
    serialize = make_serializer(Contract.TRANSACTION, client)
    records = _records(400, seed=1)
    messages = _messages([serialize(r, value_context(topic)) for r in records], topic)
    reference = CountingReference(settings, client, topic)
    fast = ColumnarDecoder(reference)

    decoded = fast.decode(messages)

    assert reference.calls == 0  # every clean message took the columnar path
    assert decoded.dead_letters == []
    assert decoded.transactions.records() == records
    _same(decoded, RecordDecoder(settings, client, topic).decode(messages))


def test_poison_is_judged_by_the_reference_decoder(
    env: tuple[Settings, SchemaRegistryClient],
) -> None:
    settings, client = env
    topic = settings.topic_transactions
    serialize = make_serializer(Contract.TRANSACTION, client)
    good = [serialize(r, value_context(topic)) for r in _records(20, seed=2)]
    assert all(v is not None for v in good)
    tx_schema = fastavro.parse_schema(json.loads(load_schema_str(Contract.TRANSACTION)))
    tx_id = client.lookup_schema(
        Contract.TRANSACTION.subject(settings), Schema(load_schema_str(Contract.TRANSACTION))
    ).schema_id
    pred_id = client.lookup_schema(
        Contract.PREDICTION.subject(settings), Schema(load_schema_str(Contract.PREDICTION))
    ).schema_id
    assert tx_id is not None and pred_id is not None
    template = _records(1, seed=3)[0].to_dict()
    template["transaction_id"] = str(template["transaction_id"])
    first = good[0]
    assert first is not None
    poison: list[bytes | None] = [
        None,
        b"",
        b"\x00\x00\x00",
        b"plain text, not avro",
        b"\x01" + first[1:],  # wrong magic byte
        b"\x00" + struct.pack(">I", 1_999_999_999) + first[5:],  # unknown schema id
        b"\x00" + struct.pack(">I", pred_id) + first[5:],  # another subject's schema
        first[:-4],  # truncated body
        _frame(tx_id, tx_schema, template | {"amount": math.nan}),
        _frame(tx_id, tx_schema, template | {"amount": -0.5}),
        _frame(tx_id, tx_schema, template | {"v7": math.inf}),
        _frame(tx_id, tx_schema, template | {"transaction_id": "not-a-uuid"}),  # malformed
        # Finite but beyond its bounds, in each feature in turn (1e308, -1e308, ...).
        *(
            _frame(tx_id, tx_schema, template | {name: (-1) ** i * 1e308 if i else 1e300})
            for i, name in enumerate(FEATURE_COLUMNS)
        ),
    ]
    trailing = first + b"\x00\x01"  # the reference ignores bytes after the record
    values: list[bytes | None] = [*good[:10], *poison, trailing, *good[10:]]
    messages = _messages(values, topic)
    reference = CountingReference(settings, client, topic)

    decoded = ColumnarDecoder(reference).decode(messages)

    _same(decoded, RecordDecoder(settings, client, topic).decode(messages))
    assert len(decoded.transactions) == 21  # the 20 good ones and the one with trailing bytes
    assert reference.calls == len(poison) + 1  # only the doubtful went message by message
    kinds = sorted(d.error_type for d in decoded.dead_letters)
    assert kinds == sorted(
        ["NotAvroError"] * 5
        + ["UnknownSchemaError", "WrongSchemaError"]
        + ["MalformedAvroError"] * 2
        + ["ContractViolationError"] * 3
        + ["OutOfBoundsError"] * len(FEATURE_COLUMNS)
    )
    for letter in decoded.dead_letters:
        assert letter.value == values[letter.offset]
        assert letter.topic == topic and letter.partition == letter.offset % 3


def test_a_compatible_newer_writer_schema_still_takes_the_columnar_path(
    env: tuple[Settings, SchemaRegistryClient],
) -> None:
    settings, client = env
    topic = settings.topic_transactions
    evolved = json.loads(load_schema_str(Contract.TRANSACTION))
    evolved["fields"].insert(3, {"name": "channel", "type": "string", "default": "card"})
    evolved["fields"].append({"name": "merchant", "type": ["null", "long"], "default": None})
    subject = Contract.TRANSACTION.subject(settings)
    schema_id = client.register_schema(subject, Schema(json.dumps(evolved), "AVRO"))
    parsed = fastavro.parse_schema(evolved)
    records = _records(50, seed=4)
    values: list[bytes | None] = []
    for i, record in enumerate(records):
        wire = record.to_dict() | {"channel": "web", "merchant": None if i % 2 else i}
        wire["transaction_id"] = str(wire["transaction_id"])
        values.append(_frame(schema_id, parsed, wire))
    reference = CountingReference(settings, client, topic)

    decoded = ColumnarDecoder(reference).decode(_messages(values, topic))

    assert reference.calls == 0
    assert decoded.transactions.records() == records


def test_an_unreachable_registry_is_an_outage_not_a_dead_letter(
    env: tuple[Settings, SchemaRegistryClient],
) -> None:
    settings, client = env
    topic = settings.topic_transactions
    value = make_serializer(Contract.TRANSACTION, client)(
        _records(1, seed=5)[0], value_context(topic)
    )
    nowhere = settings.model_copy(update={"schema_registry_url": "http://127.0.0.1:9/apis"})
    with registry_client(nowhere, "admin") as dead_client:
        decoder = ColumnarDecoder(RecordDecoder(nowhere, dead_client, topic))
        with pytest.raises(ServiceUnavailableError):
            decoder.decode(_messages([value], topic))
