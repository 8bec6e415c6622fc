"""What the broker refuses for good is raised, not re-sent forever; a dead letter whose copy is
refused goes as a reference; a stop request ends every wait; the API's producer answers each
send once every record is acknowledged, or with the refusal. Against the real broker."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from scoring_support import headers_of, read_topic

from fraudpipe.adapters.kafka.acked import DELIVERY_TIMEOUT_MS, AckedProducer
from fraudpipe.adapters.kafka.acls import scoped_rights
from fraudpipe.adapters.kafka.dlq import STORED_IN, DeadLetterPublisher
from fraudpipe.adapters.kafka.producer import ConfirmedProducer, producer_config
from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.config import Settings
from fraudpipe.errors import DeliveryRefusedError, ServiceUnavailableError
from fraudpipe.microbatch import DeadLetter
from fraudpipe.retry import StopRequested

pytestmark = pytest.mark.integration

_TIMEOUT = 30.0
#: The broker refuses any record batch larger than this on the test's topic.
SMALL_LIMIT = 4096


@contextmanager
def _own_topic(stack: Settings, name: str, config: dict[str, str]) -> Iterator[str]:
    admin = AdminClient(client_config(stack, "admin"))
    new = NewTopic(name, 1, 1, config=config)
    admin.create_topics([new], operation_timeout=_TIMEOUT)[name].result(timeout=_TIMEOUT)
    # The scorer's producer writes it, as it writes its outputs.
    outputs = stack.model_copy(update={"topic_predictions": name, "topic_dlq": name})
    try:
        with scoped_rights(outputs, stack):
            yield name
    finally:
        admin.delete_topics([name], operation_timeout=_TIMEOUT)[name].result(timeout=_TIMEOUT)


@pytest.fixture
def small_topic(stack: Settings, unique: str) -> Iterator[str]:
    limit = {"max.message.bytes": str(SMALL_LIMIT)}
    with _own_topic(stack, f"test.refusals.{unique}", limit) as name:
        yield name


@pytest.fixture
def topic(stack: Settings, unique: str) -> Iterator[str]:
    with _own_topic(stack, f"test.acked.{unique}", {}) as name:
        yield name


def _producer(settings: Settings, stop: threading.Event | None = None) -> ConfirmedProducer:
    return ConfirmedProducer(producer_config(settings, "test-refusals"), stop or threading.Event())


def test_a_message_the_broker_refuses_is_raised_and_the_producer_goes_on(
    stack: Settings, small_topic: str
) -> None:
    producer = _producer(stack)
    # Random bytes: lz4 would shrink a repeated byte under the limit.
    producer.produce(small_topic, os.urandom(SMALL_LIMIT * 4), b"big")
    started = time.monotonic()
    with pytest.raises(DeliveryRefusedError) as refused:
        producer.confirm()
    assert time.monotonic() - started < 30  # refused, not retried until a timeout
    [message] = refused.value.refused
    assert (message.topic, message.key) == (small_topic, b"big")
    assert "MSG_SIZE_TOO_LARGE" in message.reason
    producer.produce(small_topic, b"after", b"ok")
    producer.confirm()  # usable again
    producer.close()
    assert [m.value() for m in read_topic(stack, small_topic, expected=1)] == [b"after"]


def test_a_message_larger_than_the_client_takes_is_refused_at_once(
    stack: Settings, small_topic: str
) -> None:
    producer = _producer(stack)
    producer.produce(small_topic, b"y" * 1_200_000, b"huge")  # over message.max.bytes
    with pytest.raises(DeliveryRefusedError, match="refused for good"):
        producer.confirm()
    producer.close()


def test_a_dead_letter_whose_copy_is_refused_goes_as_a_reference(
    stack: Settings, small_topic: str
) -> None:
    letter = DeadLetter(
        "fraud.transactions", 3, 1234, 1_700_000_000_000, b"k", os.urandom(SMALL_LIMIT * 2),
        "MalformedAvroError", "truncated",
    )  # fmt: skip
    small = DeadLetter(
        "fraud.transactions", 3, 1235, None, b"k", b"tiny", "NotAvroError", "text"
    )  # the same record batch as the large one: refused with it, then accepted alone
    publisher = DeadLetterPublisher(_producer(stack), small_topic)
    publisher.publish([letter, small])
    publisher.close()
    by_offset = {
        headers_of(m)["original.offset"]: m for m in read_topic(stack, small_topic, expected=2)
    }
    assert sorted(by_offset) == ["1234", "1235"]
    assert by_offset["1235"].value() == b"tiny"
    message = by_offset["1234"]
    headers = headers_of(message)
    assert message.value() is None and message.key() is None
    assert headers["original.stored_in"] == STORED_IN
    assert headers["original.value_bytes"] == str(SMALL_LIMIT * 2)
    assert (headers["original.partition"], headers["original.offset"]) == ("3", "1234")
    assert headers["error.type"] == "MalformedAvroError"


def test_a_stop_request_ends_the_wait_for_an_unreachable_broker(stack: Settings) -> None:
    stop = threading.Event()
    away = stack.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})
    # log_level 2: the refused connections are the point here, not worth a line each.
    config = producer_config(away, "test-refusals") | {"log_level": 2}
    producer = ConfirmedProducer(config, stop)
    producer.produce("anywhere", b"v", b"k")
    stop.set()
    started = time.monotonic()
    with pytest.raises(StopRequested):
        producer.confirm()
    assert time.monotonic() - started < 15  # one bounded wait, then the stop is honoured


def test_an_api_send_returns_once_every_record_is_acknowledged(stack: Settings, topic: str) -> None:
    producer = AckedProducer(stack, "test-acked")
    producer.start()
    records = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(500)]
    asyncio.run(producer.send_many(topic, records))
    asyncio.run(producer.send_many(topic, []))  # nothing to wait for
    assert producer.close() == 0
    stored = read_topic(stack, topic, expected=len(records))
    assert sorted((m.key(), m.value()) for m in stored) == sorted(records)


def test_an_api_send_with_a_refused_record_raises_it_and_the_producer_goes_on(
    stack: Settings, small_topic: str
) -> None:
    producer = AckedProducer(stack, "test-acked")
    producer.start()
    with pytest.raises(DeliveryRefusedError) as refused:
        asyncio.run(producer.send_many(small_topic, [(b"big", os.urandom(SMALL_LIMIT * 4))]))
    [message] = refused.value.refused
    assert (message.topic, message.key) == (small_topic, b"big")
    assert message.reason == "Broker: Message size too large"
    asyncio.run(producer.send_many(small_topic, [(b"ok", b"after")]))
    assert producer.close() == 0
    assert [m.value() for m in read_topic(stack, small_topic, expected=1)] == [b"after"]


def test_an_api_send_to_an_unreachable_broker_fails_within_its_delivery_timeout(
    stack: Settings,
) -> None:
    away = stack.model_copy(update={"kafka_bootstrap_servers": "127.0.0.1:1"})
    producer = AckedProducer(away, "test-acked")
    producer.start()
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError):
        asyncio.run(producer.send_many("anywhere", [(b"k1", b"v"), (b"k2", b"v")]))
    assert time.monotonic() - started < DELIVERY_TIMEOUT_MS / 1000 + 10
    producer.close(timeout=1.0)
