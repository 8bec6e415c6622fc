"""The scoring service: consume → decode → score → write → publish → commit, per micro-batch.

Exactly one prediction per transaction and model version, whatever crashes, comes from the
order of the steps of each micro-batch:

1. dead letters go to the DLQ topic and are acknowledged (so a dead letter is durable before
   anything that depends on it);
2. ONE PostgreSQL transaction writes the predictions (idempotent on
   ``(transaction_id, model_version)``) and the `dead_letters` rows (idempotent on
   ``(topic, partition, offset)``);
3. `Prediction`s and `Alert`s are produced and acknowledged;
4. only then are the consumed offsets (+1 per partition) committed, synchronously.

A crash anywhere before 4 leaves the offsets where they were: the micro-batch is consumed again
and step 2 inserts nothing new (the topics may see a message twice; their consumers deduplicate
on the same key). A PostgreSQL, registry or broker outage is waited out with back-off at the
step it hit; nothing is committed meanwhile. SIGTERM/SIGINT finish the current micro-batch,
commit it and close; a stop during an outage closes without committing (nothing is lost).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from types import FrameType
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt
import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from psycopg import errors as pg_errors

from fraudpipe.config import Settings
from fraudpipe.contracts import registry_client
from fraudpipe.errors import (
    KafkaFatalError,
    SchemaRegistryRequestError,
    ServiceUnavailableError,
    UnknownTransactionError,
)
from fraudpipe.scoring.batch import DeadLetter, ScoredBatch
from fraudpipe.scoring.batch_progress import BatchProgress
from fraudpipe.scoring.decoding import (
    ColumnarDecoder,
    Decoded,
    RecordDecoder,
    TransactionDecoder,
    dead_letter,
)
from fraudpipe.scoring.delivery import ConfirmedProducer, producer_config
from fraudpipe.scoring.dlq import DeadLetterPublisher
from fraudpipe.scoring.lag import consumer_lag
from fraudpipe.scoring.metrics import MetricsServer, ScoringMetrics
from fraudpipe.scoring.model_watch import ServingModelWatcher
from fraudpipe.scoring.outputs import PredictionPublisher
from fraudpipe.scoring.periodic import Periodic
from fraudpipe.scoring.retry import Backoff, StopRequested, retry_until_done
from fraudpipe.scoring.score import score_batch
from fraudpipe.scoring.sink import PredictionSink

T = TypeVar("T")
log = structlog.get_logger(__name__)

#: Errors that mean "a service is away for now": wait and retry the step.
RETRIABLE: tuple[type[BaseException], ...] = (
    ServiceUnavailableError,
    SchemaRegistryRequestError,
    # Deadlock or serialization failure between two scorers: the transaction rolled back whole.
    pg_errors.TransactionRollback,
)

#: Commit refusals that mean the partitions now belong to another member of the group: the
#: work is durable and the new owner re-reads it (its inserts are absorbed), so move on.
_LOST_PARTITIONS = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.FENCED_INSTANCE_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)


@dataclass(frozen=True)
class ScoringOptions:
    """How the scorer runs (the endpoints come from `Settings`).

    Attributes:
        batch_size: Most messages per micro-batch (`consume(num_messages=...)`).
        poll_timeout_s: Longest wait of one `consume` for a micro-batch to fill.
        max_messages: Stop after this many messages (None: run until stopped).
        idle_exit_s: Stop after this long without a message (None: never).
        model_poll_s: How often to ask MLflow whether the serving alias moved.
        lag_every_s: How often to sample consumer lag.
        progress_every_s: How often, per batch, to check whether it is fully scored.
        metrics_port: Prometheus endpoint port; 0 disables the endpoint.
        metrics_addr: Address the endpoint binds to.
        decoder: ``columnar`` (fast path) or ``record`` (`AvroDeserializer` per message).
        backoff: Retry delays during outages.
    """

    batch_size: int = 10_000
    poll_timeout_s: float = 0.5
    max_messages: int | None = None
    idle_exit_s: float | None = None
    model_poll_s: float = 10.0
    lag_every_s: float = 5.0
    progress_every_s: float = 5.0
    metrics_port: int = 0
    metrics_addr: str = "127.0.0.1"
    decoder: Literal["columnar", "record"] = "columnar"
    backoff: Backoff = field(default_factory=Backoff)


@dataclass
class RunSummary:
    """What one run of the service did."""

    consumed: int = 0
    scored: int = 0
    inserted: int = 0
    dead_letters: int = 0
    micro_batches: int = 0
    batches_scored: list[str] = field(default_factory=list)
    partitions: set[int] = field(default_factory=set)
    model_versions: set[int] = field(default_factory=set)
    stopped_by: str = ""
    first_consumed_at: float | None = None
    """`time.monotonic()` when the first message arrived (throughput excludes start-up)."""
    last_committed_at: float | None = None
    """`time.monotonic()` when the last micro-batch's offsets were committed."""


