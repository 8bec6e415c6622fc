"""The consumer side of a micro-batch: taking it, and committing what it consumed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from fraudpipe.errors import KafkaFatalError, ServiceUnavailableError

log = structlog.get_logger(__name__)

#: Commit refusals that mean the partitions now belong to another member of the group: the
#: work is durable and the new owner re-reads it (its inserts are absorbed), so move on.
LOST_PARTITIONS: Final = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)


def take_micro_batch(consumer: Consumer, most: int, timeout_s: float) -> list[Message]:
    """Wait up to `timeout_s` for a first message, then take whatever else is already fetched.

    `consume(num_messages=n, timeout=t)` alone waits until n messages or t seconds, so a quiet
    topic would hold each message for t. Waiting for one, then draining the prefetched queue
    without waiting, sizes micro-batches by the load: one message at a trickle, `most` under a
    backlog (librdkafka keeps fetching while the previous micro-batch is being written).
    """
    first = consumer.consume(num_messages=1, timeout=timeout_s)
    if not first or most <= 1:
        return first
    return first + consumer.consume(num_messages=most - 1, timeout=0)


def next_offsets(messages: Sequence[Message]) -> list[TopicPartition]:
    """Per (topic, partition), the offset after the last consumed message: what to commit."""
    last: dict[tuple[str | None, int | None], int] = {}
    for m in messages:
        key = (m.topic(), m.partition())
        offset = m.offset() or 0
        # Offsets rise within a partition, so the last seen is the largest; the check is a guard.
        if offset > last.get(key, -1):
            last[key] = offset
    return [TopicPartition(t or "", p or 0, o + 1) for (t, p), o in sorted(last.items(), key=_tp)]


def _tp(item: tuple[tuple[str | None, int | None], int]) -> tuple[str, int]:
    (topic, partition), _ = item
    return topic or "", partition or 0


def commit_offsets(consumer: Consumer, offsets: list[TopicPartition]) -> None:
    """Commit synchronously; a refusal because the partitions moved is logged, not raised.

    Raises:
        ServiceUnavailableError: The group coordinator cannot be reached (retry).
        KafkaFatalError: A fatal client error.
    """
    try:
        results = consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        judge_commit_error(exc.args[0] if exc.args else None, offsets)
        return
    for tp in results:
        if tp.error is not None:
            judge_commit_error(tp.error, [tp])


def judge_commit_error(err: object, offsets: list[TopicPartition]) -> None:
    """Log a refusal because the partitions moved; raise for anything else.

    Raises:
        ServiceUnavailableError: The coordinator is away or busy (retry the commit).
        KafkaFatalError: A fatal client error.
    """
    if not isinstance(err, KafkaError):
        raise ServiceUnavailableError("Kafka group coordinator", "commit", f"error {err!r}")
    if err.fatal():
        raise KafkaFatalError("consumer", str(err))
    if err.code() in LOST_PARTITIONS:
        log.warning(
            "offsets not committed: the partitions moved to another scorer, which re-reads "
            "them (its writes of this micro-batch are absorbed)",
            error=err.name(),
            partitions=[tp.partition for tp in offsets],
        )
        return
    raise ServiceUnavailableError(
        "Kafka group coordinator", "offset commit", f"{err.name()}: {err.str()}"
    )
