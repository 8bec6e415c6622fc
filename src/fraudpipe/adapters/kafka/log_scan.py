"""What a topic's log holds past given offsets, as a ``read_committed`` reader sees it.

The publisher asks it after a run was killed between committing a batch's Kafka transaction and
marking the batch published (`publish.publisher`): were the batch's records committed? A
transaction is all or nothing, so one of its keys past the attempt's start offsets says yes.
The consumer is assigned its partitions (no group is joined, no offset committed, and the
principal needs no rights on any group).
"""

from __future__ import annotations

import time
from collections.abc import Container, Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from fraudpipe.adapters.kafka.security import Principal, client_config
from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError

_TIMEOUT_S = 10.0


def _reader(settings: Settings, principal: Principal) -> Consumer:
    return Consumer(
        {
            **client_config(settings, principal),
            # Required by the client; never joined, since partitions are assigned.
            "group.id": f"fraudpipe-log-scan-{principal}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )


def end_offsets(settings: Settings, principal: Principal, topic: str) -> list[int]:
    """The topic's high watermarks, in partition order.

    Raises:
        ServiceUnavailableError: The broker did not answer.
    """
    consumer = _reader(settings, principal)
    try:
        return _high_watermarks(consumer, settings, topic)
    finally:
        consumer.close()


def committed_key_after(
    settings: Settings,
    principal: Principal,
    topic: str,
    start: Sequence[int],
    keys: Container[bytes],
    timeout_s: float,
) -> bool:
    """Whether a committed record past `start` (offsets in partition order) has one of `keys`.

    Reads up to the high watermarks as they are when called; a transaction still open there
    (another publisher's) is waited for, up to `timeout_s`.

    Raises:
        ServiceUnavailableError: The broker did not answer, or the read did not reach the end
            in `timeout_s`.
    """
    consumer = _reader(settings, principal)
    try:
        ends = _high_watermarks(consumer, settings, topic)
        # A partition added since the attempt began is read from its start.
        starts = [*start[: len(ends)], *[0] * (len(ends) - len(start))]
        todo = [
            TopicPartition(topic, p, first)
            for p, (first, end) in enumerate(zip(starts, ends, strict=True))
            if first < end
        ]
        if not todo:
            return False
        consumer.assign(todo)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in consumer.consume(1_000, 0.5):
                error = message.error()
                if error is not None and error.code() != KafkaError.GROUP_AUTHORIZATION_FAILED:
                    raise KafkaException(error)
                if error is not None:
                    continue  # the client looks its group up regardless; it needs no rights
                if message.key() in keys:
                    return True
            positions = consumer.position(todo)
            if all(tp.offset >= ends[tp.partition] for tp in positions):
                return False
        raise ServiceUnavailableError(
            "Kafka",
            settings.kafka_bootstrap_servers,
            f"{topic} could not be read to its end in {timeout_s:.0f} s (an open transaction?)",
        )
    except KafkaException as exc:
        if isinstance(exc.args[0], KafkaError) and exc.args[0].fatal():
            raise
        raise ServiceUnavailableError("Kafka", settings.kafka_bootstrap_servers) from exc
    finally:
        consumer.close()


def _high_watermarks(consumer: Consumer, settings: Settings, topic: str) -> list[int]:
    try:
        metadata = consumer.list_topics(topic, timeout=_TIMEOUT_S)
        partitions = sorted(metadata.topics[topic].partitions)
        return [
            consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=_TIMEOUT_S, cached=False
            )[1]
            for p in partitions
        ]
    except KafkaException as exc:
        raise ServiceUnavailableError("Kafka", settings.kafka_bootstrap_servers) from exc
