"""The batch publisher against real PostgreSQL, Kafka and Schema Registry.

Each test ingests a small file of its own into the module's fresh database, publishes to a topic
and subject of its own (`test.<unique>.transactions`), and removes topic, subject and consumer
group afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)
from topic_configs import wait_until_served

from fraudpipe.adapters.avro import (
    Contract,
    latest_row_encoder,
    make_deserializer,
    make_latest_serializer,
    make_serializer,
    registry_client,
    value_context,
)
from fraudpipe.adapters.avro.registration import delete_subject_completely, register_contracts
from fraudpipe.adapters.kafka.acls import scoped_rights
from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.adapters.postgres.batch_reads import read_batch_columns, read_batch_records
from fraudpipe.adapters.postgres.batches import Batch, BatchRepository, BatchStatus
from fraudpipe.adapters.postgres.connect import Connection, connect
from fraudpipe.config import Settings
from fraudpipe.data.files import FileSource
from fraudpipe.errors import (
    BatchNotFoundError,
    ContractNotRegisteredError,
    PublishError,
    ServiceUnavailableError,
    TopicSetupError,
)
from fraudpipe.ingest import ingest
from fraudpipe.publish import publish_batch
from fraudpipe.publish.encoding import BlockEncoder
from fraudpipe.records import TransactionRecord

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROWS = 240
_TIMEOUT = 30.0


@dataclass(frozen=True)
class Target:
    settings: Settings
    admin: AdminClient
    batch_id: str


def _write_day(path: Path, rows: int, seed: int) -> None:
    """A ULB-shaped CSV of one day (2025-09-20), a few frauds among `rows` transactions."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"Time": np.sort(rng.uniform(0, 86_399, rows)).round()})
    for i in range(1, 29):
        frame[f"V{i}"] = rng.normal(size=rows)
    frame["Amount"] = rng.gamma(2.0, 40.0, rows).round(2)
    frame["Class"] = (rng.uniform(size=rows) < 0.05).astype(int)
    frame.to_csv(path, index=False)


@pytest.fixture
def target(fresh_db: Settings, tmp_path: Path, unique: str) -> Iterator[Target]:
    """A loaded batch, a topic with 3 partitions and the transaction subject, all its own."""
    own = fresh_db.model_copy(update={"topic_transactions": f"test.{unique}.transactions"})
    path = tmp_path / f"cards_{unique}.csv"
    _write_day(path, ROWS, seed=int(unique, 16) % 2**32)
    [batch] = ingest(own, FileSource(path)).batches
    assert batch.loaded == ROWS
    admin = AdminClient(client_config(own, "admin"))
    topic = own.topic_transactions
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(timeout=_TIMEOUT)
    subject = Contract.TRANSACTION.subject(own)
    with registry_client(own, "admin") as client, scoped_rights(own, fresh_db):
        register_contracts(client, own, [Contract.TRANSACTION])
        try:
            yield Target(own, admin, batch.batch_id)
        finally:
            admin.delete_topics([topic])[topic].result(timeout=_TIMEOUT)
            delete_subject_completely(client, subject)


def _batch(conn: Connection, target: Target) -> Batch:
    batch = BatchRepository(conn).get(target.batch_id)
    assert batch is not None
    return batch


def _status(settings: Settings, batch_id: str) -> BatchStatus:
    with connect(settings) as conn:
        batch = BatchRepository(conn).get(batch_id)
    assert batch is not None
    return batch.status


