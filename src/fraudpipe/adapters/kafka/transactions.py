"""The scorer's outputs and its consumed offsets in ONE Kafka transaction per micro-batch.

Kafka Streams' ``exactly_once_v2`` (KIP-447) on the librdkafka API: a transactional producer
writes a micro-batch's predictions, alerts and dead letters, then
``send_offsets_to_transaction`` adds the offsets the micro-batch consumed, with the consumer
group's current metadata (member id and generation), and ``commit_transaction`` makes all of it
visible to ``read_committed`` readers at once, or none of it. So:

- a scorer killed after its PostgreSQL commit but before this one leaves an open transaction
  that the coordinator aborts (``transaction.timeout.ms``); its records are never visible to a
  ``read_committed`` reader, its offsets never committed, and the micro-batch is read again;
- a zombie, a scorer whose partitions moved while it stalled, is fenced by the group's
  generation: its offset commit is refused, its transaction aborted;
- transactional ids are per producer, not per partition: random like Kafka Streams' process
  id, so two scorers never fence each other (a scorer has one producer per output lane, see
  `scoring.pipeline`); a killed scorer's open transaction blocks readers for at most
  ``transaction.timeout.ms`` (10 s by default, as in Kafka Streams).

A failed attempt is aborted and the same records are sent again in a new transaction: the
transaction is all or nothing, so nothing is lost or doubled. Outages are waited out that way
(each attempt bounded by the transaction timeout), honouring stop requests.

An outage longer than the transaction timeout ends with the coordinator aborting the open
transaction and bumping the id's epoch. librdkafka reports it as a fatal ``_FENCED`` or, when
the ``EndTxn(commit)`` sent before the outage is retried after it, as a fatal
``INVALID_TXN_STATE``: the coordinator takes the old epoch for a retry and finds the
transaction aborted, not committed (both seen in ``tests/reliability/test_broker_kill.py``).
No other process holds this id, so either can only be the coordinator's doing: the client is
replaced by a new one under the same id (its ``init_transactions`` finishes the abort) and the
attempt is made again, as Kafka Streams' ``exactly_once_v2`` recreates its producer. A zombie
is still stopped by the group's generation, which the offsets carry.

A call that never returns is the last way out of an outage (`bounded_call` says where librdkafka
does that). ``init_transactions``, ``send_offsets_to_transaction`` and ``abort_transaction``
have a deadline of twice the transaction timeout; past it the client is abandoned, left to the
blocked call, and a new one under the same id fences it: its ``init_transactions`` aborts
whatever the old one had open. ``commit_transaction`` has no such deadline: its outcome is
unknown until the same client learns it, and abandoning it could commit the micro-batch twice;
librdkafka keeps its timeout there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final, Protocol

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from fraudpipe.adapters.kafka.bounded_call import BoundedCalls, CallOverran
from fraudpipe.adapters.kafka.offsets import LEFT_GROUP, LOST_PARTITIONS
from fraudpipe.adapters.kafka.producer import (
    PERMANENT_ERRORS,
    Headers,
    message_headers,
    producer_config,
    queue_message,
    queue_messages,
)
from fraudpipe.config import Settings
from fraudpipe.errors import (
    AuthenticationRefusedError,
    DeliveryRefusedError,
    KafkaFatalError,
    PartitionsLostError,
    RefusedMessage,
)
from fraudpipe.retry import StopRequested

log = structlog.get_logger(__name__)

#: Pause between two attempts of one micro-batch's transaction (an outage, not a hot loop).
RETRY_PAUSE_S: Final = 0.5
#: Fatal errors that mean the coordinator aborted the open transaction on its timeout, beside
#: ``_FENCED`` (see the module's docstring).
_COORDINATOR_ABORTED: Final = frozenset(
    {KafkaError.INVALID_TXN_STATE, KafkaError.INVALID_PRODUCER_EPOCH, KafkaError.PRODUCER_FENCED}
)

#: Fills an open transaction with a micro-batch's records. Called once per attempt, with the
#: messages the broker refused for good in the previous attempt (empty at first), so a dead
#: letter whose copy is refused can go as a reference instead.
Fill = Callable[[Sequence[RefusedMessage]], None]


class OutageWatch(Protocol):
    """Where the producer says it is waiting for the broker, and that the wait is over (the
    scorer's `/readyz` and ``dependency_up``)."""

    def waiting(self, step: str, service: str) -> None: ...

    def done(self, step: str) -> None: ...


def transactional_id(settings: Settings) -> str:
    """A transactional id of this process: the ACL's prefix, the host, the pid, a random tag."""
    tag = uuid.uuid4().hex[:8]
    return f"{settings.kafka_transactional_id_prefix}-{socket.gethostname()}-{os.getpid()}-{tag}"


def transactional_config(settings: Settings, client_id: str, txn_id: str) -> dict[str, Any]:
    """The outputs producer's settings with a transactional id.

    A record's delivery may not outlive its transaction (librdkafka refuses
    ``message.timeout.ms`` > ``transaction.timeout.ms``): a record not acknowledged in time
    fails the attempt, which is then aborted and sent again whole.

    ``retry.backoff.ms`` is 10, not librdkafka's 100. The coordinator answers
    ``CONCURRENT_TRANSACTIONS`` to a request that arrives while it still completes the previous
    commit or registers this transaction's partitions, and a scorer under load sends
    ``AddOffsetsToTxn`` within a millisecond of both. librdkafka retries it after
    ``retry.backoff.ms``: with 100, 45 of 297 micro-batches at 5k tx/s offered waited 80-127 ms
    in ``send_offsets_to_transaction`` (p99 latency 146 ms); with 10, 2 of 480 took over 50 ms
    (`bench/stream.py`, and `debug=eos` for the cause). The partitions' own registration is
    retried after a fixed 20 ms whatever this says.
    """
    timeout = settings.kafka_transaction_timeout_ms
    config = producer_config(settings, client_id, "outputs")
    return {
        **config,
        "transactional.id": txn_id,
        "transaction.timeout.ms": timeout,
        "retry.backoff.ms": 10,
        "message.timeout.ms": min(int(config["message.timeout.ms"]), timeout),
    }


class TransactionalProducer:
    """Produce a micro-batch's records, then commit them with its offsets in one transaction."""

    def __init__(
        self,
        config: dict[str, Any],
        stop: threading.Event,
        outages: OutageWatch | None = None,
        name: str = "",
    ) -> None:
        """Create the producer; `start()` registers its transactional id with the coordinator.

        Args:
            config: librdkafka settings (see `transactional_config`).
            stop: A shutdown request; ends the waits of an outage.
            outages: Told when an attempt waits for the broker (not for a rebalance), and
                when the step succeeds again.
            name: Tells this producer's steps from another's in `outages` (several producers
                of one process may wait at once).
        """
        self.config = config
        self.transactional_id = str(config["transactional.id"])
        self._timeout_s = int(config["transaction.timeout.ms"]) / 1000
        self._calls = BoundedCalls(2 * self._timeout_s, "kafka-transaction-calls")
        self._producer = self._new_client()
        self._stop = stop
        self._outages = outages
        self._name = name
        self._waiting_steps: set[str] = set()
        self._refused: list[RefusedMessage] = []
        self._auth_error: KafkaError | None = None
        self._fatal_error: KafkaError | None = None
        self._closed = False
        self.aborted = 0
        """Attempts aborted so far (each one's records are invisible to read_committed)."""
        self.renewed = 0
        """Clients replaced after the coordinator fenced this id (a transaction timed out)."""

    def _new_client(self) -> Producer:
        self._fatal_error = None
        return Producer(
            {**self.config, "error_cb": self._on_error, "on_delivery": self._on_delivery}
        )

    def start(self) -> None:
        """Register the transactional id (waits for the broker; aborts what the id left open).

        Raises:
            KafkaFatalError, AuthenticationRefusedError: The producer cannot be used.
            StopRequested: A shutdown was requested while waiting for the broker.
        """
        while True:
            try:
                self._calls.call(partial(self._producer.init_transactions, self._timeout_s))
                self._recovered()
                return
            except CallOverran as exc:
                self._abandon(exc)
            except KafkaException as exc:
                error = self._error(exc)
                if not error.retriable():
                    raise self._fatal(error) from exc
                self._pause("register the transactional id", error)

    def produce(
        self, topic: str, value: bytes | None, key: bytes | None, headers: Headers | None = None
    ) -> None:
        """Queue one record in the open transaction (waiting for room in the local queue)."""
        queue_message(self._producer, self._refused, topic, value, key, headers)

    def produce_many(self, topic: str, values: list[bytes], keys: list[bytes]) -> None:
        """Queue many records without headers in the open transaction."""
        queue_messages(self._producer, self._refused, topic, values, keys)

    def commit(
        self,
        fill: Fill,
        offsets: list[TopicPartition],
        group_metadata: Callable[[], object],
        still_owned: Callable[[list[TopicPartition]], bool],
        may_commit: Callable[[], bool] = lambda: True,
    ) -> int:
        """Commit the records `fill` produces and `offsets`, once; returns the attempts made.

        Args:
            fill: Produces the micro-batch's records into the open transaction.
            offsets: The consumed offsets (+1) to commit with them.
            group_metadata: The consumer's latest group metadata (asked at each attempt).
            still_owned: Whether this member still holds the partitions of `offsets`.
            may_commit: Asked once the transaction holds the records, before the offsets
                join it; it may wait (for an earlier micro-batch's commit on another
                producer). False aborts the transaction.

        Raises:
            PartitionsLostError: The group fenced the offsets and the partitions moved, or this
                member left the group (``max.poll.interval.ms`` passed during an outage): the
                partitions' owner, maybe this member once it rejoins, reads the micro-batch
                again (the attempt was aborted). Also when `may_commit` said no.
            DeliveryRefusedError: A record was refused for good and `fill` did not replace it.
            KafkaFatalError, AuthenticationRefusedError: The producer cannot continue.
            StopRequested: A shutdown was requested between attempts.
        """
        refused: list[RefusedMessage] = []
        attempts = 0
        while True:
            attempts += 1
            self._refused = []
            try:
                self._producer.begin_transaction()
                fill(refused)
                # Before the offsets join, not just before the commit: of two transactional
                # commits of one partition's offset, the group coordinator keeps the one it
                # appended last, whichever commits last (see `scoring.pipeline`).
                if not may_commit():
                    raise PartitionsLostError("an earlier micro-batch was not committed")
                self._send_offsets(offsets, group_metadata())
                self._commit()
                self._recovered()
                return attempts
            except CallOverran as exc:
                # The old client's transaction is aborted by the new one's registration.
                self.aborted += 1
                self._abandon(exc)
                self.start()
            except KafkaException as exc:
                error = self._error(exc)
                if self._fenced_by_coordinator(error):
                    self._renew(error)
                    continue
                if error.fatal() or not (error.txn_requires_abort() or error.retriable()):
                    raise self._fatal(error) from exc
                self._abort()
                refused = list(self._refused)
                if error.code() in LEFT_GROUP or (
                    error.code() in LOST_PARTITIONS and not still_owned(offsets)
                ):
                    # Retrying would wait for a rejoin only the consume loop can make.
                    raise PartitionsLostError(str(error)) from exc
                self._pause("commit the micro-batch's transaction", error)
            except BaseException:
                self._abort()
                raise

    def close(self) -> None:
        """Destroy the client (idempotent); an open transaction is aborted."""
        if not self._closed:
            self._closed = True
            self._calls.close()
            self._producer.close()

    def _send_offsets(self, offsets: list[TopicPartition], group_metadata: object) -> None:
        send = self._producer.send_offsets_to_transaction
        self._calls.call(partial(send, offsets, group_metadata, self._timeout_s))

    def _commit(self) -> None:
        # A retriable error leaves the outcome unknown: committing again is how to learn it.
        while True:
            try:
                self._producer.commit_transaction(self._timeout_s)
                return
            except KafkaException as exc:
                error = self._error(exc)
                if not error.retriable() or error.txn_requires_abort():
                    raise
                self._pause("learn the transaction's outcome", error)

    def _abort(self) -> None:
        self.aborted += 1
        while True:
            try:
                self._calls.call(partial(self._producer.abort_transaction, self._timeout_s))
                return
            except CallOverran as exc:
                self._abandon(exc)  # the new client's registration aborts the transaction
                self.start()
                return
            except KafkaException as exc:
                error = self._error(exc)
                if error.code() == KafkaError._STATE or self._fenced_by_coordinator(error):
                    # No transaction was open (begin itself failed), or the coordinator
                    # aborted it already: the next attempt replaces the fenced client.
                    return
                if error.fatal() or not error.retriable():
                    raise self._fatal(error) from exc
                self._pause("abort the transaction", error)

    def _fenced_by_coordinator(self, error: KafkaError) -> bool:
        """Whether the coordinator aborted this id's transaction itself (see the module)."""
        fatal = self._fatal_error
        return error.code() == KafkaError._FENCED or any(
            e is not None and e.fatal() and e.code() in _COORDINATOR_ABORTED for e in (error, fatal)
        )

    def _renew(self, error: KafkaError) -> None:
        """Replace the fenced client with a new one under the same transactional id."""
        log.warning(
            "kafka transactional producer fenced by its coordinator; replacing the client",
            transactional_id=self.transactional_id,
            error=str(error),
        )
        self.renewed += 1
        with contextlib.suppress(KafkaException):  # close() re-reports the fatal error
            self._producer.close()
        self._producer = self._new_client()
        self.start()

    def _abandon(self, overran: CallOverran) -> None:
        """Leave the blocked client behind and take a new one under the same id."""
        log.error(
            "kafka transactional call blocked past its deadline; abandoning the client",
            transactional_id=self.transactional_id,
            error=str(overran),
        )
        # Not closed: librdkafka forbids destroying a client during a call on it. The blocked
        # thread holds the old client, which is destroyed once (if ever) the call returns.
        self._producer = self._new_client()

    def _pause(self, step: str, error: KafkaError) -> None:
        if self._stop.is_set():
            raise StopRequested(step)
        if self._name:
            step = f"{step} (producer {self._name})"
        log.warning("kafka transaction retried", step=step, error=str(error))
        if self._outages is not None and error.code() not in LOST_PARTITIONS:
            # A moved generation is a rebalance, not the broker being away.
            self._waiting_steps.add(step)
            self._outages.waiting(step, "Kafka")
        time.sleep(RETRY_PAUSE_S)

    def _recovered(self) -> None:
        if self._outages is not None:
            for step in self._waiting_steps:
                self._outages.done(step)
        self._waiting_steps.clear()

    def _error(self, exc: KafkaException) -> KafkaError:
        if self._auth_error is not None:
            raise AuthenticationRefusedError(
                "Kafka", str(self.config.get("sasl.username", "")), str(self._auth_error)
            ) from exc
        error = exc.args[0] if exc.args else None
        if not isinstance(error, KafkaError):
            raise exc
        return error

    def _fatal(self, error: KafkaError) -> Exception:
        if error.code() in PERMANENT_ERRORS and self._refused:
            return DeliveryRefusedError(list(self._refused))
        return KafkaFatalError(f"transactional producer {self.transactional_id}", str(error))

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None and err.code() in PERMANENT_ERRORS:
            self._refused.append(
                RefusedMessage(
                    msg.topic() or "",
                    msg.key(),
                    msg.value(),
                    message_headers(msg.headers()),
                    str(err),
                )
            )

    def _on_error(self, err: KafkaError) -> None:
        # librdkafka retries a refused login for ever; the scorer stops with the reason.
        if err.code() == KafkaError._AUTHENTICATION:
            self._auth_error = err
        elif err.fatal():
            self._fatal_error = err
        else:
            log.warning("kafka producer error", error=str(err))
