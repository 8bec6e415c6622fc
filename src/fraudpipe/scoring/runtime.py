"""What one run of a scorer shares between its parts: options, metrics, the run's summary, the
stop request and the way outages are waited out.

The service (`service`) builds it with the consumer; the pipeline (`pipeline`) and its stages
only read and update it. Neither needs the other to do so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, TypeVar

from confluent_kafka import KafkaError

from fraudpipe.adapters.postgres.connect import RETRIABLE_TRANSACTION_ERRORS
from fraudpipe.errors import (
    AuthenticationRefusedError,
    KafkaFatalError,
    SchemaRegistryRequestError,
    ServiceUnavailableError,
)
from fraudpipe.microbatch import ScoredBatch
from fraudpipe.retry import Backoff, retry_until_done
from fraudpipe.scoring.health import Health
from fraudpipe.scoring.metrics import ScoringMetrics

T = TypeVar("T")

#: Errors that mean "a service is away for now": wait and retry the step.
RETRIABLE: tuple[type[BaseException], ...] = (
    ServiceUnavailableError,
    SchemaRegistryRequestError,
    # A deadlock or serialization failure between two scorers: the transaction rolled back whole.
    *RETRIABLE_TRANSACTION_ERRORS,
)


@dataclass(frozen=True)
class ScoringOptions:
    """How the scorer runs (the endpoints come from `Settings`).

    Attributes:
        batch_size: Most messages per micro-batch (`consume(num_messages=...)`).
        poll_timeout_s: Longest wait for the first message of a micro-batch.
        max_messages: Stop after this many messages (None: run until stopped).
        idle_exit_s: Stop after this long without a message while holding partitions (None:
            never).
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
        fault: Fault tests only: called with the name of each point a crash is tested at
            (``outputs-produced``: a micro-batch's outputs are in its open Kafka transaction,
            after its PostgreSQL commit, before the Kafka commit).
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
    fault: Callable[[str], None] | None = None


@dataclass
class RunSummary:
    """What one run of the service did."""

    consumed: int = 0
    scored: int = 0
    inserted: int = 0
    dead_letters: int = 0
    expired_unscored: int = 0
    """Records retention deleted before this group scored them (seen at assignment)."""
    micro_batches: int = 0
    batches_scored: list[str] = field(default_factory=list)
    partitions: set[int] = field(default_factory=set)
    model_versions: set[int] = field(default_factory=set)
    stopped_by: str = ""
    first_consumed_at: float | None = None
    """`time.monotonic()` when the first message arrived (throughput excludes start-up)."""
    last_committed_at: float | None = None
    """`time.monotonic()` when the last micro-batch's offsets were committed."""


@dataclass
class ScorerRuntime:
    """The state of one scorer run that its service and its pipeline share.

    Attributes:
        options: How the scorer runs.
        metrics: Its Prometheus metrics.
        summary: What the run did so far.
        on_commit: Called after each micro-batch's offsets are recorded, with the scored batch
            and the commit time (epoch seconds); for benchmarks and tests.
        stop_event: Set when the run should finish what it holds and stop.
    """

    options: ScoringOptions
    metrics: ScoringMetrics = field(default_factory=ScoringMetrics)
    summary: RunSummary = field(default_factory=RunSummary)
    on_commit: Callable[[ScoredBatch, float], None] | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    health: Health = field(init=False)
    _fatal: KafkaError | None = None
    _principal: str = ""

    def __post_init__(self) -> None:
        self.health = Health(self.metrics)

    def stop(self) -> None:
        """Ask the run to finish the current micro-batch, commit and close (thread-safe)."""
        self.stop_event.set()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def retry(self, action: Callable[[], T], what: str) -> T:
        """Run a step until it succeeds, waiting out outages (see `retry_until_done`)."""
        result = retry_until_done(
            action,
            what=what,
            retry_on=RETRIABLE,
            stop=self.stop_event,
            backoff=self.options.backoff,
            on_failure=partial(self._waiting, what),
        )
        self.health.done(what)
        return result

    def _waiting(self, what: str, exc: BaseException) -> None:
        self.metrics.errors.labels(type(exc).__name__).inc()
        if isinstance(exc, ServiceUnavailableError):
            self.health.waiting(what, exc.service)
        elif isinstance(exc, SchemaRegistryRequestError):
            self.health.waiting(what, "Schema Registry")
        else:
            self.health.beat()

    def fail(self, error: KafkaError, principal: str = "") -> None:
        """Record a fatal consumer error, raised by the loop at its next turn.

        Args:
            error: librdkafka's error.
            principal: Who the consumer logs in as, named when the error is a refused login.
        """
        self._fatal = error
        self._principal = principal

    def raise_if_fatal(self) -> None:
        """Raises `KafkaFatalError`, or `AuthenticationRefusedError` for a refused login, once
        the consumer reported one."""
        if self._fatal is None:
            return
        if self._fatal.code() == KafkaError._AUTHENTICATION:
            raise AuthenticationRefusedError("Kafka", self._principal, str(self._fatal))
        raise KafkaFatalError("consumer", str(self._fatal))
