"""Hostile and broken messages through the real topic, around a real published day: each is
dead-lettered exactly once with its reason, every genuine transaction is scored exactly once,
and the scorer stays up.

The corpus holds what an attacker or a broken producer sends: values that are not Avro, framing
that names unknown or foreign schemas, bodies cut short, non-finite numbers, a finite value
beyond its bounds in each field, a transaction nobody loaded, a forgery that carries a real
transaction's id with fraud-like features (sent before the genuine message), and a value of
1,020,005 bytes (the broker takes it; its copy would not fit on the DLQ topic, so the DLQ gets
a reference and PostgreSQL the bytes).
"""

from __future__ import annotations

import io
import json
import math
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path

import fastavro
import pandas as pd
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema
from scoring_support import (
    champion_model,
    headers_of,
    ingest_ulb_day,
    own_settings,
    predictions,
    read_topic,
    scoring_topics,
    transaction_ids,
    write_ulb_day,
)

from fraudpipe.adapters.avro import (
    Contract,
    load_schema_str,
    make_serializer,
    registry_client,
    value_context,
)
from fraudpipe.adapters.kafka.dlq import STORED_IN
from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.adapters.mlflow.registry import load_model_version
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.columns import FEATURE_COLUMNS, MODEL_INPUT_COLUMNS
from fraudpipe.config import Settings
from fraudpipe.publish import publish_batch
from fraudpipe.records import TransactionRecord
from fraudpipe.scoring.runtime import ScoringOptions
from fraudpipe.scoring.service import ScoringService

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

DAY_ROWS = 300
HUGE_VALUE_BYTES = 1_020_005


@pytest.fixture
def env(fresh_db: Settings, unique: str) -> Iterator[Settings]:
    settings = own_settings(fresh_db, unique, partitions=2)
    with scoring_topics(settings), champion_model(settings, seed=1):
        yield settings


