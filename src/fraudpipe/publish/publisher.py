"""Publish one loaded batch from PostgreSQL to Kafka as registry-validated Avro transactions.

Once for ``read_committed`` readers, never silently less: the batch goes in one Kafka
transaction whose id is the batch's own, the producer is idempotent (no duplicates from its own
retries), every delivery report is counted, and the batch becomes `published` only after all of
its records were acknowledged by all in-sync replicas and the transaction committed. Any
failure leaves the batch `loaded` and its transaction aborted, so a re-run sends it again and
the scorer reads each record once.

A run killed after the Kafka commit but before its PostgreSQL commit leaves the batch `loaded`
with its records committed on the topic. So each attempt first records, in a commit of its
own, the topic's end offsets (`publish_attempts`); a re-run of a `loaded` batch with a recorded
attempt, once its producer has aborted whatever the attempt left open, reads the topic from
there (``read_committed``, keys only) and, if one of the batch's keys is there, the whole
transaction is, so it marks the batch published and sends nothing.

A resend (`resend=True`, ``fraudpipe publish --resend --batch-id B``) sends a published or
scored batch's transactions that have no prediction yet, and leaves its status alone: the way
back when the transactions topic deleted records (retention) before the scorer read them,
which the scorer reports as ``records expired before they were scored``. Run it once the
scorer has caught up, so that nothing it sends is still on its way to be scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from typing import Final

import structlog

from fraudpipe.adapters.avro import (
    Contract,
    latest_row_encoder,
    make_latest_serializer,
    registry_client,
    registry_errors,
)
from fraudpipe.adapters.kafka.batch_producer import BatchProducer
from fraudpipe.adapters.kafka.log_scan import committed_key_after, end_offsets
from fraudpipe.adapters.postgres.batch_reads import read_batch_columns
from fraudpipe.adapters.postgres.batches import Batch, BatchRepository, BatchStatus
from fraudpipe.adapters.postgres.connect import Connection, connect
from fraudpipe.adapters.postgres.publish_attempts import last_attempt, record_attempt
from fraudpipe.config import Settings
from fraudpipe.errors import BatchNotFoundError, PublishError
from fraudpipe.publish.encoding import BlockEncoder

log = structlog.get_logger("fraudpipe.publish")

#: Rows read, encoded and queued at a time; delivery reports are served and progress reported
#: after each block. Small enough (some 800 kB) that while a block is produced, PostgreSQL
#: writes much of the next one into the socket's buffers, large enough that per-block costs
#: vanish. Between 500 and 20,000 rows, bench runs moved less with the size than between runs.
BLOCK_ROWS: Final = 2_000

#: Blocks read and encoded at most while the transaction opens (it waits on the coordinator):
#: some 40 MB at worst, however long the coordinator takes.
READ_AHEAD_BLOCKS: Final = 50

_Encoded = tuple[list[bytes], list[bytes]]
"""A block's keys and values."""

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


