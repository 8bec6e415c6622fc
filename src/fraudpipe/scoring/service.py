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
import time
from collections.abc import Callable
from types import FrameType

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from fraudpipe.adapters.avro import registry_client
from fraudpipe.adapters.avro.decoding import ColumnarDecoder, RecordDecoder, TransactionDecoder
from fraudpipe.adapters.kafka.consumer import consumer_config
from fraudpipe.adapters.kafka.dlq import DeadLetterPublisher
from fraudpipe.adapters.kafka.lag import expired_before_consumed
from fraudpipe.adapters.kafka.offsets import OffsetCommitter
from fraudpipe.adapters.kafka.producer import ConfirmedProducer, producer_config
from fraudpipe.adapters.kafka.transactions import (
    TransactionalProducer,
    transactional_config,
    transactional_id,
)
from fraudpipe.adapters.mlflow.model_watch import ServingModelWatcher, ShadowModelWatcher
from fraudpipe.adapters.postgres.batch_progress import BatchProgress
from fraudpipe.adapters.postgres.model_refusals import record_refusal
from fraudpipe.adapters.postgres.prediction_sink import PredictionSink
from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError
from fraudpipe.microbatch import ScoredBatch
from fraudpipe.retry import StopRequested
from fraudpipe.scoring.health import serve as serve_health
from fraudpipe.scoring.metrics import MetricsServer, ScoringMetrics
from fraudpipe.scoring.outputs import PredictionPublisher
from fraudpipe.scoring.pipeline import OUTPUT_LANES, OutputLane, ScoringPipeline
from fraudpipe.scoring.runtime import RunSummary, ScorerRuntime, ScoringOptions

