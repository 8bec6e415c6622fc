"""The decision recorder: the API's decisions, from their topic into PostgreSQL, exactly once.

`fraudpipe serve` runs one in a process of its own beside its workers (`run_recorder`), so its
decoding and writing never take the GIL from a request. Every recorder of a deployment (one
per `serve`, or per pod) is a member of one consumer group (`Settings.api_recorder_group`),
which shares the decisions topic's partitions among them and hands a dead one's to the others.

A poll's decisions go in one PostgreSQL transaction, idempotent on the transaction id
(`record_decisions`), and only then are the offsets committed: a crash in between records
nothing twice. A message that is not a decision goes to the dead-letter topic with the reason.
While PostgreSQL is away the same decisions are tried again, the offsets stay where they were,
and the API keeps answering: its answers are already durable in Kafka.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Final

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException

from fraudpipe.adapters.avro import registry_client
from fraudpipe.adapters.avro.decisions import DecisionCodec
from fraudpipe.adapters.avro.decoding import dead_letter
from fraudpipe.adapters.kafka.consumer import data_messages, recorder_config
from fraudpipe.adapters.kafka.dlq import DeadLetterPublisher
from fraudpipe.adapters.kafka.producer import ConfirmedProducer, producer_config
from fraudpipe.adapters.postgres.connect import CONNECTION_LOST_ERRORS, Connection, connect
from fraudpipe.adapters.postgres.decisions import record_decisions
from fraudpipe.config import Settings, get_settings
from fraudpipe.errors import (
    ContractViolationError,
    PoisonMessageError,
    ServiceUnavailableError,
)
from fraudpipe.logs import configure_logging
from fraudpipe.records import DecisionRecord
from fraudpipe.serving.metrics import decisions_recorded_counter

log = structlog.get_logger(__name__)

_DATABASE_AWAY: Final[tuple[type[BaseException], ...]] = (
    ServiceUnavailableError,
    *CONNECTION_LOST_ERRORS,
)
#: Most decisions one PostgreSQL transaction takes.
MAX_BATCH: Final = 2_000
#: How long a poll waits for the first message.
POLL_S: Final = 0.2
#: Wait before trying an outage again.
RETRY_S: Final = 1.0


class DecisionRecorder:
    """Consumes the decisions topic and records each decision in PostgreSQL."""

    def __init__(
        self, settings: Settings, client_id: str, on_recorded: Callable[[int], object]
    ) -> None:
        """Prepare the clients (nothing connects until `start`).

        Args:
            settings: The services, the topic and the group.
            client_id: The consumer's name in the broker's logs.
            on_recorded: Told how many new rows each write stored (the metrics).
        """
        self._settings = settings
        self._on_recorded = on_recorded
        self._client_id = client_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decision-recorder", daemon=True)
        self.recorded = 0
        """Decisions this recorder wrote (new rows), since it started."""
        self.dead_lettered = 0
        self.failure: BaseException | None = None
        """What ended the thread, if it died."""

    @property
    def alive(self) -> bool:
        """Whether the recorder thread is running."""
        return self._thread.is_alive()

    def start(self) -> None:
        """Start recording in a daemon thread."""
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Finish the current poll's write and commit, then leave the group."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        s = self._settings
        try:
            codec = DecisionCodec(s, registry_client(s))
            dlq = DeadLetterPublisher(
                ConfirmedProducer(producer_config(s, f"{self._client_id}-dlq"), self._stop),
                s.topic_dlq,
            )
            consumer = Consumer(recorder_config(s, self._client_id))
            consumer.subscribe([s.topic_decisions])
            try:
                self._loop(consumer, codec, dlq)
            finally:
                consumer.close()
        except Exception as exc:  # kept for readiness, and logged
            self.failure = exc
            log.exception("decision recorder stopped")

    def _loop(self, consumer: Consumer, codec: DecisionCodec, dlq: DeadLetterPublisher) -> None:
        conn: Connection | None = None
        while not self._stop.is_set():
            # An error no retry cures (rights refused, a fatal client error) stops the
            # recorder, and the API reports itself not ready.
            polled = consumer.consume(MAX_BATCH, POLL_S)
            messages = data_messages(polled, "the decision recorder", _consume_error)
            if not messages:
                continue
            decisions: list[DecisionRecord] = []
            letters = []
            for message in messages:
                try:
                    decisions.append(codec.decode(message))
                except (PoisonMessageError, ContractViolationError) as exc:
                    letters.append(dead_letter(message, exc))
            if letters:
                dlq.publish(letters)
                self.dead_lettered += len(letters)
                log.error(
                    "not a decision; dead-lettered", count=len(letters), first=letters[0].error
                )
            while not self._stop.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = connect(self._settings, "app", autocommit=True)
                    new = record_decisions(conn, decisions)
                    self.recorded += new
                    self._on_recorded(new)
                    break
                except _DATABASE_AWAY as exc:
                    log.warning("PostgreSQL away; recording again shortly", error=str(exc))
                    conn = None
                    self._stop.wait(RETRY_S)
            else:
                return  # stopping: the offsets stay, the next member records these
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as exc:
                # The partitions moved while PostgreSQL was away: their new owner records
                # these again, which changes nothing.
                log.warning("offsets not committed", error=str(exc))


def _consume_error(error: KafkaError) -> None:
    log.warning("decision consumer", error=error.str())


def run_recorder(json_logs: bool, serve_pid: int) -> None:
    """A recorder process: record until SIGTERM, SIGINT or `serve`'s end, then finish the write
    in hand.

    Exits non-zero when the recorder stopped by itself (rights refused, a fatal client
    error): `serve` then stops too, for its supervisor to start both again.
    """
    configure_logging(json=json_logs)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    recorded = decisions_recorded_counter()
    recorder = DecisionRecorder(get_settings(), f"fraudpipe-recorder-{os.getpid()}", recorded.inc)
    recorder.start()
    # `serve` may end without a word: uvicorn ends a SIGTERM'd server by raising the signal
    # again, and no `finally` of `serve` runs. Its child then has a new parent.
    while not stopping.wait(0.5) and os.getppid() == serve_pid:
        if not recorder.alive:
            sys.exit(1)
    recorder.stop()
