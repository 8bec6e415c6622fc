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
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from fraudpipe.adapters.kafka.producer import ConfirmedProducer, Headers
from fraudpipe.microbatch import DeadLetter


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


class DeadLetterPublisher:
    """Sends dead letters to the DLQ topic through a confirmed producer."""

    def __init__(self, producer: ConfirmedProducer, topic: str) -> None:
        self._producer = producer
        self.topic = topic

    def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Queue the dead letters and wait until the broker has acknowledged them.

        Raises:
            KafkaFatalError: The producer cannot continue.
            StopRequested: A shutdown was requested while waiting for the broker.
        """
        if not letters:
            return
        now_ms = time.time_ns() // 1_000_000
        for letter in letters:
            self._producer.produce(
                self.topic, letter.value, letter.key, dead_letter_headers(letter, now_ms)
            )
        self._producer.confirm()

    def close(self) -> None:
        """Release the producer (everything published was already acknowledged)."""
        self._producer.close()
