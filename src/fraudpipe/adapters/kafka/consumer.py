"""The consumers' settings (the scorer's and the decision recorder's): manual offsets after
durable work, cooperative rebalancing; and how both sort what a poll returns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from confluent_kafka import KafkaError, Message

from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.config import Settings
from fraudpipe.errors import KafkaFatalError, NotAuthorizedError

#: Consume errors no retry cures: the broker's ACLs refuse the topic or the group.
_DENIED: Final = frozenset(
    {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED}
)


def data_messages(
    messages: Sequence[Message], consumer: str, on_error: Callable[[KafkaError], object]
) -> list[Message]:
    """The messages of a poll that carry data; a passing error (a broker away, say) goes to
    `on_error`, and a partition's end is dropped.

    Args:
        messages: What ``consume`` returned.
        consumer: Who consumes, for the errors (``"the scorer"``).
        on_error: Told each passing error (a log line, a metric).

    Raises:
        KafkaFatalError: librdkafka reported a fatal error; the client must be recreated.
        NotAuthorizedError: The broker's ACLs refuse the topic or the group.
    """
    data: list[Message] = []
    for message in messages:
        error = message.error()
        if error is None:
            data.append(message)
        elif error.fatal():
            raise KafkaFatalError("consumer", str(error))
        elif error.code() in _DENIED:
            raise NotAuthorizedError("Kafka", consumer, "consume", str(error))
        elif error.code() != KafkaError._PARTITION_EOF:
            on_error(error)
    return data


def consumer_config(settings: Settings, client_id: str) -> dict[str, object]:
    """The consumer's settings: manual offsets, cooperative rebalancing, earliest start."""
    return {
        **client_config(settings, "scorer"),
        "group.id": settings.consumer_group,
        "client.id": client_id,
        # Offsets are committed by hand, after the work is durable, never by the client.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # Only committed transactions of the publisher (librdkafka's default, said aloud).
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
        # A scorer that crashed hands its partitions over after this long (heartbeats come from
        # librdkafka's own thread, so a busy micro-batch does not count as silence).
        "session.timeout.ms": 10_000,
        # A loop waiting out an outage longer than this leaves the group: its partitions move
        # (or come back to it when it rejoins), and its uncommitted micro-batches are fenced.
        "max.poll.interval.ms": settings.kafka_max_poll_interval_ms,
        # Prefetch generously: decoding and writing a micro-batch overlaps the next fetch.
        "queued.max.messages.kbytes": 262_144,
        # A fetch returns once 64 KiB (~100 messages) are there, or after 10 ms. Answered at
        # the first byte, a topic fed at 5k tx/s cost a fetch round trip per message or two:
        # the broker and librdkafka then took over a core between them, which the micro-batches
        # waited for (p99 at 5k tx/s 150-190 ms; 93-97 ms with this and the bench pacer at
        # librdkafka's default linger). A backlog fills each fetch at once.
        "fetch.min.bytes": 65_536,
        "fetch.wait.max.ms": 10,
    }


def recorder_config(settings: Settings, client_id: str) -> dict[str, object]:
    """The decision recorder's consumer: the scorer's settings in its own group, offsets
    stored as messages are handed over (and committed by hand once all of them are written:
    a commit covers only what PostgreSQL holds), and patient fetches."""
    return {
        **consumer_config(settings, client_id),
        "group.id": settings.api_recorder_group,
        "enable.auto.offset.store": True,
        # Nobody waits on the recorder: the broker holds each fetch until it has 1 MiB or
        # 100 ms passed. Fetching what was there at once, it answered a fetch per few
        # decisions, and the broker's CPU came out of the API's two cores.
        "fetch.min.bytes": 1 << 20,
        "fetch.wait.max.ms": 100,
    }
