"""Dead letters to the dead-letter topic: the original bytes, and headers saying why.

Each dead letter keeps the original key and value untouched (so it can be inspected or replayed
as it was) and carries these headers (UTF-8 text):

``error.type``          name of the error class, e.g. ``ContractViolationError``
``error.message``       what failed and what to do
``original.topic``      where the message was consumed from
``original.partition``  its partition
``original.offset``     its offset
``original.timestamp``  its Kafka record timestamp (epoch ms; empty when it had none)
``dead_lettered_at``    when the scorer dead-lettered it (epoch ms)

A message too large to be copied (a value near the broker's limit, plus these headers, no
longer fits in one record), or whose copy the broker refuses for good, goes as a reference
instead: no key or value, the headers above, and

``original.stored_in``  ``postgresql:dead_letters``: the row of the same topic, partition and
                        offset holds the original key and value, whatever their size
``original.key_bytes``, ``original.value_bytes``  their sizes

The scorer writes that row in the micro-batch's database transaction. Without output
transactions that happens after the DLQ record is acknowledged; with them, the DLQ record joins
the micro-batch's Kafka transaction after the database commit (`queue_dead_letters`). Either way the
reference never points at nothing once the offsets move on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

import structlog

from fraudpipe.adapters.kafka.producer import ConfirmedProducer, Headers, RecordSink
from fraudpipe.errors import DeliveryRefusedError, RefusedMessage
from fraudpipe.microbatch import DeadLetter

log = structlog.get_logger(__name__)

#: Largest key plus value copied onto the DLQ topic. Well under the producer's
#: ``message.max.bytes`` (1,000,000 by default) whatever the headers add, and under the
#: broker's ``message.max.bytes`` (1,048,588): a larger message goes as a reference.
MAX_COPY_BYTES: Final = 512 * 1024

#: Where a reference's original bytes are (the header's value).
STORED_IN: Final = "postgresql:dead_letters"


def dead_letter_headers(letter: DeadLetter, dead_lettered_at_ms: int) -> Headers:
    """The headers of one dead letter on the DLQ topic."""
    stamp = "" if letter.timestamp_ms is None else str(letter.timestamp_ms)
    return [
        ("error.type", letter.error_type.encode()),
        ("error.message", letter.error.encode()),
        ("original.topic", letter.topic.encode()),
        ("original.partition", str(letter.partition).encode()),
        ("original.offset", str(letter.offset).encode()),
        ("original.timestamp", stamp.encode()),
        ("dead_lettered_at", str(dead_lettered_at_ms).encode()),
    ]


def reference_headers(letter: DeadLetter, dead_lettered_at_ms: int) -> Headers:
    """The headers of a dead letter sent as a reference to its PostgreSQL row."""
    return [
        *dead_letter_headers(letter, dead_lettered_at_ms),
        ("original.stored_in", STORED_IN.encode()),
        ("original.key_bytes", str(len(letter.key or b"")).encode()),
        ("original.value_bytes", str(len(letter.value or b"")).encode()),
    ]


def fits_as_copy(letter: DeadLetter) -> bool:
    """Whether the original key and value are small enough to travel on the DLQ topic."""
    return len(letter.key or b"") + len(letter.value or b"") <= MAX_COPY_BYTES


class DeadLetterPublisher:
    """Sends dead letters to the DLQ topic through a confirmed producer."""

    def __init__(self, producer: ConfirmedProducer, topic: str) -> None:
        self._producer = producer
        self.topic = topic

    def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Queue the dead letters and wait until the broker has acknowledged them.

        A letter too large to copy, or whose copy the broker refuses for good, is sent as a
        reference to its PostgreSQL row (see the module docstring).

        Raises:
            KafkaFatalError: The producer cannot continue.
            StopRequested: A shutdown was requested while waiting for the broker.
            DeliveryRefusedError: Even a reference was refused (the DLQ topic itself is the
                problem: missing rights, say).
        """
        if not letters:
            return
        now_ms = time.time_ns() // 1_000_000
        copies: list[DeadLetter] = []
        for letter in letters:
            if fits_as_copy(letter):
                self._produce_copy(letter, now_ms)
                copies.append(letter)
            else:
                self._produce_reference(letter, now_ms)
        try:
            self._producer.confirm()
        except DeliveryRefusedError as refused:
            # The broker refuses a whole record batch for one message in it: each refused copy
            # is tried again alone, and only a copy refused alone goes as a reference.
            for message in refused.refused:
                letter = next(c for c in copies if (c.key, c.value) == (message.key, message.value))
                self._produce_copy(letter, now_ms)
                try:
                    self._producer.confirm()
                except DeliveryRefusedError as alone:
                    log.warning("dead letter copy refused, sent as a reference", reason=alone)
                    self._produce_reference(letter, now_ms)
                    self._producer.confirm()

    def close(self) -> None:
        """Release the producer (everything published was already acknowledged)."""
        self._producer.close()

    def _produce_copy(self, letter: DeadLetter, now_ms: int) -> None:
        _produce_copy(self._producer, self.topic, letter, now_ms)

    def _produce_reference(self, letter: DeadLetter, now_ms: int) -> None:
        _produce_reference(self._producer, self.topic, letter, now_ms)


def queue_dead_letters(
    sink: RecordSink, topic: str, letters: Sequence[DeadLetter], refused: Sequence[RefusedMessage]
) -> None:
    """Queue dead letters in a transactional producer's open transaction (no confirmation).

    Args:
        sink: The producer whose transaction the dead letters join.
        topic: The DLQ topic.
        letters: The micro-batch's dead letters.
        refused: What the broker refused for good in the transaction's previous attempt: a
            dead letter whose copy is there goes as a reference this time.

    Raises:
        DeliveryRefusedError: A refused record is not a dead letter's copy (nothing else can
            replace it).
    """
    refused_copies = {(r.key, r.value) for r in refused if r.topic == topic}
    others = [r for r in refused if r.topic != topic or r.value is None]
    if others:
        raise DeliveryRefusedError(others)
    now_ms = time.time_ns() // 1_000_000
    for letter in letters:
        if fits_as_copy(letter) and (letter.key, letter.value) not in refused_copies:
            _produce_copy(sink, topic, letter, now_ms)
        else:
            _produce_reference(sink, topic, letter, now_ms)


def _produce_copy(sink: RecordSink, topic: str, letter: DeadLetter, now_ms: int) -> None:
    sink.produce(topic, letter.value, letter.key, dead_letter_headers(letter, now_ms))


def _produce_reference(sink: RecordSink, topic: str, letter: DeadLetter, now_ms: int) -> None:
    sink.produce(topic, None, None, reference_headers(letter, now_ms))
