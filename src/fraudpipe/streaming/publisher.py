"""Publish one loaded batch from PostgreSQL to Kafka as registry-validated Avro transactions.

At least once, never silently less: the producer is idempotent (no duplicates from its own
retries), every delivery report is counted, and the batch becomes `published` only after all of
its records were acknowledged by all in-sync replicas. Any failure leaves the batch `loaded`, so
a re-run sends it again; records that had already arrived are then on the topic twice, which the
scoring consumer absorbs (its write is idempotent on transaction id and model version).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from itertools import starmap
from typing import Any, Final

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.serialization import SerializationContext

from fraudpipe.config import Settings
from fraudpipe.contracts import (
    Contract,
    TransactionRecord,
    make_latest_serializer,
    registry_client,
    registry_errors,
    value_context,
)
from fraudpipe.db.batches import Batch, BatchRepository, BatchStatus
from fraudpipe.db.connect import Connection, connect
from fraudpipe.errors import (
    BatchNotFoundError,
    PublishError,
    ServiceUnavailableError,
    TopicSetupError,
)
from fraudpipe.streaming.topics import COMPRESSION

log = structlog.get_logger("fraudpipe.publish")

#: Rows fetched per round trip from the server-side cursor: memory stays flat whatever the size
#: of the batch (some 10 MB of Python objects per chunk), and round trips are few.
FETCH_ROWS: Final = 10_000
#: How often (in records) the produce loop serves delivery reports and reports progress.
POLL_EVERY: Final = 1_000
#: Bound on the metadata request that checks the broker and the topic before anything is sent.
PREFLIGHT_TIMEOUT_SECONDS: Final = 10.0

# The record's fields in declaration order, batch and source as parameters: each row arrives
# as the exact argument tuple of `TransactionRecord`, so `starmap` builds the records straight
# from the fetched rows, with no per-row slicing or re-packing. Event-time order, so the stream
# looks like the day it replays.
_CONSTANT_FIELDS: Final = {"batch_id": "%(batch_id)s::text", "source": "%(source)s::text"}
_SELECT_BATCH: Final = (
    "SELECT "
    + ", ".join(_CONSTANT_FIELDS.get(f.name, f.name) for f in fields(TransactionRecord))
    + " FROM transactions WHERE batch_id = %(batch_id)s ORDER BY event_time, source_row"
)

ProgressCallback = Callable[[int, int], None]
"""Called as `(records acknowledged so far, records in the batch)` while publishing."""


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What `publish_batch` did."""

    batch_id: str | None
    """The batch published (None: no loaded batch was waiting)."""
    status: str
    """The batch's status afterwards: `published`, what it already was if nothing was sent, or
    `none` when there was no batch."""
    records: int
    acknowledged: int
    seconds: float
    topic: str

    @property
    def records_per_second(self) -> float:
        return self.acknowledged / self.seconds if self.seconds > 0 else 0.0


def producer_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings of the batch publisher."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": "fraudpipe-publisher",
        # No duplicates or reordering from the producer's own retries; acks=all so an
        # acknowledged record is on every in-sync replica (min.insync.replicas on the topic).
        "enable.idempotence": True,
        "acks": "all",
        # A replay is throughput-bound, not latency-bound: fill batches for up to 20 ms.
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "compression.type": COMPRESSION,
        # Total time a record may spend in retries before its delivery report says it failed.
        "message.timeout.ms": settings.kafka_delivery_timeout_ms,
    }


class _DeliveryTracker:
    """Counts delivery reports; remembers the first failure."""

    def __init__(self) -> None:
        self.acknowledged = 0
        self.failed = 0
        self.first_error: KafkaError | None = None

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.acknowledged += 1
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = err


def publish_batch(
    settings: Settings,
    batch_id: str | None = None,
    *,
    on_progress: ProgressCallback | None = None,
) -> PublishResult:
    """Send a loaded batch's transactions to `settings.topic_transactions`, then mark it published.

    One database transaction spans the run: it holds the batch's lock (so a second publisher of
    the same batch waits, then finds it published and sends nothing), streams the rows, and
    moves the batch to `published` after the last acknowledgement. A failure rolls it back.

    Args:
        settings: Database, broker, registry and topic.
        batch_id: The batch to publish; by default the oldest `loaded` one.
        on_progress: Progress callback (acknowledged, total).

    Returns:
        What was sent; `batch_id` is None when no batch was waiting. A batch that is no longer
        `loaded` is not sent again (`status` says what it is).

    Raises:
        BatchNotFoundError: `batch_id` does not exist.
        ServiceUnavailableError: PostgreSQL, the broker or the registry cannot be reached.
        TopicSetupError: The topic does not exist (run `fraudpipe topics ensure`).
        ContractNotRegisteredError: The transaction subject is missing from the registry.
        ContractViolationError: A stored row breaks the contract (e.g. a NaN amount).
        PublishError: A record was refused or not acknowledged in time; the batch stays `loaded`.
    """
    topic = settings.topic_transactions
    with connect(settings, "app") as conn:
        repo = BatchRepository(conn)
        batch = _claim(repo, batch_id)
        if batch is None:
            log.info("publish.nothing_to_do", reason="no loaded batch")
            return PublishResult(None, "none", 0, 0, 0.0, topic)
        if batch.status is not BatchStatus.LOADED:
            log.info("publish.skipped", batch_id=batch.batch_id, status=batch.status.value)
            return PublishResult(batch.batch_id, batch.status.value, 0, 0, 0.0, topic)
        started = time.perf_counter()
        sent, acknowledged = _send_batch(conn, batch, settings, on_progress)
        if sent != batch.row_count:
            raise PublishError(
                batch.batch_id,
                f"the batch row says {batch.row_count} rows, the transactions table holds {sent}",
            )
        repo.mark_published(batch.batch_id)
    seconds = time.perf_counter() - started
    result = PublishResult(batch.batch_id, "published", sent, acknowledged, seconds, topic)
    log.info(
        "publish.done",
        batch_id=batch.batch_id,
        topic=topic,
        records=sent,
        seconds=round(seconds, 2),
        records_per_second=round(result.records_per_second),
    )
    return result