def consumer_config(settings: Settings, client_id: str) -> dict[str, object]:
    """The consumer's settings: manual offsets, cooperative rebalancing, earliest start."""
    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "group.id": settings.consumer_group,
        "client.id": client_id,
        # Offsets are committed by hand, after the work is durable, never by the client.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        # Prefetch generously: decoding and writing a micro-batch overlaps the next fetch.
        "queued.max.messages.kbytes": 262_144,
        "fetch.wait.max.ms": 100,
    }


class ScoringService:
    """One member of the scoring consumer group."""

    def __init__(
        self,
        settings: Settings,
        options: ScoringOptions | None = None,
        on_commit: Callable[[ScoredBatch, float], None] | None = None,
    ) -> None:
        """Prepare the service; it connects to nothing until `run()`.

        Args:
            settings: Endpoints, topics, group, model name.
            options: How to run.
            on_commit: Called after each micro-batch's offsets are committed, with the scored
                batch and the commit time (epoch seconds); for benchmarks and tests.
        """
        self.settings = settings
        self.options = options or ScoringOptions()
        self.on_commit = on_commit
        self.metrics = ScoringMetrics()
        self.summary = RunSummary()
        self._stop = threading.Event()
        self._fatal: KafkaError | None = None
        self._assigned: set[int] = set()
        self._client_id = f"fraudpipe-scorer-{socket.gethostname()}-{os.getpid()}"

    def stop(self) -> None:
        """Ask the loop to finish the current micro-batch, commit and close (thread-safe)."""
        self._stop.set()

    def run(self) -> RunSummary:
        """Consume until stopped, `max_messages` or `idle_exit_s`.

        Returns:
            Counts of what was consumed, scored, inserted and dead-lettered.

        Raises:
            KafkaFatalError: The consumer or producer cannot continue.
            NoServingModelError: No model holds the serving alias.
        """
        opts, s = self.options, self.settings
        server: MetricsServer | None = None
        if opts.metrics_port:
            server = self.metrics.serve(opts.metrics_port, opts.metrics_addr)
            log.info("metrics endpoint up", port=server.port)
        client = registry_client(s)
        reference = RecordDecoder(s, client, s.topic_transactions)
        decoder: TransactionDecoder = (
            ColumnarDecoder(reference) if opts.decoder == "columnar" else reference
        )
        producer = ConfirmedProducer(producer_config(s, self._client_id), self._stop)
        run = _Run(
            service=self,
            decoder=decoder,
            models=ServingModelWatcher(s),
            sink=PredictionSink(s),
            producer=producer,
            dlq=DeadLetterPublisher(producer, s.topic_dlq),
            publisher=PredictionPublisher(s, client, producer),
            progress=BatchProgress(s, opts.progress_every_s),
        )
        consumer = Consumer({**consumer_config(s, self._client_id), "error_cb": self._on_error})
        try:
            consumer.subscribe(
                [s.topic_transactions], on_assign=self._on_assign, on_revoke=self._on_revoke
            )
            log.info("scorer started", topic=s.topic_transactions, group=s.consumer_group)
            run.loop(consumer)
        except StopRequested as stopped:
            self.summary.stopped_by = "stop during an outage (uncommitted work will be redone)"
            log.warning("stopped while waiting", step=str(stopped))
        finally:
            consumer.close()
            run.close()
            client.close()
            if server is not None:
                server.close()
            log.info("scorer stopped", **_summary_fields(self.summary))
        return self.summary

    def retry(self, action: Callable[[], T], what: str) -> T:
        """Run a step until it succeeds, waiting out outages (see `retry_until_done`)."""
        return retry_until_done(
            action,
            what=what,
            retry_on=RETRIABLE,
            stop=self._stop,
            backoff=self.options.backoff,
            on_failure=lambda exc: self.metrics.errors.labels(type(exc).__name__).inc(),
        )

    def raise_if_fatal(self) -> None:
        if self._fatal is not None:
            raise KafkaFatalError("consumer", str(self._fatal))

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def assigned_partitions(self) -> frozenset[int]:
        """Partitions of the transactions topic this member holds right now."""
        return frozenset(self._assigned)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = err
            return
        # Broker down, connection refused, ...: librdkafka reconnects by itself.
        self.metrics.errors.labels(f"kafka:{err.name()}").inc()
        log.warning("kafka consumer error", error=str(err))

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.summary.partitions.update(tp.partition for tp in partitions)
        self._assigned.update(tp.partition for tp in partitions)
        log.info("partitions assigned", partitions=sorted(tp.partition for tp in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Nothing to finish here: each micro-batch is committed before the next consume(),
        # and rebalance callbacks only run inside consume().
        self._assigned.difference_update(tp.partition for tp in partitions)
        log.info("partitions revoked", partitions=sorted(tp.partition for tp in partitions))


@dataclass
class _Run:
    """The components of one `run()` and the loop that drives them."""

    service: ScoringService
    decoder: TransactionDecoder
    models: ServingModelWatcher
    sink: PredictionSink
    producer: ConfirmedProducer
    dlq: DeadLetterPublisher
    publisher: PredictionPublisher
    progress: BatchProgress

    def loop(self, consumer: Consumer) -> None:
        svc, opts = self.service, self.service.options
        # Load the model before consuming, so a missing champion fails at start-up.
        model = svc.retry(self.models.model, "load the serving model")
        svc.metrics.model_version.set(model.version)
        housekeeping = [
            Periodic("scorer-model-watch", opts.model_poll_s, self.models.poll),
            Periodic("scorer-batch-progress", 1.0, self._close_finished_batches),
        ]
        for task in housekeeping:
            task.start()
        try:
            self._consume_until_done(consumer, housekeeping)
        finally:
            for task in housekeeping:
                task.stop()
        self._close_finished_batches(force=True)

    def _consume_until_done(self, consumer: Consumer, housekeeping: list[Periodic]) -> None:
        svc, opts, summary = self.service, self.service.options, self.service.summary
        last_message = time.monotonic()
        next_lag = 0.0
        idle_checked = True
        while not svc.stopping:
            for task in housekeeping:
                task.raise_if_failed()
            want = opts.batch_size
            if opts.max_messages is not None:
                want = min(want, opts.max_messages - summary.consumed)
                if want <= 0:
                    summary.stopped_by = "max messages"
                    return
            messages = take_micro_batch(consumer, want, opts.poll_timeout_s)
            svc.raise_if_fatal()
            now = time.monotonic()
            if now >= next_lag:
                next_lag = now + opts.lag_every_s
                self._sample_lag(consumer)
            if messages:
                last_message = now
                idle_checked = False
                self.process(consumer, messages)
                continue
            if not idle_checked:
                # The topic went quiet: a good moment to settle every pending batch.
                idle_checked = self._close_finished_batches(force=True)
            if opts.idle_exit_s is not None and now - last_message >= opts.idle_exit_s:
                summary.stopped_by = "idle"
                return
        summary.stopped_by = "stop requested"

    def process(self, consumer: Consumer, messages: Sequence[Message]) -> None:
        """Take one micro-batch all the way to committed offsets."""
        svc, metrics, summary = self.service, self.service.metrics, self.service.summary
        started = time.perf_counter()
        data = self._data_messages(messages)
        if summary.first_consumed_at is None:
            summary.first_consumed_at = time.monotonic()
        summary.consumed += len(data)
        metrics.consumed.inc(len(data))
        metrics.batch_size.observe(len(data))
        if not data:
            return
        offsets = next_offsets(data)

        decoded: Decoded = svc.retry(lambda: self.decoder.decode(data), "decode (schema registry)")
        model = svc.retry(self.models.model, "check the serving model")
        metrics.model_version.set(model.version)
        scoring_started = time.perf_counter()
        scored = score_batch(model, decoded.transactions, datetime.now(UTC))
        metrics.scoring_seconds.observe(time.perf_counter() - scoring_started)

        scored, dead = self._write(scored, decoded.dead_letters, data)
        alerts = svc.retry(lambda: self.publisher.publish(scored, model), "encode predictions")
        self.producer.confirm()
        svc.retry(lambda: commit_offsets(consumer, offsets), "commit offsets")

        committed_at = time.time()
        summary.last_committed_at = time.monotonic()
        if svc.on_commit is not None:
            svc.on_commit(scored, committed_at)
        done_ms = committed_at * 1000.0
        stamps = scored.transactions.record_timestamps_ms.astype(np.float64)
        latency_s = (done_ms - stamps) / 1000.0
        metrics.end_to_end_seconds.observe_many(latency_s)
        metrics.scored.inc(len(scored))
        metrics.batch_seconds.observe(time.perf_counter() - started)
        summary.scored += len(scored)
        summary.micro_batches += 1
        summary.model_versions.add(model.version)
        self.progress.touched(scored.transactions.batch_ids, model.version)
        log.debug(
            "micro-batch committed",
            messages=len(data),
            scored=len(scored),
            dead_letters=len(dead),
            alerts=alerts,
            model_version=model.version,
        )

    def close(self) -> None:
        self.producer.close()
        self.sink.close()

    def _data_messages(self, messages: Sequence[Message]) -> list[Message]:
        data: list[Message] = []
        for message in messages:
            err = message.error()
            if err is None:
                data.append(message)
            elif err.fatal():
                raise KafkaFatalError("consumer", str(err))
            elif err.code() != KafkaError._PARTITION_EOF:
                self.service.metrics.errors.labels(f"kafka:{err.name()}").inc()
                log.warning("consume error", error=str(err))
        return data

    def _write(
        self, scored: ScoredBatch, dead: list[DeadLetter], data: Sequence[Message]
    ) -> tuple[ScoredBatch, list[DeadLetter]]:
        """DLQ first, then the one database transaction; returns what was finally written."""
        svc, metrics, summary = self.service, self.service.metrics, self.service.summary
        sent = 0
        while True:
            if sent < len(dead):
                self.dlq.publish(dead[sent:])
                for letter in dead[sent:]:
                    metrics.dead_letters.labels(letter.error_type).inc()
                    log.warning(
                        "dead letter",
                        error_type=letter.error_type,
                        error=letter.error,
                        partition=letter.partition,
                        offset=letter.offset,
                    )
                summary.dead_letters += len(dead) - sent
                sent = len(dead)
            outcome = svc.retry(partial(self.sink.write, scored, dead), "write predictions")
            if outcome.committed:
                summary.inserted += outcome.inserted
                metrics.predictions_written.inc(outcome.inserted)
                return scored, dead
            # Transactions PostgreSQL does not know: dead-letter those, write the rest.
            unknown = _rows_matching(scored, outcome.unknown_ids)
            txs = scored.transactions
            for row in np.flatnonzero(unknown).tolist():
                message = data[int(txs.message_rows[row])]
                tx_id = str(uuid.UUID(bytes=bytes(txs.ids[row])))
                dead.append(dead_letter(message, UnknownTransactionError(tx_id)))
            scored = scored.select(~unknown)

    def _sample_lag(self, consumer: Consumer) -> None:
        try:
            lags = consumer_lag(consumer)
        except KafkaException as exc:
            log.debug("consumer lag not available", error=str(exc))
            return
        for (topic, partition), lag in lags.items():
            self.service.metrics.consumer_lag.labels(topic, str(partition)).set(lag)

    def _close_finished_batches(self, *, force: bool = False) -> bool:
        """Move finished batches to `scored`; False when PostgreSQL could not be asked."""
        try:
            moved = self.progress.close_finished(force=force)
        except ServiceUnavailableError as exc:
            self.service.metrics.errors.labels("ServiceUnavailableError").inc()
            log.warning("batch status check postponed", error=str(exc))
            return False
        self.service.summary.batches_scored.extend(moved)
        return True


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
    last: dict[tuple[str, int], int] = {}
    partitions = [m.partition() for m in messages]
    offsets = [m.offset() for m in messages]
    topics = [m.topic() for m in messages]
    for topic, partition, offset in zip(topics, partitions, offsets, strict=True):
        key = (topic or "", partition or 0)
        # Offsets rise within a partition, so the last seen is the largest; max() is a guard.
        last[key] = max(offset or 0, last.get(key, -1))
    return [TopicPartition(t, p, o + 1) for (t, p), o in sorted(last.items())]


def commit_offsets(consumer: Consumer, offsets: list[TopicPartition]) -> None:
    """Commit synchronously; a refusal because the partitions moved is logged, not raised.

    Raises:
        ServiceUnavailableError: The group coordinator cannot be reached (retry).
        KafkaFatalError: A fatal client error.
    """
    try:
        results = consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        _judge_commit_error(exc.args[0] if exc.args else None, offsets)
        return
    for tp in results:
        if tp.error is not None:
            _judge_commit_error(tp.error, [tp])


def _judge_commit_error(err: object, offsets: list[TopicPartition]) -> None:
    if not isinstance(err, KafkaError):
        raise ServiceUnavailableError("Kafka group coordinator", "commit", f"error {err!r}")
    if err.fatal():
        raise KafkaFatalError("consumer", str(err))
    if err.code() in _LOST_PARTITIONS:
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


def _rows_matching(scored: ScoredBatch, ids: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    wanted = {bytes(row) for row in ids}
    return np.array([bytes(row) in wanted for row in scored.transactions.ids], dtype=np.bool_)


def _summary_fields(summary: RunSummary) -> dict[str, object]:
    return {
        "consumed": summary.consumed,
        "scored": summary.scored,
        "inserted": summary.inserted,
        "dead_letters": summary.dead_letters,
        "micro_batches": summary.micro_batches,
        "batches_scored": summary.batches_scored,
        "stopped_by": summary.stopped_by,
        # time.monotonic() is system-wide on Linux: comparable across scorer processes.
        "first_consumed_monotonic": summary.first_consumed_at,
        "last_committed_monotonic": summary.last_committed_at,
    }


def stop_on_signals(service: ScoringService) -> None:
    """Make SIGTERM and SIGINT ask `service` to stop gracefully (call from the main thread)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("stop requested", signal=signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_scorer(
    settings: Settings, options: ScoringOptions, *, handle_signals: bool = True
) -> RunSummary:
    """Run one scorer until it stops (the entry points' one call).

    Args:
        settings: Endpoints, topics, group, model name.
        options: How to run.
        handle_signals: Install SIGTERM/SIGINT handlers (main thread only).

    Returns:
        What the run did.
    """
    service = ScoringService(settings, options)
    if handle_signals:
        stop_on_signals(service)
    return service.run()
