"""One scorer's micro-batch pipeline: consume → decode → score | write | publish → commit.

Stages in threads of their own (`commit_stage`): the consume loop decodes and scores; write
stages (``writers`` of them, each with its own PostgreSQL connection) write micro-batches, two
at once by default, since the idempotent insert is the slowest step and PostgreSQL runs it on
another core; the publish stage takes the written micro-batches in consumption order, produces
their outputs and records their offsets for the consume loop to commit. So the database writes
overlap the scoring of the next micro-batch and the publishing of the previous (psycopg and
librdkafka wait without holding the GIL).

With output transactions the publish stage is `OUTPUT_LANES` lanes, each with a transactional
producer of its own, taking micro-batches in turn: one lane produces micro-batch k+1's
records into its transaction while the other commits micro-batch k; the offsets join k+1's
transaction, and it commits, only once k has committed (`stages.Turn`). Offsets sent earlier
would be lost: of two transactional commits of a partition's offset, the group coordinator
keeps the one it appended last, so k's retried or late offsets would overwrite k+1's (the
broker logs "Skipped the materialization of transactional offset commit"). One producer cannot
overlap them: its next transaction waits for the previous one's commit, and then for the
coordinator to finish writing that commit's markers (it answers ``CONCURRENT_TRANSACTIONS``
until then). Back-to-back transactions of 20 records with their offsets, on this machine: one
producer 73-80 per second (p50 13 ms each), two alternating 158-169 per second (p50 5.6 ms).

Per micro-batch, with output transactions (`Settings.scorer_exactly_once`, the default), the
stages keep the order that makes predictions, alerts and dead letters exactly-once, in
PostgreSQL and for ``read_committed`` readers of the topics:

1. ONE PostgreSQL transaction: predictions (idempotent on ``(transaction_id, model_version)``)
   and `dead_letters` rows (idempotent on ``(topic, partition, offset)``);
2. ONE Kafka transaction, in consumption order (`adapters.kafka.transactions`): the
   `Prediction`s, `Alert`s and dead letters, and the consumed offsets (+1 per partition) with
   the group's generation.

A crash between 1 and 2 leaves the offsets where they were and the Kafka transaction open, then
aborted: the micro-batch is read again, step 1 inserts nothing new and returns what it holds
(`WriteOutcome.stored`), and step 2 publishes those same records, with the scoring times
PostgreSQL stored. Without output transactions: dead letters go to the DLQ topic, acknowledged,
before step 1; the outputs are produced and acknowledged after it; then the offsets are
recorded and committed by the consume loop at its next turn (`OffsetCommitter`), so a crash
between them publishes a micro-batch's outputs twice (at least once).

Two writes in flight may commit in either order; offsets still move only in consumption order,
after every earlier micro-batch is written and published. Outages are waited out at the step
they hit (`retry`).
"""

from __future__ import annotations

import gc
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

import numpy as np
import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from fraudpipe.adapters.avro.decoding import Decoded, TransactionDecoder, dead_letter
from fraudpipe.adapters.kafka.consumer import data_messages
from fraudpipe.adapters.kafka.dlq import DeadLetterPublisher, queue_dead_letters
from fraudpipe.adapters.kafka.lag import consumer_lag
from fraudpipe.adapters.kafka.offsets import (
    OffsetCommitter,
    committed_offsets,
    next_offsets,
    take_micro_batch,
)
from fraudpipe.adapters.kafka.producer import ConfirmedProducer
from fraudpipe.adapters.kafka.transactions import TransactionalProducer
from fraudpipe.adapters.mlflow.model_watch import ServingModelWatcher, ShadowModelWatcher
from fraudpipe.adapters.postgres.batch_progress import BatchProgress
from fraudpipe.adapters.postgres.prediction_sink import PredictionSink
from fraudpipe.errors import (
    ContentConflictError,
    InvalidScoreError,
    PartitionsLostError,
    PoisonMessageError,
    RefusedMessage,
    ServiceUnavailableError,
    UnknownTransactionError,
)
from fraudpipe.microbatch import AlertReasons, DeadLetter, ScoredBatch, TransactionBatch
from fraudpipe.model.serving import ServingModel
from fraudpipe.scoring.outputs import PredictionPublisher
from fraudpipe.scoring.periodic import Periodic
from fraudpipe.scoring.runtime import ScorerRuntime
from fraudpipe.scoring.score import explain_alerts, score_batch, valid_scores
from fraudpipe.scoring.stages import Stages, Turn