def _stored(settings: Settings, batch_id: str) -> dict[uuid.UUID, tuple[float, float]]:
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT transaction_id, amount, v14 FROM transactions WHERE batch_id = %s",
            (batch_id,),
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _consume_all(target: Target, expected: int) -> list[tuple[bytes, TransactionRecord]]:
    """Read the topic from the start until `expected` messages arrived, then 2 s more."""
    topic = target.settings.topic_transactions
    group = f"test-publish-{uuid.uuid4().hex[:10]}"
    consumer = Consumer(
        {
            **client_config(target.settings, "admin"),
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    ctx = value_context(topic)
    received: list[tuple[bytes, TransactionRecord]] = []
    with registry_client(target.settings, "admin") as client:
        deserialize = make_deserializer(Contract.TRANSACTION, client)
        try:
            consumer.subscribe([topic])
            deadline = time.monotonic() + _TIMEOUT
            quiet_until = None
            while time.monotonic() < deadline:
                if quiet_until is None and len(received) >= expected:
                    quiet_until = time.monotonic() + 2.0  # catch duplicates, if any
                if quiet_until is not None and time.monotonic() > quiet_until:
                    break
                for msg in consumer.consume(num_messages=500, timeout=0.5):
                    assert msg.error() is None, msg.error()
                    key = msg.key()
                    assert key is not None
                    received.append((key, deserialize(msg.value(), ctx)))
        finally:
            consumer.close()
            target.admin.delete_consumer_groups([group])[group].result(timeout=_TIMEOUT)
    return received


def test_publish_sends_every_transaction_exactly_once_then_marks_published(
    target: Target,
) -> None:
    settings, batch_id = target.settings, target.batch_id
    seen: list[tuple[int, int]] = []

    result = publish_batch(settings, batch_id, on_progress=lambda a, t: seen.append((a, t)))

    assert (result.batch_id, result.status) == (batch_id, "published")
    assert result.records == result.acknowledged == ROWS
    assert seen[-1] == (ROWS, ROWS)
    assert _status(settings, batch_id) is BatchStatus.PUBLISHED
    received = _consume_all(target, ROWS)
    stored = _stored(settings, batch_id)
    ids = [record.transaction_id for _, record in received]
    assert len(ids) == ROWS
    assert set(ids) == set(stored)
    for key, record in received:
        assert key == str(record.transaction_id).encode()
        assert record.batch_id == batch_id
        assert record.source == batch_id.rsplit(":", 1)[0]
        assert (record.amount, record.v14) == stored[record.transaction_id]
        assert record.event_time.date().isoformat() == "2025-09-20"


def test_publisher_serializer_writes_the_librarys_exact_bytes(target: Target) -> None:
    """The pinned serializer's fast path (planned encoding) against AvroSerializer's own path."""
    settings = target.settings
    ctx = value_context(settings.topic_transactions)
    with connect(settings) as conn:
        records = list(read_batch_records(conn, _batch(conn, target)))
    with registry_client(settings, "admin") as client:
        subject = Contract.TRANSACTION.subject(settings)
        library = make_serializer(Contract.TRANSACTION, client)
        pinned = make_latest_serializer(Contract.TRANSACTION, client, subject)
        fastavro_bodies = make_latest_serializer(
            Contract.TRANSACTION, client, subject, planned_encoding=False
        )

        expected = [library(record, ctx) for record in records]
        assert [pinned(record, ctx) for record in records] == expected
        assert [fastavro_bodies(record, ctx) for record in records] == expected

    assert len(records) == ROWS
    assert [r.event_time for r in records] == sorted(r.event_time for r in records)


def test_publisher_column_reads_and_encoding_write_the_librarys_exact_bytes(
    target: Target,
) -> None:
    """The binary COPY read and the column-wise encoding (what `publish_batch` sends) against
    the records read through a cursor and written by AvroSerializer's own path, in order."""
    settings = target.settings
    ctx = value_context(settings.topic_transactions)
    with connect(settings) as conn:
        batch = _batch(conn, target)
        records = list(read_batch_records(conn, batch))
        blocks = list(read_batch_columns(conn, batch, rows_per_block=37))
    with registry_client(settings, "admin") as client:
        subject = Contract.TRANSACTION.subject(settings)
        library = make_serializer(Contract.TRANSACTION, client)
        pinned = make_latest_serializer(Contract.TRANSACTION, client, subject)
        row_encoder = latest_row_encoder(client, subject)
        assert row_encoder is not None
        expected_values = [library(record, ctx) for record in records]
        for rows in (row_encoder, None):  # column-wise, and record by record
            encode = BlockEncoder(pinned, rows, settings.topic_transactions)
            keys: list[bytes] = []
            values: list[bytes] = []
            for block in blocks:
                block_keys, block_values = encode(block)
                keys += block_keys
                values += block_values
            assert values == expected_values
            assert keys == [str(r.transaction_id).encode() for r in records]

    assert [len(block) for block in blocks] == [37] * (ROWS // 37) + [ROWS % 37]
    assert [block.record(i) for block in blocks for i in range(len(block))] == records


def test_a_stored_row_cannot_be_changed_to_break_the_contract(target: Target) -> None:
    """A NaN used to reach the publisher, which refused it; now no role can store one."""
    settings, batch_id = target.settings, target.batch_id
    with connect(settings) as conn:
        row = conn.execute(
            "SELECT transaction_id FROM transactions WHERE batch_id = %s LIMIT 1", (batch_id,)
        ).fetchone()
        assert row is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE transactions SET v3 = 'NaN' WHERE transaction_id = %s", row)
    with connect(settings, "owner") as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE transactions SET v3 = 'NaN' WHERE transaction_id = %s", row)
    assert _status(settings, batch_id) is BatchStatus.LOADED


def test_publishing_again_sends_nothing(target: Target) -> None:
    publish_batch(target.settings, target.batch_id)

    again = publish_batch(target.settings, target.batch_id)

    assert (again.status, again.records) == ("published", 0)
    assert len(_consume_all(target, ROWS)) == ROWS


def test_default_is_the_oldest_loaded_batch(target: Target) -> None:
    with connect(target.settings) as conn:
        oldest = BatchRepository(conn).oldest_batch_with_status(BatchStatus.LOADED)
    assert oldest is not None

    result = publish_batch(target.settings)

    assert result.batch_id == oldest.batch_id
    assert _status(target.settings, oldest.batch_id) is BatchStatus.PUBLISHED


def test_unreachable_broker_fails_loudly_and_leaves_the_batch_loaded(target: Target) -> None:
    closed = target.settings.model_copy(
        update={"kafka_bootstrap_servers": "127.0.0.1:1", "kafka_delivery_timeout_ms": 3000}
    )

    with pytest.raises(ServiceUnavailableError, match=r"Kafka not reachable at 127\.0\.0\.1:1"):
        publish_batch(closed, target.batch_id)

    assert _status(target.settings, target.batch_id) is BatchStatus.LOADED


def test_records_the_broker_refuses_fail_the_run_and_a_rerun_finishes(target: Target) -> None:
    topic = target.settings.topic_transactions
    cap = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            # Smaller than one record batch: the broker refuses every produce request.
            ConfigEntry("max.message.bytes", "200", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    target.admin.incremental_alter_configs([cap])[cap].result(timeout=_TIMEOUT)
    wait_until_served(target.admin, topic, "max.message.bytes", lambda v: v == "200")

    with pytest.raises(PublishError, match="refused") as failed:
        publish_batch(target.settings, target.batch_id)

    assert target.batch_id in str(failed.value)
    assert _status(target.settings, target.batch_id) is BatchStatus.LOADED
    cap = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE)
        ],
    )
    target.admin.incremental_alter_configs([cap])[cap].result(timeout=_TIMEOUT)
    wait_until_served(target.admin, topic, "max.message.bytes", lambda v: v != "200")
    rerun = publish_batch(target.settings, target.batch_id)
    assert rerun.acknowledged == ROWS
    assert _status(target.settings, target.batch_id) is BatchStatus.PUBLISHED


def test_missing_topic_subject_registry_or_batch_are_named(target: Target, unique: str) -> None:
    no_topic = target.settings.model_copy(update={"topic_transactions": f"test.{unique}.absent"})
    # Nothing listens on port 1.
    no_registry = target.settings.model_copy(
        update={"schema_registry_url": "http://127.0.0.1:1/apis/ccompat/v7"}
    )

    with pytest.raises(TopicSetupError, match="does not exist"):
        _publish_with_registered_subject(no_topic, target.batch_id)
    with pytest.raises(ServiceUnavailableError, match="schema registry"):
        publish_batch(no_registry, target.batch_id)
    with pytest.raises(BatchNotFoundError):
        publish_batch(target.settings, "file:nowhere:2025-09-20")
    unregistered = target.settings.model_copy(
        update={"topic_transactions": f"test.{unique}.unregistered"}
    )
    with pytest.raises(ContractNotRegisteredError, match="contracts register"):
        publish_batch(unregistered, target.batch_id)
    assert _status(target.settings, target.batch_id) is BatchStatus.LOADED


def _publish_with_registered_subject(settings: Settings, batch_id: str) -> None:
    """Publish to a topic that does not exist, its subject registered (so the topic check fails)."""
    subject = Contract.TRANSACTION.subject(settings)
    with registry_client(settings, "admin") as client:
        register_contracts(client, settings, [Contract.TRANSACTION])
        try:
            publish_batch(settings, batch_id)
        finally:
            client.delete_subject(subject)
            client.delete_subject(subject, permanent=True)


def test_prefect_flow_publishes_and_names_its_run_after_the_batch(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import importlib.util

    from prefect import get_client
    from prefect_support import prefect_api

    from fraudpipe.config import get_settings

    spec = importlib.util.spec_from_file_location(
        "publish_flow", Path(__file__).resolve().parents[2] / "flows" / "publish.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # A deployment run gets its database and topic the same way: env overrides.
    monkeypatch.setenv("FRAUDPIPE_PG_DATABASE", target.settings.pg_database)
    monkeypatch.setenv("FRAUDPIPE_TOPIC_TRANSACTIONS", target.settings.topic_transactions)
    get_settings.cache_clear()

    async def run_name(flow_run_id: str) -> str:
        async with get_client() as client:
            return (await client.read_flow_run(flow_run_id)).name

    try:
        with prefect_api(target.settings):
            state = module.publish_batch_flow(target.batch_id, return_state=True)
            summary = state.result()
            name = asyncio.run(run_name(str(state.state_details.flow_run_id)))
    finally:
        get_settings.cache_clear()

    assert state.is_completed()
    assert summary["records"] == summary["acknowledged"] == ROWS
    assert name == "publish-" + target.batch_id.replace(":", "-")
    assert _status(target.settings, target.batch_id) is BatchStatus.PUBLISHED