def publish_batch(
    settings: Settings,
    batch_id: str | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    resend: bool = False,
    fault: Callable[[str], None] | None = None,
) -> PublishResult:
    """Send a loaded batch's transactions to `settings.topic_transactions`, then mark it published.

    One database transaction spans the run: it holds the batch's lock (so a second publisher of
    the same batch waits, then finds it published and sends nothing), streams the rows, and
    moves the batch to `published` after the last acknowledgement. A failure rolls it back.

    Args:
        settings: Database, broker, registry and topic.
        batch_id: The batch to publish; by default the oldest `loaded` one.
        on_progress: Progress callback (acknowledged, total).
        resend: Send a published or scored batch's unscored transactions again (`batch_id`
            required; its status stays).
        fault: Called at named points (``"kafka-committed"``); fault tests raise there.

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
        if resend and batch.status is not BatchStatus.LOADED:
            started = time.perf_counter()
            sent, acknowledged = _send_batch(conn, batch, settings, on_progress, resend=True)
            seconds = time.perf_counter() - started
            log.info("publish.resent", batch_id=batch.batch_id, records=sent)
            return PublishResult(
                batch.batch_id, batch.status.value, sent, acknowledged, seconds, topic
            )
        if batch.status is not BatchStatus.LOADED:
            log.info("publish.skipped", batch_id=batch.batch_id, status=batch.status.value)
            return PublishResult(batch.batch_id, batch.status.value, 0, 0, 0.0, topic)
        started = time.perf_counter()
        sent, acknowledged = _send_batch(conn, batch, settings, on_progress)
        if fault is not None:
            fault("kafka-committed")
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
    conn: Connection,
    batch: Batch,
    settings: Settings,
    on_progress: ProgressCallback | None,
    *,
    resend: bool = False,
) -> tuple[int, int]:
    """Produce every row of `batch` and wait for the acknowledgements; (sent, acknowledged).

    The transaction opens on a thread of its own (`_open_transaction`: the coordinator's
    answer, the check for an earlier committed attempt, the attempt's record), each step a wait
    on another service, while this thread reads and encodes the first blocks. Nothing is
    produced before it has opened.
    """
    subject = Contract.TRANSACTION.subject(settings)
    topic = settings.topic_transactions
    with registry_client(settings) as client:
        # Fetched before anything is sent, so a missing subject fails the run, not a record.
        with registry_errors(settings, subject):
            encoder = BlockEncoder(
                make_latest_serializer(Contract.TRANSACTION, client, subject),
                latest_row_encoder(client, subject),
                topic,
            )
        # One transaction per batch, under an id of the batch's own: a re-run of a killed
        # publish aborts the run's open transaction at once (`BatchProducer`).
        txn_id = f"{settings.kafka_publish_transactional_id_prefix}-{batch.batch_id}"
        producer = BatchProducer(settings, topic, transactional_id=txn_id)
        try:
            producer.check_topic()
            # Read before the COPY below takes the connection.
            prior = None if resend else _prior_attempt(conn, batch, topic)
            blocks = (
                encoder(block)
                for block in read_batch_columns(
                    conn, batch, unscored_only=resend, rows_per_block=BLOCK_ROWS
                )
            )
            try:
                with ThreadPoolExecutor(1, thread_name_prefix="publish-transaction") as pool:
                    opening = pool.submit(_open_transaction, settings, producer, batch, prior)
                    ahead = _read_while(blocks, opening)
                    if opening.result():
                        producer.abandon()  # the empty transaction just begun
                        return batch.row_count, batch.row_count
                log.info(
                    "publish.start", batch_id=batch.batch_id, rows=batch.row_count, topic=topic
                )
                _produce_all(producer, chain(ahead, blocks), batch, on_progress)
                _await_acknowledgements(producer, batch)
                producer.commit()
            except BaseException:
                # Drop what is still queued: the batch stays loaded and a re-run resends it.
                producer.abandon()
                raise
            finally:
                blocks.close()  # ends the COPY if the run stopped before its last row
        finally:
            producer.close()
    if on_progress:
        on_progress(producer.acknowledged, batch.row_count)
    return producer.sent, producer.acknowledged


@dataclass(frozen=True, slots=True)
class _PriorAttempt:
    """An earlier attempt's start on the topic, and the keys to look for after it."""

    start: list[int]
    keys: set[bytes]


def _prior_attempt(conn: Connection, batch: Batch, topic: str) -> _PriorAttempt | None:
    start = last_attempt(conn, batch.batch_id, topic)
    if start is None:
        return None
    rows = conn.execute(
        "SELECT transaction_id::text FROM transactions WHERE batch_id = %s", (batch.batch_id,)
    )
    return _PriorAttempt(start, {row[0].encode() for row in rows})


def _open_transaction(
    settings: Settings, producer: BatchProducer, batch: Batch, prior: _PriorAttempt | None
) -> bool:
    """Open the batch's transaction and record the attempt; True (and nothing recorded) when
    an earlier attempt committed the batch's transaction and was killed before it marked the
    batch published (its producer, fenced by ours, left nothing open)."""
    topic = settings.topic_transactions
    producer.begin()
    if prior is not None:
        timeout_s = settings.kafka_publish_transaction_timeout_ms / 1000 + 30
        if committed_key_after(settings, "publisher", topic, prior.start, prior.keys, timeout_s):
            log.warning(
                "publish.already_committed",
                batch_id=batch.batch_id,
                detail="an earlier run committed the batch on the topic and stopped before "
                "marking it published: marked now, nothing sent again",
            )
            return True
    record_attempt(settings, batch.batch_id, topic, end_offsets(settings, "publisher", topic))
    return False


def _read_while(blocks: Iterator[_Encoded], opening: Future[bool]) -> list[_Encoded]:
    """The blocks read while the transaction opens, at most `READ_AHEAD_BLOCKS` of them."""
    ahead: list[_Encoded] = []
    while not opening.done() and len(ahead) < READ_AHEAD_BLOCKS:
        block = next(blocks, None)
        if block is None:
            break
        ahead.append(block)
    return ahead


def _produce_all(
    producer: BatchProducer,
    blocks: Iterable[_Encoded],
    batch: Batch,
    on_progress: ProgressCallback | None,
) -> None:
    """Queue every block's records; stops at the first failed delivery report."""
    for keys, values in blocks:
        # The key is the UUID's text, as `StringSerializer` would write it.
        producer.produce_many(keys, values)
        producer.poll()
        if producer.failed:
            break  # no point queueing more: this run fails anyway
        if on_progress:
            on_progress(producer.acknowledged, batch.row_count)


def _await_acknowledgements(producer: BatchProducer, batch: Batch) -> None:
    """Wait for every delivery report; raise unless every record sent was acknowledged."""
    remaining = producer.wait()
    if producer.failed:
        raise PublishError(
            batch.batch_id,
            f"{producer.failed} record(s) refused, first: {producer.first_error}",
        )
    sent = producer.sent
    if remaining or producer.acknowledged != sent:
        raise PublishError(
            batch.batch_id,
            f"{sent - producer.acknowledged} of {sent} record(s) not acknowledged in time",
        )
