"""The local Kafka broker round-trips keyed messages and refuses to auto-create topics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

# The documented import path, though the package does not mark it as re-exported.
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.config import Settings

pytestmark = pytest.mark.integration

_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def bootstrap(stack: Settings) -> dict[str, Any]:
    """The admin's connection settings: these tests check the broker itself."""
    return client_config(stack, "admin")


@pytest.fixture(scope="module")
def admin(bootstrap: dict[str, Any]) -> AdminClient:
    return AdminClient(bootstrap)


@pytest.fixture
def topic(admin: AdminClient, unique: str) -> Iterator[str]:
    name = f"test.kafka.{unique}"
    new = NewTopic(name, num_partitions=3, replication_factor=1)
    admin.create_topics([new], operation_timeout=_TIMEOUT)[name].result(timeout=_TIMEOUT)
    try:
        yield name
    finally:
        admin.delete_topics([name], operation_timeout=_TIMEOUT)[name].result(timeout=_TIMEOUT)


def _produce(producer: Producer, topic: str, key: bytes, value: bytes) -> Message:
    """Produce one record and return its delivery report, failing on a delivery error."""
    reports: list[tuple[KafkaError | None, Message]] = []
    producer.produce(
        topic, key=key, value=value, on_delivery=lambda err, msg: reports.append((err, msg))
    )
    assert producer.flush(_TIMEOUT) == 0, "delivery report not received in time"
    [(err, msg)] = reports
    assert err is None, f"delivery failed: {err}"
    return msg


def test_keyed_message_round_trips(
    bootstrap: dict[str, Any], topic: str, admin: AdminClient, unique: str
) -> None:
    producer = Producer({**bootstrap, "acks": "all", "enable.idempotence": True})
    key = f"card-{unique}".encode()
    first = _produce(producer, topic, key, b"first")
    second = _produce(producer, topic, key, b"second")
    # The default partitioner hashes the key, so one card's events stay in order on one partition.
    assert first.partition() == second.partition()
    first_offset = first.offset()
    assert first_offset is not None
    assert second.offset() == first_offset + 1

    group = f"test-kafka-{unique}"
    consumer = Consumer(
        {
            **bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: list[Message] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + _TIMEOUT
        while len(received) < 2 and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, f"consume failed: {msg.error()}"
            received.append(msg)
    finally:
        consumer.close()
        admin.delete_consumer_groups([group], request_timeout=_TIMEOUT)[group].result(
            timeout=_TIMEOUT
        )

    assert [(m.key(), m.value()) for m in received] == [(key, b"first"), (key, b"second")]
    assert {m.partition() for m in received} == {first.partition()}
    assert [m.offset() for m in received] == [first.offset(), second.offset()]


def test_producing_to_missing_topic_does_not_create_it(
    bootstrap: dict[str, Any], admin: AdminClient, unique: str
) -> None:
    missing = f"test.kafka.missing.{unique}"
    producer = Producer(
        {
            **bootstrap,
            "acks": "all",
            # Give up on the unknown topic after 1 s instead of the default 30 s; the broker's
            # own answer (not a local timeout) is what proves auto-creation is off.
            "topic.metadata.propagation.max.ms": 1000,
            "message.timeout.ms": 10000,
        }
    )
    errors: list[KafkaError | None] = []
    producer.produce(missing, value=b"lost", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(_TIMEOUT)

    assert len(errors) == 1
    error = errors[0]
    assert error is not None, "delivery to a non-existent topic succeeded"
    assert error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, error
    assert missing not in admin.list_topics(timeout=_TIMEOUT).topics
