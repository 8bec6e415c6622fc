"""Each Kafka principal is refused outside its rights, by the broker's own errors.

The clients here are plain librdkafka clients with a principal's credentials
(`client_config`): the refusals come from the broker's authorizer and SASL handshake, not from
fraudpipe's code. The topics and group are the test's own, with the pipeline's rights granted on
them as `fraudpipe stack up` grants them on the configured ones.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from pydantic import SecretStr
from scoring_support import own_settings, read_topic, scoring_topics

from fraudpipe.adapters.kafka.batch_producer import BatchProducer
from fraudpipe.adapters.kafka.producer import ConfirmedProducer, producer_config
from fraudpipe.adapters.kafka.security import Principal, client_config
from fraudpipe.config import Settings
from fraudpipe.errors import AuthenticationRefusedError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

_TIMEOUT = 20.0
DENIED_TOPIC = KafkaError.TOPIC_AUTHORIZATION_FAILED
DENIED_GROUP = KafkaError.GROUP_AUTHORIZATION_FAILED


@pytest.fixture(scope="module")
def env(stack: Settings) -> Iterator[Settings]:
    settings = own_settings(stack, f"acl{uuid.uuid4().hex[:8]}", partitions=1)
    with scoring_topics(settings):
        yield settings


def _delivery_error(settings: Settings, principal: Principal, topic: str) -> KafkaError | None:
    """Produce one record as `principal`; the broker's answer in its delivery report."""
    reports: list[KafkaError | None] = []
    producer = Producer(
        {**client_config(settings, principal), "message.timeout.ms": 15_000, "acks": "all"}
    )
    producer.produce(topic, b"forged", b"key", on_delivery=lambda err, _m: reports.append(err))
    assert producer.flush(_TIMEOUT) == 0
    producer.close()
    [error] = reports
    return error


def _consume_error(settings: Settings, principal: Principal, topic: str, group: str) -> int:
    """Subscribe as `principal` in `group`; the first error code the broker sends back."""
    consumer = Consumer(
        {**client_config(settings, principal), "group.id": group, "auto.offset.reset": "earliest"}
    )
    try:
        consumer.subscribe([topic])
        for _ in range(40):
            for message in consumer.consume(num_messages=10, timeout=0.5):
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    return int(error.code())
        return 0
    finally:
        consumer.close()


def _admin_error(future: Any) -> int:
    with pytest.raises(KafkaException) as refused:
        future.result(timeout=_TIMEOUT)
    return int(refused.value.args[0].code())


def _end_offset(settings: Settings, topic: str) -> int:
    consumer = Consumer({**client_config(settings, "admin"), "group.id": "test-acl-probe"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=_TIMEOUT)
        return int(high)
    finally:
        consumer.close()


@pytest.mark.parametrize("principal", ["scorer", "reader"])
def test_a_forged_transaction_from_anyone_but_the_publisher_is_refused_by_the_broker(
    env: Settings, principal: Principal
) -> None:
    before = _end_offset(env, env.topic_transactions)
    error = _delivery_error(env, principal, env.topic_transactions)
    assert error is not None and error.code() == DENIED_TOPIC, error
    assert _end_offset(env, env.topic_transactions) == before  # nothing was written


def test_the_publisher_writes_transactions_and_nothing_else(env: Settings) -> None:
    assert _delivery_error(env, "publisher", env.topic_transactions) is None
    for topic in (env.topic_predictions, env.topic_alerts, env.topic_dlq):
        error = _delivery_error(env, "publisher", topic)
        assert error is not None and error.code() == DENIED_TOPIC, (topic, error)
    group = f"{env.consumer_group}-publisher"
    assert _consume_error(env, "publisher", env.topic_transactions, group) in {
        DENIED_TOPIC,
        DENIED_GROUP,
    }


def test_the_scorer_reads_in_its_own_group_only_and_writes_the_outputs(env: Settings) -> None:
    for topic in (env.topic_predictions, env.topic_alerts, env.topic_dlq):
        assert _delivery_error(env, "scorer", topic) is None, topic
    assert _consume_error(env, "scorer", env.topic_transactions, "intruder-group") == DENIED_GROUP
    assert _consume_error(env, "scorer", env.topic_transactions, env.consumer_group) == 0


def test_the_reader_reads_the_outputs_in_its_groups_and_nothing_else(env: Settings) -> None:
    reader_group = f"{env.kafka_reader_group_prefix}-{uuid.uuid4().hex[:8]}"
    assert _consume_error(env, "reader", env.topic_predictions, reader_group) == 0
    assert _consume_error(env, "reader", env.topic_transactions, reader_group) == DENIED_TOPIC
    assert _consume_error(env, "reader", env.topic_predictions, env.consumer_group) == DENIED_GROUP
    error = _delivery_error(env, "reader", env.topic_predictions)
    assert error is not None and error.code() == DENIED_TOPIC


@pytest.mark.parametrize("principal", ["publisher", "scorer", "reader"])
def test_only_the_admin_creates_deletes_topics_or_moves_the_scorers_offsets(
    env: Settings, principal: Principal
) -> None:
    admin = AdminClient(client_config(env, principal))
    name = f"test.acl.{uuid.uuid4().hex[:8]}"
    created = admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=_TIMEOUT)[name]
    assert _admin_error(created) in {DENIED_TOPIC, KafkaError.CLUSTER_AUTHORIZATION_FAILED}
    deleted = admin.delete_topics([env.topic_transactions], operation_timeout=_TIMEOUT)
    assert _admin_error(deleted[env.topic_transactions]) == DENIED_TOPIC
    if principal == "scorer":
        return  # the scorer commits its own group's offsets: that is its job
    moved = ConsumerGroupTopicPartitions(
        env.consumer_group, [TopicPartition(env.topic_transactions, 0, 0)]
    )
    [future] = admin.alter_consumer_group_offsets([moved], request_timeout=_TIMEOUT).values()
    assert _admin_error(future) == DENIED_GROUP


def test_a_wrong_password_is_refused_at_login_and_the_pipeline_says_so(env: Settings) -> None:
    wrong = env.model_copy(
        update={
            "kafka_publisher_password": SecretStr("not-the-password"),
            "kafka_scorer_password": SecretStr("not-the-password"),
        }
    )
    errors: list[KafkaError] = []
    raw = Producer({**client_config(wrong, "publisher"), "error_cb": errors.append})
    raw.produce(env.topic_transactions, b"x", b"k")
    raw.flush(5)
    raw.purge()
    raw.close()
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert "invalid credentials" in str(errors[0])

    producer = ConfirmedProducer(producer_config(wrong, "test-acl"), threading.Event())
    producer.produce(env.topic_predictions, b"x", b"k")
    with pytest.raises(AuthenticationRefusedError, match=env.kafka_scorer_user):
        producer.confirm()
    producer.close()
    batch = BatchProducer(wrong, env.topic_transactions)
    with pytest.raises(AuthenticationRefusedError, match=env.kafka_publisher_user):
        batch.check_topic()
    batch.close()


def test_an_unauthenticated_client_gets_nothing(env: Settings) -> None:
    """A client without SASL is cut off by every listener: no metadata, no message."""
    producer = Producer(
        {"bootstrap.servers": env.kafka_bootstrap_servers, "message.timeout.ms": 3000}
    )
    with pytest.raises(KafkaException):
        producer.list_topics(timeout=3)
    producer.produce(env.topic_transactions, b"anonymous", b"k")
    assert producer.flush(10) == 0  # the record timed out: nobody took it
    producer.close()
    assert b"anonymous" not in [m.value() for m in read_topic(env, env.topic_transactions, 0, 1)]