def _claim(repo: BatchRepository, batch_id: str | None) -> Batch | None:
    """The batch to publish, locked for this transaction and read again under the lock."""
    found = repo.get(batch_id) if batch_id else repo.oldest_batch_with_status(BatchStatus.LOADED)
    if found is None:
        if batch_id:
            raise BatchNotFoundError(batch_id)
        return None
    repo.lock(found.batch_id)
    return repo.get(found.batch_id)


def _send_batch(
    conn: Connection, batch: Batch, settings: Settings, on_progress: ProgressCallback | None
) -> tuple[int, int]:
    """Produce every row of `batch` and wait for the acknowledgements; (sent, acknowledged)."""
    subject = Contract.TRANSACTION.subject(settings)
    with registry_client(settings) as client:
        # Fetched before anything is sent, so a missing subject fails the run, not a record.
        with registry_errors(settings, subject):
            serializer = make_latest_serializer(Contract.TRANSACTION, client, subject)
        producer = Producer(producer_config(settings))
        _preflight(producer, settings)
        log.info(
            "publish.start",
            batch_id=batch.batch_id,
            rows=batch.row_count,
            topic=settings.topic_transactions,
        )
        tracker = _DeliveryTracker()
        try:
            sent = _produce_all(conn, producer, serializer, batch, settings, tracker, on_progress)
            _await_acknowledgements(producer, batch, sent, tracker, settings)
        except BaseException:
            # Drop what is still queued: the batch stays loaded and a re-run resends it all.
            producer.purge()
            producer.flush(0)
            raise
    if on_progress:
        on_progress(tracker.acknowledged, batch.row_count)
    return sent, tracker.acknowledged


def _preflight(producer: Producer, settings: Settings) -> None:
    """Check the broker answers and the topic exists (the broker never auto-creates it)."""
    topic = settings.topic_transactions
    timeout = min(PREFLIGHT_TIMEOUT_SECONDS, settings.kafka_delivery_timeout_ms / 1000)
    try:
        metadata = producer.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise ServiceUnavailableError("Kafka", settings.kafka_bootstrap_servers) from exc
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        raise TopicSetupError(topic, "does not exist (the broker does not auto-create topics)")


def read_batch_records(conn: Connection, batch: Batch) -> Iterator[TransactionRecord]:
    """The batch's transactions in event-time order, streamed through a server-side cursor.

    Args:
        conn: A connection in a transaction (a named cursor lives inside one).
        batch: The batch whose rows to read.

    Yields:
        One `TransactionRecord` per row; at most `FETCH_ROWS` rows are held at a time.
    """
    # Binary results: floats, uuids and timestamps arrive without text parsing.
    with conn.cursor(name="publish_batch", binary=True) as cur:
        cur.execute(_SELECT_BATCH, {"batch_id": batch.batch_id, "source": batch.source})
        while rows := cur.fetchmany(FETCH_ROWS):
            yield from starmap(TransactionRecord, rows)


def _produce_all(
    conn: Connection,
    producer: Producer,
    serializer: Callable[[object, SerializationContext], bytes | None],
    batch: Batch,
    settings: Settings,
    tracker: _DeliveryTracker,
    on_progress: ProgressCallback | None,
) -> int:
    """Queue every record of the batch; stops at the first failed delivery report."""
    topic = settings.topic_transactions
    value_ctx = value_context(topic)
    # Bound once: this loop runs per record, and attribute lookups are a visible part of it.
    produce = producer.produce
    sent = 0
    for record in read_batch_records(conn, batch):
        value = serializer(record, value_ctx)
        # The key is the UUID's text; produce() encodes a str key as UTF-8, as StringSerializer
        # would, without a Python call per record.
        key = str(record.transaction_id)
        try:
            produce(topic, value, key, on_delivery=tracker)
        except BufferError:
            _produce_when_room(producer, topic, value, key, tracker)
        sent += 1
        if sent % POLL_EVERY == 0:
            producer.poll(0)
            if tracker.failed:
                break  # no point queueing more: this run fails anyway
            if on_progress:
                on_progress(tracker.acknowledged, batch.row_count)
    return sent


def _produce_when_room(
    producer: Producer, topic: str, value: bytes | None, key: str, tracker: _DeliveryTracker
) -> None:
    """Serve delivery reports until the local queue takes the record."""
    while True:
        producer.poll(0.1)
        try:
            producer.produce(topic, value, key, on_delivery=tracker)
            return
        except BufferError:
            continue


def _await_acknowledgements(
    producer: Producer, batch: Batch, sent: int, tracker: _DeliveryTracker, settings: Settings
) -> None:
    """Wait for every delivery report; raise unless all `sent` records were acknowledged."""
    # flush() returns once every queued record is delivered or has failed, which
    # message.timeout.ms bounds; the margin covers the last in-flight requests.
    remaining = producer.flush(settings.kafka_delivery_timeout_ms / 1000 + 10)
    if tracker.failed:
        raise PublishError(
            batch.batch_id,
            f"{tracker.failed} record(s) refused, first: {tracker.first_error}",
        )
    if remaining or tracker.acknowledged != sent:
        raise PublishError(
            batch.batch_id,
            f"{sent - tracker.acknowledged} of {sent} record(s) not acknowledged in time",
        )
