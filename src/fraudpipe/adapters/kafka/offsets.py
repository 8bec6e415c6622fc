"""The consumer side of a micro-batch: taking it, and committing what it consumed."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
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
#: Of those, the refusals that say this member is out of the group altogether (it exceeded
#: ``max.poll.interval.ms`` or its session): none of its partitions is its own any more, and
#: only the consume loop's next ``consume()`` rejoins.
LEFT_GROUP: Final = frozenset({KafkaError.UNKNOWN_MEMBER_ID, KafkaError.FENCED_INSTANCE_ID})


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


def committed_offsets(consumer: Consumer, partitions: list[TopicPartition]) -> list[TopicPartition]:
    """The group's committed offsets of `partitions` (negative where none is committed).

    Raises:
        ServiceUnavailableError: The group coordinator did not answer (retry).
    """
    try:
        found: list[TopicPartition] = consumer.committed(partitions, timeout=10)
    except KafkaException as exc:
        raise ServiceUnavailableError("Kafka", "group coordinator", str(exc)) from exc
    return found


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


class OffsetCommitter:
    """Commits consumed offsets without waiting for the coordinator, and for certain when asked.

    Offsets are committed only after the micro-batch is durable in PostgreSQL and its outputs
    are acknowledged. Waiting for the coordinator's answer as well cost a round trip per
    micro-batch (13–40 ms, one of the largest fixed costs at low rates) and bought nothing: a
    commit lost in a crash leaves the offsets behind, so the micro-batches after them are
    consumed again and the idempotent write absorbs their predictions. Each commit carries the
    latest offset of every partition whose commit is not confirmed yet, so a commit that failed
    is repeated by the next one. Before partitions are revoked and at a clean stop `commit_now`
    commits synchronously, so neither a rebalance nor a restart re-scores anything.

    `advance` runs in the publish stage and only records the offsets; `send` and `commit_now`
    run in the consume loop, as do the commit results (the consumer serves them from
    `consume()`), hence the lock. Every call on the consumer stays on the loop's thread because
    confluent-kafka serialises them: a commit from the publish stage waited until the loop's
    `consume()` returned, up to its whole timeout (200 ms in the latency bench) whenever the
    topic was quiet for a moment.
    """

    def __init__(self, consumer: Consumer) -> None:
        """Commit through `consumer` (pass `on_commit` as its ``on_commit`` callback)."""
        self._consumer = consumer
        self._lock = threading.Lock()
        self._unconfirmed: dict[tuple[str, int], int] = {}
        # Highest offset recorded per partition: a micro-batch never moves its offset back.
        self._latest: dict[tuple[str, int], int] = {}
        self._fatal: KafkaError | None = None
        self._advanced = False  # offsets recorded since the last `send`

    def advance(self, offsets: Iterable[TopicPartition]) -> None:
        """Record the offsets after a committed micro-batch (`send` commits them).

        Raises:
            KafkaFatalError: A fatal client error in an earlier commit's result.
        """
        self.raise_if_fatal()
        with self._lock:
            for tp in offsets:
                key = (tp.topic, tp.partition)
                if tp.offset > self._latest.get(key, -1):
                    self._latest[key] = self._unconfirmed[key] = tp.offset
                    self._advanced = True

    def send(self) -> None:
        """Commit what was recorded since the last call, without waiting (the consume loop).

        A refusal right away (no coordinator yet, say) is logged: the offsets stay unconfirmed
        and go with the next commit.

        Raises:
            KafkaFatalError: A fatal client error.
        """
        self.raise_if_fatal()
        with self._lock:
            if not self._advanced:
                return
            self._advanced = False
            pending = self._pending()
        try:
            self._consumer.commit(offsets=pending, asynchronous=True)
        except KafkaException as exc:
            try:
                judge_commit_error(exc.args[0] if exc.args else None, pending)
            except ServiceUnavailableError as unavailable:
                log.warning("asynchronous offset commit refused", error=str(unavailable))

    def commit_now(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        """Commit synchronously what is not confirmed yet (of `partitions`, or of all).

        Raises:
            ServiceUnavailableError: The group coordinator cannot be reached (retry).
            KafkaFatalError: A fatal client error.
        """
        self.raise_if_fatal()
        wanted = None if partitions is None else set(partitions)
        with self._lock:
            pending = [
                tp for tp in self._pending() if wanted is None or (tp.topic, tp.partition) in wanted
            ]
        if not pending:
            return
        commit_offsets(self._consumer, pending)
        with self._lock:
            self._confirm(pending)

    def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop partitions this member no longer owns (their next owner commits them)."""
        with self._lock:
            for key in partitions:
                self._unconfirmed.pop(key, None)
                self._latest.pop(key, None)

    def on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The consumer's commit callback: confirm what the coordinator stored."""
        if err is not None and err.fatal():
            self._fatal = err
            return
        stored: list[TopicPartition] = []
        for tp in partitions:
            failure = tp.error if tp.error is not None else err
            if failure is None:
                stored.append(tp)
            elif failure.code() in LOST_PARTITIONS:
                self.forget([(tp.topic, tp.partition)])
            else:
                # Kept unconfirmed: the next commit carries the offset again.
                log.warning("asynchronous offset commit failed", error=failure.name())
        with self._lock:
            self._confirm(stored)

    @property
    def unconfirmed(self) -> dict[tuple[str, int], int]:
        """Offsets sent (or to send) whose commit the coordinator has not confirmed yet."""
        with self._lock:
            return dict(self._unconfirmed)

    def raise_if_fatal(self) -> None:
        if self._fatal is not None:
            raise KafkaFatalError("consumer", str(self._fatal))

    def _pending(self) -> list[TopicPartition]:
        return [TopicPartition(t, p, o) for (t, p), o in sorted(self._unconfirmed.items())]

    def _confirm(self, stored: Iterable[TopicPartition]) -> None:
        for tp in stored:
            key = (tp.topic, tp.partition)
            # A later offset may have been sent since: that one still waits for its answer.
            if self._unconfirmed.get(key) == tp.offset:
                del self._unconfirmed[key]