log = structlog.get_logger(__name__)


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
        self.runtime = ScorerRuntime(options or ScoringOptions(), on_commit=on_commit)
        self._held: set[tuple[str, int]] = set()
        """(topic, partition) this member holds, kept by the rebalance callbacks; the
        pipeline reads the same set."""
        self._pipeline: ScoringPipeline | None = None
        self._committer: OffsetCommitter | None = None
        self._client_id = f"fraudpipe-scorer-{socket.gethostname()}-{os.getpid()}"
        self._started_at = time.monotonic()

    @property
    def options(self) -> ScoringOptions:
        return self.runtime.options

    @property
    def metrics(self) -> ScoringMetrics:
        return self.runtime.metrics

    @property
    def summary(self) -> RunSummary:
        return self.runtime.summary

    def stop(self) -> None:
        """Ask the loop to finish the current micro-batch, commit and close (thread-safe)."""
        self.runtime.stop()

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
        health = self.runtime.health
        health.holds_partitions = lambda: bool(self._held)
        health.beat()
        self.metrics.last_commit_age_seconds.set_function(self._last_commit_age)
        if opts.metrics_port:
            server = serve_health(health, opts.metrics_port, opts.metrics_addr)
            log.info("metrics and health endpoints up", port=server.port, addr=opts.metrics_addr)
        client = registry_client(s)
        reference = RecordDecoder(s, client, s.topic_transactions)
        decoder: TransactionDecoder = (
            ColumnarDecoder(reference) if opts.decoder == "columnar" else reference
        )
        stop = self.runtime.stop_event
        producer: ConfirmedProducer | None = None
        publisher: PredictionPublisher | None = None
        dlq: DeadLetterPublisher | None = None
        lanes: list[OutputLane] = []
        if s.scorer_exactly_once:
            for lane in range(OUTPUT_LANES):
                client_id = f"{self._client_id}-{lane}"
                config = transactional_config(s, client_id, transactional_id(s))
                transactions = TransactionalProducer(config, stop, self.runtime.health, str(lane))
                lanes.append(OutputLane(transactions, PredictionPublisher(s, client, transactions)))
        else:
            # Two producers: the write and publish stages confirm their messages independently.
            producer = ConfirmedProducer(producer_config(s, self._client_id), stop)
            publisher = PredictionPublisher(s, client, producer)
            dlq_producer = ConfirmedProducer(producer_config(s, f"{self._client_id}-dlq"), stop)
            dlq = DeadLetterPublisher(dlq_producer, s.topic_dlq)
        consumer = Consumer(
            {
                **consumer_config(s, self._client_id),
                "error_cb": self._on_error,
                "on_commit": self._on_commit_result,
            }
        )
        self._committer = OffsetCommitter(consumer)
        pipeline = ScoringPipeline(
            runtime=self.runtime,
            consumer=consumer,
            decoder=decoder,
            models=ServingModelWatcher(s, on_refusal=self._on_model_refusal),
            shadows=ShadowModelWatcher(s, self._on_model_refusal) if s.shadow_alias else None,
            sinks=[PredictionSink(s) for _ in range(opts.writers)],
            producer=producer,
            publisher=publisher,
            dlq=dlq,
            lanes=lanes,
            dlq_topic=s.topic_dlq,
            progress=BatchProgress(s, opts.progress_every_s),
            committer=self._committer,
            held=self._held,
        )
        self._pipeline = pipeline
        try:
            consumer.subscribe(
                [s.topic_transactions],
                on_assign=self._on_assign,
                on_revoke=self._on_revoke,
                on_lost=self._on_lost,
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

    def _last_commit_age(self) -> float:
        since = self.summary.last_committed_at or self._started_at
        return time.monotonic() - since

    @property
    def next_model_version(self) -> int | None:
        """The model version the next micro-batch will be scored with (None before start-up)."""
        return None if self._pipeline is None else self._pipeline.models.next_version

    @property
    def assigned_partitions(self) -> frozenset[int]:
        """Partitions of the transactions topic this member holds right now."""
        return frozenset(partition for _, partition in self._held)

    def _on_model_refusal(self, version: int, reason: str) -> None:
        """A model version failed verification: count it and record it for the dashboard."""
        self.metrics.model_refusals.labels(str(version)).inc()
        try:
            record_refusal(self.settings, version, reason, self._client_id)
        except ServiceUnavailableError as exc:
            log.warning("model refusal not recorded in PostgreSQL", version=version, error=str(exc))

    def _on_error(self, err: KafkaError) -> None:
        # librdkafka retries a refused login for ever: the scorer stops with the reason.
        if err.fatal() or err.code() == KafkaError._AUTHENTICATION:
            self.runtime.fail(err, self.settings.kafka_scorer_user)
            return
        # Broker down, connection refused, ...: librdkafka reconnects by itself.
        self.metrics.errors.labels(f"kafka:{err.name()}").inc()
        log.warning("kafka consumer error", error=str(err))

    def _on_commit_result(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if self._committer is not None:
            self._committer.on_commit(err, partitions)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._held.update((tp.topic, tp.partition) for tp in partitions)
        self.summary.partitions.update(tp.partition for tp in partitions)
        self._check_retention(consumer, partitions)
        log.info("partitions assigned", partitions=sorted(tp.partition for tp in partitions))

    def _check_retention(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Say it loudly when retention deleted records this group never scored."""
        try:
            lost = expired_before_consumed(consumer, partitions)
        except KafkaException as exc:
            log.warning("retention check postponed", error=str(exc))
            return
        for (topic, partition), count in lost.items():
            self.metrics.expired_unscored.labels(topic, str(partition)).inc(count)
            self.summary.expired_unscored += count
            log.error(
                "records expired before they were scored",
                topic=topic,
                partition=partition,
                records=count,
                hint="resend their batches: fraudpipe publish --resend --batch-id BATCH",
            )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Micro-batches of these partitions may still be in the commit stage: let them commit
        # before the partitions go, so the next owner starts after them (no re-scoring).
        if self._pipeline is not None:
            self._pipeline.wait_for_commits([(tp.topic, tp.partition) for tp in partitions])
        self._held.difference_update((tp.topic, tp.partition) for tp in partitions)
        log.info("partitions revoked", partitions=sorted(tp.partition for tp in partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The group gave these partitions away already (this member was too slow, or cut
        # off): their micro-batches in the stages cannot commit and are dropped; the new
        # owner reads them again.
        lost = [(tp.topic, tp.partition) for tp in partitions]
        self._held.difference_update(lost)
        if self._pipeline is not None:
            self._pipeline.wait_for_commits(lost)
        log.warning("partitions lost", partitions=sorted(tp.partition for tp in partitions))


def _summary_fields(summary: RunSummary) -> dict[str, object]:
    return {
        "consumed": summary.consumed,
        "scored": summary.scored,
        "inserted": summary.inserted,
        "dead_letters": summary.dead_letters,
        "expired_unscored": summary.expired_unscored,
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
