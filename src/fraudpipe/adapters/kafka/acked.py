"""An idempotent producer for an asyncio server: ``await send_many(...)`` returns once the broker
has acknowledged every record (``acks=all``), or raises.

The scoring API answers only after its decisions are acknowledged, so a decision it answered is
never lost with the process. `produce` hands the record to librdkafka at once, from the event
loop's thread (it only queues); one daemon thread serves the delivery reports, and the last
report of a `send_many` settles its one future on the loop (`_Acks`). With ``linger.ms=0`` a
record goes out as soon as the previous request to the broker returns, and records queued
meanwhile go out together.

confluent-kafka's own ``aio.AIOProducer`` was not used: it buffers records in Python until
``batch_size`` of them or ``buffer_timeout`` (1 s by default) before handing them to
librdkafka through a thread pool, a wait on every answer that a low-latency path cannot take.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Final

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from fraudpipe.adapters.kafka.producer import PERMANENT_ERRORS, producer_config
from fraudpipe.config import Settings
from fraudpipe.errors import DeliveryRefusedError, RefusedMessage, ServiceUnavailableError

log = structlog.get_logger(__name__)

#: How long a record may wait for the broker before the request that made it fails (503): an
#: authorisation cannot wait the pipeline's minute; the caller falls back to its own rules.
DELIVERY_TIMEOUT_MS: Final = 5_000


class AckedProducer:
    """Produce from an event loop and await each record's acknowledgement."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        """Create the producer (librdkafka connects in the background); `start` begins serving
        delivery reports."""
        config = producer_config(settings, client_id)
        config.update(
            {
                "message.timeout.ms": DELIVERY_TIMEOUT_MS,
                # Every record's report is awaited by its request.
                "delivery.report.only.error": False,
            }
        )
        self._producer = Producer(config)
        self._broker = settings.kafka_bootstrap_servers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="acked-producer", daemon=True)

    def start(self) -> None:
        """Start the thread that serves delivery reports."""
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    async def send_many(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """Queue records (in order) and wait until every one is acknowledged.

        Raises:
            ServiceUnavailableError: The broker did not acknowledge them in time.
            DeliveryRefusedError: The broker refused one for good (rights, size).
        """
        if not records:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        report = _Acks(len(records), loop, future, self._failure)
        for key, value in records:
            self._queue(topic, key, value, report)
        await future

    def _queue(self, topic: str, key: bytes, value: bytes, report: _Acks) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=report)
                return
            except BufferError:
                # The local queue is full (the broker is away): wait for room, bounded by the
                # records' own delivery timeout.
                self._producer.poll(0.05)

    def _failure(self, error: KafkaError, message: Message) -> Exception:
        if error.code() in PERMANENT_ERRORS:
            refused = RefusedMessage(
                message.topic() or "", message.key(), message.value(), None, error.str()
            )
            return DeliveryRefusedError([refused])
        return ServiceUnavailableError("Kafka", self._broker, "the record was not acknowledged")

    @property
    def connected(self) -> bool:
        """Whether the producer reached the broker: its metadata lists the brokers."""
        try:
            metadata = self._producer.list_topics(timeout=1.0)
        except KafkaException:
            return False
        return bool(metadata.brokers)

    def close(self, timeout: float = 10.0) -> int:
        """Wait for what is queued, then stop serving reports.

        Returns:
            How many records were still unacknowledged (their requests already failed).
        """
        left = self._producer.flush(timeout)
        self._stop.set()
        self._thread.join(timeout=1.0)
        return int(left)


class _Acks:
    """The delivery reports of one `send_many`: its future is settled once, when the last
    record's report arrives, with the first failure if any.

    One wake-up of the event loop per call, not one per record (a future, a callback through
    ``call_soon_threadsafe`` and a write to the loop's self-pipe each).
    """

    __slots__ = ("_failure", "_first", "_future", "_left", "_lock", "_loop")

    def __init__(
        self,
        count: int,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[None],
        failure: Callable[[KafkaError, Message], Exception],
    ) -> None:
        self._left = count
        self._loop = loop
        self._future = future
        self._failure = failure
        self._first: Exception | None = None
        # Reports are served by the producer's thread, and by the loop's while it waits for
        # room in a full queue (`_queue`).
        self._lock = threading.Lock()

    def __call__(self, error: KafkaError | None, message: Message) -> None:
        with self._lock:
            self._left -= 1
            if error is not None and self._first is None:
                self._first = self._failure(error, message)
            if self._left:
                return
        self._loop.call_soon_threadsafe(_settle, self._future, self._first)


def _settle(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():  # the request was cancelled (client gone): the record is still sent
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