log = structlog.get_logger(__name__)

#: Transactional producers of a scorer with output transactions (see the module's docstring).
OUTPUT_LANES = 2


@dataclass(frozen=True)
class Prepared:
    """A micro-batch decoded and scored, waiting for the commit stage."""

    messages: list[Message]
    offsets: list[TopicPartition]
    scored: ScoredBatch
    dead_letters: list[DeadLetter]
    model: ServingModel
    reasons: AlertReasons
    """The alerts' drivers, worked out before the write: nothing can fail on them after it."""
    started: float
    shadow: ScoredBatch | None = None
    """The challenger's scores of the same transactions, in shadow (`shadow_predictions`)."""


@dataclass(frozen=True)
class Written:
    """A micro-batch durable in PostgreSQL, waiting for the publish stage."""

    prepared: Prepared
    scored: ScoredBatch
    dead_letters: list[DeadLetter]


@dataclass(frozen=True)
class OutputLane:
    """One transactional producer and the publisher that fills its transactions."""

    transactions: TransactionalProducer
    publisher: PredictionPublisher


@dataclass
class ScoringPipeline:
    """The components of one scorer run and the loop that drives them."""

    runtime: ScorerRuntime
    consumer: Consumer
    decoder: TransactionDecoder
    models: ServingModelWatcher
    shadows: ShadowModelWatcher | None
    """The challenger scoring in shadow, if a shadow alias is set."""
    sinks: list[PredictionSink]
    """One per write stage (each its own connection)."""
    producer: ConfirmedProducer | None
    """Carries the predictions and alerts without transactions (the DLQ publisher has a
    producer of its own)."""
    publisher: PredictionPublisher | None
    """Without transactions: queues the predictions and alerts on `producer`."""
    dlq: DeadLetterPublisher | None
    """Without transactions: sends a micro-batch's dead letters before its database write."""
    lanes: list[OutputLane]
    """With transactions: each micro-batch's outputs, dead letters and offsets, after its
    database write (`publish`), in turn on each lane; empty without transactions."""
    dlq_topic: str
    progress: BatchProgress
    committer: OffsetCommitter
    held: set[tuple[str, int]] = field(default_factory=set)
    """Partitions this member holds (kept by the service's rebalance callbacks)."""

    def run(self) -> None:
        """Consume until stopped, `max_messages` or `idle_exit_s`; finish what was consumed."""
        rt, opts = self.runtime, self.runtime.options
        # Load the model before consuming, so a missing champion fails at start-up.
        model = rt.retry(self.models.model, "load the serving model")
        rt.metrics.model_version.set(model.version)
        rt.health.model_ready = True  # loaded only once verified (`ServingModelWatcher`)
        if self.shadows is not None:
            self.shadows.poll()  # the challenger shadows from the first micro-batch
        # Connections and registry look-ups now, not while the first messages wait.
        for publisher in self._publishers():
            rt.retry(publisher.warm_up, "look up the output contracts")
        for lane in self.lanes:
            lane.transactions.start()
        for sink in self.sinks:
            rt.retry(sink.connect, "connect to PostgreSQL")
        # What start-up built (the model, sklearn, pandas, MLflow: hundreds of thousands of
        # objects) lives as long as the process: out of the collector's sight, a full
        # collection no longer walks it in the middle of a micro-batch.
        gc.collect()
        gc.freeze()
        self._counts = threading.Lock()
        self._dlq_lock = threading.Lock()
        self._aborted_seen = 0
        self._group_metadata: object = None
        self._group_taken_at = 0.0
        self._refresh_group()
        self._rewind = threading.Event()
        publishers = [partial(self.publish, lane) for lane in self.lanes] or [
            partial(self.publish, None)
        ]
        self.stage = Stages([partial(self.write, sink) for sink in self.sinks], publishers)
        housekeeping = [
            Periodic("scorer-model-watch", opts.model_poll_s, self._poll_models),
            Periodic("scorer-batch-progress", 1.0, self.close_finished_batches),
        ]
        for task in housekeeping:
            task.start()
        try:
            self._consume_until_done(housekeeping)
            self.stage.drain(self._alive)
            rt.retry(self.committer.commit_now, "commit offsets")
        except BaseException:
            # Ends any outage wait in the stages, so closing them cannot hang; whatever they
            # had not committed is consumed again after the restart.
            rt.stop()
            raise
        finally:
            self.stage.close()
            for task in housekeeping:
                task.stop()
        self.close_finished_batches(force=True)

    def wait_for_commits(self, partitions: list[tuple[str, int]]) -> None:
        """Before `partitions` are revoked: finish every micro-batch in the stages and commit
        their offsets synchronously, so the next owner starts after them."""
        stage = getattr(self, "stage", None)
        if stage is not None:
            if self.lanes:
                self._refresh_group()  # the rebalance gave this member a new generation
            stage.drain(self._alive)
        self.runtime.retry(partial(self.committer.commit_now, partitions), "commit offsets")
        self.committer.forget(partitions)

    def _consume_until_done(self, housekeeping: list[Periodic]) -> None:
        rt, opts, summary = self.runtime, self.runtime.options, self.runtime.summary
        last_message = time.monotonic()
        next_lag = 0.0
        idle_checked = True
        consumed = 0
        while not rt.stopping:
            rt.health.beat()
            self.stage.raise_if_failed()
            self.committer.raise_if_fatal()
            for task in housekeeping:
                task.raise_if_failed()
            want = opts.batch_size
            if opts.max_messages is not None:
                want = min(want, opts.max_messages - consumed)
                if want <= 0:
                    summary.stopped_by = "max messages"
                    return
            # Take the next micro-batch only once the write stage can accept it: meanwhile the
            # messages wait in the client's queue and join that micro-batch, instead of each
            # forming a small one that queues behind the others with its own fixed costs.
            self.stage.wait_for_room(rt.stop_event, self._alive)
            had_partitions = bool(self.held)
            messages = take_micro_batch(self.consumer, want, opts.poll_timeout_s)
            rt.raise_if_fatal()
            if self.lanes:
                self._refresh_group()
                if self._rewind.is_set():
                    self._rewind_to_committed()
                    continue
            self.committer.send()
            now = time.monotonic()
            if now >= next_lag:
                next_lag = now + opts.lag_every_s
                self._sample_lag()
            if messages:
                last_message = now
                idle_checked = False
                consumed += len(messages)
                prepared = self.prepare(messages)
                if prepared is not None:
                    self.stage.submit(prepared)
                continue
            if not idle_checked:
                # The topic went quiet: a good moment to settle every pending batch.
                self.stage.drain(self._alive)
                rt.retry(self.committer.commit_now, "commit offsets")
                idle_checked = self.close_finished_batches(force=True)
            if not (had_partitions and self.held):
                # Idle means a quiet topic, not a wait for partitions (a rebalance, a crashed
                # member's session still running out, served inside the last `consume()`).
                last_message = now
            if opts.idle_exit_s is not None and now - last_message >= opts.idle_exit_s:
                summary.stopped_by = "idle"
                return
        summary.stopped_by = "stop requested"

    def prepare(self, messages: Sequence[Message]) -> Prepared | None:
        """Decode and score a micro-batch (the consume loop's half)."""
        rt, metrics, summary = self.runtime, self.runtime.metrics, self.runtime.summary
        started = time.perf_counter()
        data = self._data_messages(messages)
        if summary.first_consumed_at is None:
            summary.first_consumed_at = time.monotonic()
        summary.consumed += len(data)
        metrics.consumed.inc(len(data))
        metrics.batch_size.observe(len(data))
        if not data:
            return None
        decode_started = time.perf_counter()
        decoded: Decoded = rt.retry(partial(self.decoder.decode, data), "decode (registry)")
        metrics.stage_seconds.labels("decode").observe(time.perf_counter() - decode_started)
        model = self.models.model()
        metrics.model_version.set(model.version)
        scoring_started = time.perf_counter()
        try:
            scored = score_batch(model, decoded.transactions, datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001  # a model is untrusted code: refuse it, go on
            model = self.models.refuse(model, f"it raised while scoring ({exc!r})")
            metrics.model_version.set(model.version)
            scored = score_batch(model, decoded.transactions, datetime.now(UTC))
        dead = list(decoded.dead_letters)
        scored = self._set_aside_invalid_scores(scored, model, data, dead)
        reasons = explain_alerts(model, scored)
        scoring_took = time.perf_counter() - scoring_started
        metrics.scoring_seconds.observe(scoring_took)
        metrics.stage_seconds.labels("score").observe(scoring_took)
        shadow = self._shadow_scores(scored, model)
        return Prepared(data, next_offsets(data), scored, dead, model, reasons, started, shadow)

    def _shadow_scores(self, scored: ScoredBatch, champion: ServingModel) -> ScoredBatch | None:
        """The challenger's scores of the micro-batch's rows, or None (no shadow, or it failed).

        A shadow is untrusted code too, and only advisory: whatever it raises or answers that
        is not a probability costs that micro-batch its shadow scores, never its predictions.
        """
        shadow = self.shadows.model() if self.shadows is not None else None
        if shadow is None or shadow.version == champion.version or not len(scored):
            return None
        started = time.perf_counter()
        try:
            shadowed = score_batch(shadow, scored.transactions, scored.scored_at)
        except Exception as exc:  # noqa: BLE001  # see the docstring
            self.runtime.metrics.errors.labels("ShadowScoringError").inc()
            log.warning("shadow model raised", version=shadow.version, error=repr(exc))
            return None
        self.runtime.metrics.stage_seconds.labels("shadow").observe(time.perf_counter() - started)
        ok = valid_scores(shadowed)
        return shadowed if ok.all() else shadowed.select(ok)

    def _set_aside_invalid_scores(
        self,
        scored: ScoredBatch,
        model: ServingModel,
        data: Sequence[Message],
        dead: list[DeadLetter],
    ) -> ScoredBatch:
        """Rows the model did not score as a probability become dead letters, not predictions."""
        ok = valid_scores(scored)
        if ok.all():
            return scored
        txs = scored.transactions
        for row in np.flatnonzero(~ok).tolist():
            tx_id = str(uuid.UUID(bytes=bytes(txs.ids[row])))
            error = InvalidScoreError(tx_id, f"{model.name} v{model.version}", scored.scores[row])
            dead.append(dead_letter(data[int(txs.message_rows[row])], error))
        log.error(
            "model answered non-probabilities", model_version=model.version, rows=int((~ok).sum())
        )
        return scored.select(ok)

    def _poll_models(self) -> None:
        self.models.poll()
        if self.shadows is not None:
            self.shadows.poll()

    def write(self, sink: PredictionSink, batch: Prepared) -> Written:
        """Dead letters, then the micro-batch's database transaction (a write stage)."""
        started = time.perf_counter()
        scored, dead = self._write(sink, batch, batch.dead_letters)
        self.runtime.metrics.stage_seconds.labels("write").observe(time.perf_counter() - started)
        return Written(batch, scored, dead)

    def publish(self, lane: OutputLane | None, written: Written, turn: Turn) -> None:
        """Outputs and offsets: one Kafka transaction on `lane`, or acknowledged outputs then
        the offsets (a publish lane)."""
        rt, metrics = self.runtime, self.runtime.metrics
        batch, scored = written.prepared, written.scored
        started = time.perf_counter()
        if lane is not None:
            if self._rewind.is_set():
                return  # behind a fenced micro-batch: read again after the rewind
            filled: list[float] = []
            turned: list[float] = []
            try:
                rt.retry(
                    partial(
                        lane.transactions.commit,
                        partial(self._fill, lane, written, filled),
                        batch.offsets,
                        self._latest_group,
                        self._owns,
                        partial(self._my_turn, turn, turned),
                    ),
                    "commit the outputs' transaction",
                )
            except PartitionsLostError as lost:
                # Aborted: this micro-batch, and every one behind it, is read again from the
                # committed offsets, by the partitions' new owner or by this member.
                metrics.errors.labels("PartitionsLostError").inc()
                log.warning("output transaction not committed", reason=str(lost))
                self._rewind.set()
                return
            alerts = int(scored.is_fraud.sum())
            aborted = sum(other.transactions.aborted for other in self.lanes)
            metrics.transactions_aborted.inc(aborted - self._aborted_seen)
            self._aborted_seen = aborted
            # Records produced (the last attempt's fill), the wait for the micro-batch before
            # it to commit, then the offsets and the commit.
            published, committed = filled[-1], time.perf_counter()
            metrics.stage_seconds.labels("turn").observe(turned[-1] - published)
            commit_from = turned[-1]
        else:
            assert self.producer is not None and self.publisher is not None
            alerts = rt.retry(
                partial(self.publisher.publish, scored, batch.reasons), "encode predictions"
            )
            self.producer.confirm()
            published = time.perf_counter()
            self.committer.advance(batch.offsets)
            commit_from = published
            committed = time.perf_counter()
        metrics.stage_seconds.labels("publish").observe(published - started)
        metrics.stage_seconds.labels("commit").observe(committed - commit_from)
        self._committed(written, alerts)

    def _fill(
        self,
        lane: OutputLane,
        written: Written,
        filled: list[float],
        refused: Sequence[RefusedMessage],
    ) -> None:
        """The records of one attempt of a micro-batch's transaction."""
        lane.publisher.publish(written.scored, written.prepared.reasons)
        queue_dead_letters(lane.transactions, self.dlq_topic, written.dead_letters, refused)
        if self.runtime.options.fault is not None:
            self.runtime.options.fault("outputs-produced")
        filled.append(time.perf_counter())

    def _my_turn(self, turn: Turn, turned: list[float]) -> bool:
        """Whether the micro-batch may commit now: every one before it committed, and no
        rewind is pending (waits for the one before it; notes when the wait ended)."""
        ok = turn.wait(self.runtime.stop_event) and not self._rewind.is_set()
        turned.append(time.perf_counter())
        return ok

    def _publishers(self) -> list[PredictionPublisher]:
        if self.publisher is not None:
            return [self.publisher]
        return [lane.publisher for lane in self.lanes]

    def _rewind_to_committed(self) -> None:
        """After a fenced transaction: drop what is in flight and go back to the committed
        offsets of the partitions still held (the consume loop's thread)."""
        self.stage.drain(self._alive)
        held = self.consumer.assignment()
        committed = self.runtime.retry(
            partial(committed_offsets, self.consumer, held), "read the committed offsets"
        )
        for tp in committed:
            start = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, start))
        log.warning("rewound to the committed offsets", partitions=len(committed))
        self._rewind.clear()

    def _refresh_group(self) -> None:
        """Take the group's metadata (member id, generation) for the publish stage's commits.

        Asked on the consume loop's thread only (each turn, while it waits for room, and before
        partitions are revoked): confluent-kafka serialises calls on a consumer, so the publish
        stage asking would wait for `consume()` to return, and inside a rebalance callback
        `consume()` waits for the publish stage. A rebalance moves the generation; a commit
        with the old one is aborted and retried with the new one.
        """
        self._group_metadata = self.consumer.consumer_group_metadata()
        self._group_taken_at = time.monotonic()

    def _alive(self) -> None:
        """The consume loop, waiting for the stages: still alive, and the group still fresh."""
        self.runtime.health.beat()
        if self.lanes and time.monotonic() - self._group_taken_at > 0.1:
            self._refresh_group()

    def _latest_group(self) -> object:
        return self._group_metadata

    def _owns(self, offsets: list[TopicPartition]) -> bool:
        """Whether this member still holds every partition of `offsets`."""
        return all((tp.topic, tp.partition) in self.held for tp in offsets)

    def _committed(self, written: Written, alerts: int) -> None:
        """Counts, metrics and the commit hook of a micro-batch whose offsets are committed."""
        rt, metrics, summary = self.runtime, self.runtime.metrics, self.runtime.summary
        batch, scored, dead = written.prepared, written.scored, written.dead_letters
        committed_at = time.time()
        summary.last_committed_at = time.monotonic()
        if rt.on_commit is not None:
            rt.on_commit(scored, committed_at)
        stamps = scored.transactions.record_timestamps_ms.astype(np.float64)
        metrics.end_to_end_seconds.observe_many(committed_at - stamps / 1000.0)
        if len(stamps):
            metrics.consumer_lag_seconds.set(max(0.0, committed_at - float(stamps.max()) / 1000))
        metrics.scored.inc(len(scored))
        metrics.batch_seconds.observe(time.perf_counter() - batch.started)
        summary.scored += len(scored)
        summary.micro_batches += 1
        summary.model_versions.add(scored.model_version)
        self.progress.touched(scored.transactions.batch_ids)
        log.debug(
            "micro-batch committed",
            messages=len(batch.messages),
            scored=len(scored),
            dead_letters=len(dead),
            alerts=alerts,
            model_version=scored.model_version,
        )

    def close(self) -> None:
        for client in (self.producer, self.dlq, *(lane.transactions for lane in self.lanes)):
            if client is not None:
                client.close()
        for sink in self.sinks:
            sink.close()

    def _data_messages(self, messages: Sequence[Message]) -> list[Message]:
        return data_messages(messages, "the scorer", self._consume_error)

    def _consume_error(self, error: KafkaError) -> None:
        self.runtime.metrics.errors.labels(f"kafka:{error.name()}").inc()
        log.warning("consume error", error=str(error))

    def _write(
        self, sink: PredictionSink, batch: Prepared, dead: list[DeadLetter]
    ) -> tuple[ScoredBatch, list[DeadLetter]]:
        """DLQ first, then the one database transaction; returns what was finally written."""
        scored, data = batch.scored, batch.messages
        rt, metrics, summary = self.runtime, self.runtime.metrics, self.runtime.summary
        sent = 0
        while True:
            if sent < len(dead):
                if self.dlq is not None:  # else they join the outputs' transaction
                    with self._dlq_lock:  # one producer's confirm() at a time
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
                with self._counts:
                    summary.dead_letters += len(dead) - sent
                sent = len(dead)
            outcome = rt.retry(
                partial(sink.write, scored, dead, batch.reasons, batch.shadow),
                "write predictions",
            )
            if outcome.committed:
                with self._counts:
                    summary.inserted += outcome.inserted
                metrics.predictions_written.inc(outcome.inserted)
                if outcome.stored is not None:  # a redelivery: publish what PostgreSQL holds
                    v = outcome.stored
                    scored = scored.with_stored(v.scores, v.is_fraud, v.scored_at_ms)
                return scored, dead
            # Transactions PostgreSQL does not know, or knows with other content: dead-letter
            # those messages, write the rest.
            txs = scored.transactions
            refused = np.zeros(len(scored), dtype=np.bool_)
            for rows, unknown in ((outcome.unknown_rows, True), (outcome.conflicting_rows, False)):
                for row in rows.tolist():
                    error = _refusal(txs, row, unknown=unknown)
                    dead.append(dead_letter(data[txs.message_rows[row]], error))
                    refused[row] = True
            scored = scored.select(~refused)

    def _sample_lag(self) -> None:
        try:
            lags = consumer_lag(self.consumer)
        except KafkaException as exc:
            log.debug("consumer lag not available", error=str(exc))
            return
        for (topic, partition), lag in lags.items():
            self.runtime.metrics.consumer_lag.labels(topic, str(partition)).set(lag)

    def close_finished_batches(self, *, force: bool = False) -> bool:
        """Move finished batches to `scored`; False when PostgreSQL could not be asked."""
        try:
            moved = self.progress.close_finished(force=force)
        except ServiceUnavailableError as exc:
            self.runtime.metrics.errors.labels("ServiceUnavailableError").inc()
            log.warning("batch status check postponed", error=str(exc))
            return False
        self.runtime.summary.batches_scored.extend(moved)
        return True


def _refusal(txs: TransactionBatch, row: int, *, unknown: bool) -> PoisonMessageError:
    """Why the sink would not store a row: its transaction is unknown, or stored otherwise."""
    tx_id = str(uuid.UUID(bytes=bytes(txs.ids[row])))
    if unknown:
        return UnknownTransactionError(tx_id)
    return ContentConflictError(tx_id, txs.batch_ids[txs.batch_codes[row]])
