"""What the broker refuses for good is raised, not re-sent forever; a dead letter whose copy is
refused goes as a reference; a stop request ends every wait. Against the real broker."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from scoring_support import headers_of, read_topic

from fraudpipe.adapters.kafka.acls import scoped_rights
from fraudpipe.adapters.kafka.dlq import STORED_IN, DeadLetterPublisher
from fraudpipe.adapters.kafka.producer import ConfirmedProducer, producer_config
from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.config import Settings
from fraudpipe.errors import DeliveryRefusedError
from fraudpipe.microbatch import DeadLetter
from fraudpipe.retry import StopRequested

pytestmark = pytest.mark.integration

_TIMEOUT = 30.0
#: The broker refuses any record batch larger than this on the test's topic.
SMALL_LIMIT = 4096


@pytest.fixture
def small_topic(stack: Settings, unique: str) -> Iterator[str]:
    admin = AdminClient(client_config(stack, "admin"))
    name = f"test.refusals.{unique}"
    new = NewTopic(name, 1, 1, config={"max.message.bytes": str(SMALL_LIMIT)})
    admin.create_topics([new], operation_timeout=_TIMEOUT)[name].result(timeout=_TIMEOUT)
    # The scorer's producer writes it, as it writes its outputs.
    outputs = stack.model_copy(update={"topic_predictions": name, "topic_dlq": name})
    try:
        with scoped_rights(outputs, stack):
            yield name
    finally:
        admin.delete_topics([name], operation_timeout=_TIMEOUT)[name].result(timeout=_TIMEOUT)


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
