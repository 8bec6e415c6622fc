"""The scoring service: one member of the scoring consumer group, from start to stop.

`ScoringService.run()` builds the pipeline's adapters (registry, decoder, model watcher,
PostgreSQL sink, producer), subscribes with cooperative rebalancing and runs the micro-batch
pipeline (`pipeline`) until stopped, `max_messages` or `idle_exit_s`. SIGTERM/SIGINT (see
`stop_on_signals`) finish the current micro-batches, commit them and close; a stop during an
outage closes without committing (nothing is lost: the work is redone after the restart).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Literal, TypeVar

import structlog
from confluent_kafka import Consumer, KafkaError, TopicPartition
from psycopg import errors as pg_errors

from fraudpipe.config import Settings
from fraudpipe.contracts import registry_client
from fraudpipe.errors import KafkaFatalError, SchemaRegistryRequestError, ServiceUnavailableError
from fraudpipe.scoring.batch import ScoredBatch
from fraudpipe.scoring.batch_progress import BatchProgress
from fraudpipe.scoring.decoding import ColumnarDecoder, RecordDecoder, TransactionDecoder
from fraudpipe.scoring.delivery import ConfirmedProducer, producer_config
from fraudpipe.scoring.dlq import DeadLetterPublisher
from fraudpipe.scoring.metrics import MetricsServer, ScoringMetrics
from fraudpipe.scoring.model_watch import ServingModelWatcher
from fraudpipe.scoring.offsets import OffsetCommitter
from fraudpipe.scoring.outputs import PredictionPublisher
from fraudpipe.scoring.pipeline import ScoringPipeline
from fraudpipe.scoring.retry import Backoff, StopRequested, retry_until_done
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


@dataclass(frozen=True)
class ScoringOptions:
    """How the scorer runs (the endpoints come from `Settings`).

    Attributes:
        batch_size: Most messages per micro-batch (`consume(num_messages=...)`).
        poll_timeout_s: Longest wait for the first message of a micro-batch.
        max_messages: Stop after this many messages (None: run until stopped).
        idle_exit_s: Stop after this long without a message (None: never).
        model_poll_s: How often to ask MLflow whether the serving alias moved.
        lag_every_s: How often to sample consumer lag.
        progress_every_s: How often, per batch, to check whether it is fully scored.
        metrics_port: Prometheus endpoint port; 0 disables the endpoint.
        metrics_addr: Address the endpoint binds to.
        decoder: ``columnar`` (fast path) or ``record`` (`AvroDeserializer` per message).
        backoff: Retry delays during outages.
        writers: Micro-batches written to PostgreSQL at once (one connection each).
        gil_switch_s: The interpreter's thread switch interval while the service runs (None:
            leave it). The write and publish stages wait on PostgreSQL and the broker without
            the GIL; when their answer comes while the consume loop decodes, the default 5 ms
            interval is how long each of them waits to run again, several times a micro-batch.
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
    writers: int = 2
    gil_switch_s: float | None = 0.001


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
        # A scorer that crashed hands its partitions over after this long (heartbeats come from
        # librdkafka's own thread, so a busy micro-batch does not count as silence).
        "session.timeout.ms": 10_000,
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
        self._pipeline: ScoringPipeline | None = None
        self._committer: OffsetCommitter | None = None
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
        switch_interval = sys.getswitchinterval()
        if self.options.gil_switch_s is not None:
            sys.setswitchinterval(self.options.gil_switch_s)
        try:
            return self._run()
        finally:
            sys.setswitchinterval(switch_interval)

    def _run(self) -> RunSummary:
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
        # Two producers: the write and publish stages confirm their messages independently.
        producer = ConfirmedProducer(producer_config(s, self._client_id), self._stop)
        dlq_producer = ConfirmedProducer(producer_config(s, f"{self._client_id}-dlq"), self._stop)
        consumer = Consumer(
            {
                **consumer_config(s, self._client_id),
                "error_cb": self._on_error,
                "on_commit": self._on_commit_result,
            }
        )
        self._committer = OffsetCommitter(consumer)
        pipeline = ScoringPipeline(
            service=self,
            consumer=consumer,
            decoder=decoder,
            models=ServingModelWatcher(s),
            sinks=[PredictionSink(s) for _ in range(opts.writers)],
            producer=producer,
            dlq=DeadLetterPublisher(dlq_producer, s.topic_dlq),
            publisher=PredictionPublisher(s, client, producer),
            progress=BatchProgress(s, opts.progress_every_s),
            committer=self._committer,
        )
        self._pipeline = pipeline
        try:
            consumer.subscribe(
                [s.topic_transactions], on_assign=self._on_assign, on_revoke=self._on_revoke
            )
            log.info("scorer started", topic=s.topic_transactions, group=s.consumer_group)
            pipeline.run()
        except StopRequested as stopped:
            self.summary.stopped_by = "stop during an outage (uncommitted work will be redone)"
            log.warning("stopped while waiting", step=str(stopped))
        finally:
            consumer.close()
            pipeline.close()
            self._pipeline = None
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
    def stop_event(self) -> threading.Event:
        return self._stop

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

    def _on_commit_result(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if self._committer is not None:
            self._committer.on_commit(err, partitions)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.summary.partitions.update(tp.partition for tp in partitions)
        self._assigned.update(tp.partition for tp in partitions)
        log.info("partitions assigned", partitions=sorted(tp.partition for tp in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Micro-batches of these partitions may still be in the commit stage: let them commit
        # before the partitions go, so the next owner starts after them (no re-scoring).
        if self._pipeline is not None:
            self._pipeline.wait_for_commits([(tp.topic, tp.partition) for tp in partitions])
        self._assigned.difference_update(tp.partition for tp in partitions)
        log.info("partitions revoked", partitions=sorted(tp.partition for tp in partitions))


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