def _stored_record(settings: Settings, batch_id: str) -> TransactionRecord:
    """One stored transaction of the batch, as its genuine message carries it."""
    columns = ", ".join(["transaction_id", "batch_id", "event_time", *FEATURE_COLUMNS])
    with connect(settings) as conn:
        row = conn.execute(
            f"SELECT {columns} FROM transactions WHERE batch_id = %s "
            "ORDER BY source_row LIMIT 1 OFFSET 42",
            (batch_id,),
        ).fetchone()
    assert row is not None
    tx_id, batch, event_time, *features = row
    # Avro carries milliseconds: the genuine message's event time is the stored one, truncated.
    event_time = event_time.replace(microsecond=event_time.microsecond // 1000 * 1000)
    return TransactionRecord(tx_id, batch, batch.split(":")[0], event_time, *features)


def test_the_scorer_dead_letters_each_poison_once_and_scores_every_genuine_message(
    env: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "day.csv"
    write_ulb_day(path, DAY_ROWS, seed=8)
    batch_id = ingest_ulb_day(env, path)
    topic = env.topic_transactions
    client = registry_client(env, "admin")  # serves every serialize() below; closed before scoring
    serialize = make_serializer(Contract.TRANSACTION, client)
    schema_text = load_schema_str(Contract.TRANSACTION)
    tx_schema = fastavro.parse_schema(json.loads(schema_text))
    tx_id = client.lookup_schema(Contract.TRANSACTION.subject(env), Schema(schema_text))
    pred_id = client.lookup_schema(
        Contract.PREDICTION.subject(env), Schema(load_schema_str(Contract.PREDICTION))
    )
    assert tx_id.schema_id is not None and pred_id.schema_id is not None

    genuine = _stored_record(env, batch_id)
    template = genuine.to_dict() | {"transaction_id": str(genuine.transaction_id)}

    def framed(**changes: object) -> bytes:
        out = io.BytesIO()
        out.write(b"\x00" + struct.pack(">I", tx_id.schema_id))
        fastavro.schemaless_writer(out, tx_schema, template | changes)
        return out.getvalue()

    good = serialize(genuine, value_context(topic))
    assert good is not None
    # Fraud-like (a large amount, very negative v14 and v17) yet inside every bound.
    features = list(genuine.features())
    features[0] = genuine.amount * 40 + 900.0
    features[14] -= 9.0
    features[17] -= 9.0
    forged = TransactionRecord(
        genuine.transaction_id, genuine.batch_id, genuine.source, genuine.event_time, *features
    )
    stranger = TransactionRecord(
        uuid.uuid4(), genuine.batch_id, genuine.source, genuine.event_time, *genuine.features()
    )
    # (name, value, the error type its dead letter must carry)
    corpus: list[tuple[str, bytes | None, str]] = [
        ("tombstone", None, "NotAvroError"),
        ("empty", b"", "NotAvroError"),
        ("text", b"plain text, not avro", "NotAvroError"),
        ("wrong magic byte", b"\x01" + good[1:], "NotAvroError"),
        ("unknown schema", b"\x00" + struct.pack(">I", 1_999_999_999) + good[5:],
         "UnknownSchemaError"),
        ("foreign schema", b"\x00" + struct.pack(">I", pred_id.schema_id) + good[5:],
         "WrongSchemaError"),
        ("truncated body", good[:-4], "MalformedAvroError"),
        ("NaN amount", framed(amount=math.nan), "ContractViolationError"),
        ("infinite v7", framed(v7=math.inf), "ContractViolationError"),
        ("negative infinity v28", framed(v28=-math.inf), "ContractViolationError"),
        ("negative amount", framed(amount=-0.5), "ContractViolationError"),
        *(
            (f"{name} beyond its bounds", framed(**{name: (-1) ** i * 1e308 if i else 1e300}),
             "OutOfBoundsError")
            for i, name in enumerate(FEATURE_COLUMNS)
        ),
        ("unknown transaction", serialize(stranger, value_context(topic)),
         "UnknownTransactionError"),
        ("forgery of a real transaction", serialize(forged, value_context(topic)),
         "ContentConflictError"),
        ("1,020,005-byte value", b"\x00" + struct.pack(">I", tx_id.schema_id)
         + bytes(HUGE_VALUE_BYTES - 5), "MalformedAvroError"),
    ]  # fmt: skip
    producer = Producer({**client_config(env, "admin"), "message.max.bytes": 2_000_000})
    for name, value, _ in corpus:
        # Keyed by the genuine id: every poison lands on the genuine message's partition,
        # ahead of it (the forgery before the genuine one, as the attack would have it).
        producer.produce(topic, value=value, key=str(genuine.transaction_id).encode(),
                         headers=[("poison", name.encode())])  # fmt: skip
    assert producer.flush(30) == 0
    client.close()
    publish_batch(env, batch_id)

    service = ScoringService(env, ScoringOptions(idle_exit_s=4.0, batch_size=64))
    summary = service.run()

    assert summary.stopped_by == "idle"  # still up when the topic went quiet
    rows = predictions(env, batch_id)
    assert len(rows) == DAY_ROWS
    assert {r.transaction_id for r in rows} == transaction_ids(env, batch_id)
    # The genuine transaction's prediction is the score of its stored content, not the forgery's.
    model = load_model_version(env, 1)
    values = [int(genuine.event_time.timestamp() * 1000), *genuine.features()]
    frame = pd.DataFrame([dict(zip(MODEL_INPUT_COLUMNS, values, strict=True))])
    [stored] = [r for r in rows if r.transaction_id == genuine.transaction_id]
    assert stored.score == pytest.approx(float(model.score(frame)[0]), abs=1e-12)

    with connect(env) as conn:
        letters = conn.execute(
            'SELECT "offset", error_type, error, length(value) FROM dead_letters '
            'WHERE topic = %s ORDER BY "offset"',
            (topic,),
        ).fetchall()
    assert sorted(t for _, t, _, _ in letters) == sorted(e for _, _, e in corpus)
    assert len({o for o, _, _, _ in letters}) == len(corpus)  # each exactly once
    assert max(n or 0 for _, _, _, n in letters) == HUGE_VALUE_BYTES  # the bytes are kept
    assert all(error for _, _, error, _ in letters)

    dlq = read_topic(env, env.topic_dlq, expected=len(corpus))
    assert len(dlq) == len(corpus)
    by_type: dict[str, int] = {}
    for message in dlq:
        headers = headers_of(message)
        by_type[headers["error.type"]] = by_type.get(headers["error.type"], 0) + 1
        if headers.get("original.stored_in"):
            assert headers["original.stored_in"] == STORED_IN
            assert message.value() is None
            assert headers["original.value_bytes"] == str(HUGE_VALUE_BYTES)
    expected_types: dict[str, int] = {}
    for _, _, error_type in corpus:
        expected_types[error_type] = expected_types.get(error_type, 0) + 1
    assert by_type == expected_types
