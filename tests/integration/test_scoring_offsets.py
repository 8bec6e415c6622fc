"""The scorer's offset committer against the real broker: asynchronous commits land, a
synchronous `commit_now` settles what is left, and offsets never move backwards."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

# The documented import path, though the package does not mark it as re-exported.
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from fraudpipe.adapters.kafka.offsets import OffsetCommitter, next_offsets
from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.config import Settings

pytestmark = pytest.mark.integration

_TIMEOUT = 30.0
_PARTITIONS = 3


@pytest.fixture
def topic(stack: Settings, unique: str) -> Iterator[str]:
    admin = AdminClient(client_config(stack, "admin"))
    name = f"test.offsets.{unique}"
    new = NewTopic(name, num_partitions=_PARTITIONS, replication_factor=1)
    admin.create_topics([new], operation_timeout=_TIMEOUT)[name].result(timeout=_TIMEOUT)
    try:
        yield name
    finally:
        admin.delete_topics([name], operation_timeout=_TIMEOUT)[name].result(timeout=_TIMEOUT)
        groups = admin.delete_consumer_groups([f"test-offsets-{unique}"])
        for future in groups.values():
            future.result(timeout=_TIMEOUT)


def _committed(stack: Settings, topic: str, group: str) -> dict[int, int]:
    reader = Consumer({**client_config(stack, "admin"), "group.id": group})
    try:
        parts = [TopicPartition(topic, p) for p in range(_PARTITIONS)]
        return {tp.partition: tp.offset for tp in reader.committed(parts, timeout=_TIMEOUT)}
    finally:
        reader.close()


def test_async_commits_land_and_commit_now_settles_the_rest(
    stack: Settings, topic: str, unique: str
) -> None:
    producer = Producer(client_config(stack, "admin"))
    for i in range(60):
        producer.produce(topic, f"v{i}".encode(), f"k{i}".encode())
    assert producer.flush(_TIMEOUT) == 0
    group = f"test-offsets-{unique}"
    holder: list[OffsetCommitter] = []
    consumer = Consumer(
        {
            **client_config(stack, "admin"),
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "on_commit": lambda err, parts: holder[0].on_commit(err, parts),
        }
    )
    committer = OffsetCommitter(consumer)
    holder.append(committer)
    try:
        consumer.subscribe([topic])
        seen = []
        deadline = time.monotonic() + _TIMEOUT
        while len(seen) < 60 and time.monotonic() < deadline:
            batch = [
                m
                for m in consumer.consume(num_messages=25, timeout=1.0)
                if m.error() is None or m.error().code() != KafkaError._PARTITION_EOF
            ]
            if batch:
                committer.advance(next_offsets(batch))
                committer.send()
                seen.extend(batch)
        assert len(seen) == 60
        # The coordinator's answers are served by the consumer's own calls.
        deadline = time.monotonic() + _TIMEOUT
        while committer.unconfirmed and time.monotonic() < deadline:
            consumer.consume(num_messages=1, timeout=0.2)
        assert committer.unconfirmed == {}

        # An offset recorded but not sent asynchronously is settled by commit_now.
        first = next(m for m in seen if m.partition() == 0)
        committer.advance([TopicPartition(topic, 0, first.offset())])  # behind: ignored
        committer.commit_now()
        expected = {tp.partition: tp.offset for tp in next_offsets(seen)}
        assert _committed(stack, topic, group) == expected
    finally:
        consumer.close()
