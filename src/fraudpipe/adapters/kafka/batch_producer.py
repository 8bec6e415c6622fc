"""A producer for one bounded batch of records: every delivery report counted, the first
refusal fatal to the batch.

The publisher sends a whole loaded batch and marks it `published` only once every record was
acknowledged. Unlike the scorer's `ConfirmedProducer`, which re-sends until the broker takes
its outputs, a record refused or not acknowledged within the delivery timeout fails the run:
the batch stays `loaded` and a re-run sends it again.

With a transactional id (`begin` … `commit`), the batch is one Kafka transaction: a publish
killed midway leaves records no ``read_committed`` reader (the scorer) ever sees, and the
re-run, with the same id (one per batch), aborts that transaction at once and sends the batch
again: the scorer reads each record once.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from fraudpipe.adapters.kafka.producer import producer_config
from fraudpipe.config import Settings
from fraudpipe.errors import (
    AuthenticationRefusedError,
    KafkaFatalError,
    NotAuthorizedError,
    ServiceUnavailableError,
    TopicSetupError,
)

log = structlog.get_logger(__name__)

#: Bound on the metadata request that checks the broker and the topic before anything is sent.
PREFLIGHT_TIMEOUT_SECONDS = 10.0
_DENIED = KafkaError.TOPIC_AUTHORIZATION_FAILED


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


class BatchProducer:
    """Produce the records of one batch to one topic and account for every one of them."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        client_id: str = "fraudpipe-publisher",
        transactional_id: str | None = None,
    ):
        """Create the producer (librdkafka connects in the background).

        Args:
            settings: Where the broker is and how long a record may be retried.
            topic: Where every record goes.
            client_id: The client's name in the broker's logs and metrics.
            transactional_id: Publish in one transaction under this id (`begin`, `commit`).
        """
        self._settings = settings
        self.topic = topic
        self._auth_error: KafkaError | None = None
        config = {**producer_config(settings, client_id, "publish"), "error_cb": self._on_error}
        if transactional_id is not None:
            timeout = settings.kafka_publish_transaction_timeout_ms
            config |= {
                "transactional.id": transactional_id,
                "transaction.timeout.ms": timeout,
                "message.timeout.ms": min(int(config["message.timeout.ms"]), timeout),
            }
        self._transactional = transactional_id is not None
        self._in_transaction = False
        self._producer = Producer(config)
        self._tracker = _DeliveryTracker()
        self._closed = False
        self.sent = 0

    @property
    def acknowledged(self) -> int:
        """Records the broker has acknowledged so far (as of the last `poll`)."""
        return self._tracker.acknowledged

    @property
    def failed(self) -> int:
        """Records refused or timed out so far (as of the last `poll`)."""
        return self._tracker.failed

    @property
    def first_error(self) -> KafkaError | None:
        return self._tracker.first_error

    def check_topic(self) -> None:
        """Check the broker answers and the topic exists (the broker never auto-creates it).

        Raises:
            ServiceUnavailableError: The broker did not answer.
            AuthenticationRefusedError: The broker refused the publisher's credentials.
            TopicSetupError: The topic does not exist, or the publisher may not write it.
        """
        s = self._settings
        timeout = min(PREFLIGHT_TIMEOUT_SECONDS, s.kafka_delivery_timeout_ms / 1000)
        try:
            metadata = self._producer.list_topics(self.topic, timeout=timeout)
        except KafkaException as exc:
            self._producer.poll(0)  # serves the error callbacks queued meanwhile
            if self._auth_error is not None:
                raise AuthenticationRefusedError(
                    "Kafka", s.kafka_publisher_user, str(self._auth_error)
                ) from exc
            raise ServiceUnavailableError("Kafka", s.kafka_bootstrap_servers) from exc
        found = metadata.topics.get(self.topic)
        if found is not None and found.error is not None and found.error.code() == _DENIED:
            # The broker does not tell a principal without rights whether a topic exists.
            raise TopicSetupError(
                self.topic,
                f"does not exist, or {s.kafka_publisher_user!r} may not write it "
                "(TOPIC_AUTHORIZATION_FAILED; `fraudpipe stack up` grants the configured topic)",
            )
        if found is None or found.error is not None:
            raise TopicSetupError(
                self.topic, "does not exist (the broker does not auto-create topics)"
            )

    def _on_error(self, err: KafkaError) -> None:
        # A failed login is not fatal to librdkafka, which retries it for ever; the publisher
        # reports it instead of waiting out its delivery timeout.
        if err.code() == KafkaError._AUTHENTICATION:
            self._auth_error = err

    def produce_many(self, keys: Sequence[bytes], values: Sequence[bytes]) -> None:
        """Queue records (``keys[i]``, ``values[i]``), serving delivery reports while the local
        queue is full.

        The loop is most of what a publisher spends per record once encoding is column-wise,
        so it binds everything it calls once (bench/publish.py).
        """
        produce = self._producer.produce
        topic, report = self.topic, self._tracker
        for key, value in zip(keys, values, strict=True):
            try:
                produce(topic, value, key, on_delivery=report)
            except BufferError:
                self.produce_after_full(value, key)
        self.sent += len(keys)

    def produce_after_full(self, value: bytes, key: bytes) -> None:
        """Queue one record once the local queue has room, serving delivery reports meanwhile."""
        while True:
            self._producer.poll(0.1)
            try:
                self._producer.produce(self.topic, value, key, on_delivery=self._tracker)
                return
            except BufferError:
                continue

    def poll(self) -> None:
        """Serve the delivery reports that arrived (counts move on)."""
        self._producer.poll(0)

    def wait(self) -> int:
        """Wait for every delivery report; returns how many records are still unanswered.

        `flush()` returns once every queued record is delivered or has failed, which
        ``message.timeout.ms`` bounds; the margin covers the last in-flight requests.
        """
        remaining: int = self._producer.flush(self._settings.kafka_delivery_timeout_ms / 1000 + 10)
        return remaining

    def begin(self) -> None:
        """Open the batch's transaction (aborting one its id left open, from a killed run).

        Raises:
            ServiceUnavailableError: The transaction coordinator did not answer.
            KafkaFatalError: The producer cannot be used (its id is refused, say).
        """
        assert self._transactional, "a transactional id is needed"
        try:
            self._producer.init_transactions(PREFLIGHT_TIMEOUT_SECONDS * 3)
            self._producer.begin_transaction()
        except KafkaException as exc:
            raise self._transaction_error(exc) from exc
        self._in_transaction = True

    def commit(self) -> None:
        """Commit the transaction: every record becomes visible to read_committed readers.

        Raises:
            ServiceUnavailableError: The commit's outcome is unknown or it was refused; the
                transaction is aborted (by `abandon`, or by the coordinator) and the batch
                must be sent again.
            KafkaFatalError: The producer cannot continue.
        """
        timeout = self._settings.kafka_publish_transaction_timeout_ms / 1000
        try:
            self._producer.commit_transaction(timeout)
        except KafkaException as exc:
            raise self._transaction_error(exc) from exc
        self._in_transaction = False

    def abandon(self) -> None:
        """Drop whatever is still queued and abort the transaction (the batch fails and will
        be sent again)."""
        self._producer.purge()
        self._producer.flush(0)
        if self._in_transaction:
            self._in_transaction = False
            try:
                self._producer.abort_transaction(PREFLIGHT_TIMEOUT_SECONDS)
            except KafkaException as exc:  # the coordinator aborts it at its timeout anyway
                log.warning("publish transaction not aborted", error=str(exc))

    def _transaction_error(self, exc: KafkaException) -> Exception:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if error is not None and error.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
            return NotAuthorizedError(
                "Kafka",
                self._settings.kafka_publisher_user,
                "publish in a transaction (`fraudpipe stack up` grants the id prefix)",
                str(error),
            )
        if error is not None and error.fatal():
            return KafkaFatalError("publisher", str(error))
        return ServiceUnavailableError(
            "Kafka", self._settings.kafka_bootstrap_servers, f"publish transaction: {exc}"
        )

    def close(self) -> None:
        """Destroy the client now (call after `wait` or `abandon`; idempotent).

        The client's callbacks refer back to this object, a cycle that the garbage collector
        might otherwise break only at interpreter exit, while librdkafka's threads still run.
        """
        if not self._closed:
            self._closed = True
            self._producer.close()
