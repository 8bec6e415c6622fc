"""The scorer's Prometheus metrics, on a registry of its own.

A registry per service instance (not the process-global default) lets tests run several
scorers in one process. Per-transaction latencies are observed a micro-batch at a time with
numpy (`BatchHistogram`): `Histogram.observe` per transaction would cost about a microsecond
each, a noticeable share of a 20 µs budget.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Final
from wsgiref.simple_server import WSGIServer

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX: Final = "fraudpipe_scorer"

LATENCY_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0
)  # fmt: skip
BATCH_SIZE_BUCKETS: Final = (1, 10, 100, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000)
SCORING_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0
)  # fmt: skip


class BatchHistogram(Collector):
    """A histogram observed with whole arrays of values at once."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = np.asarray(buckets, dtype=np.float64)
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # last = above every bound
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: npt.NDArray[np.float64]) -> None:
        """Add every value of the array."""
        if not len(values):
            return
        # side="left": a value equal to a bound falls in that bound's bucket (le = "<=").
        slots = np.searchsorted(self._bounds, values, side="left")
        counts = np.bincount(slots, minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._sum
        labels = [*(repr(float(b)) for b in self._bounds), "+Inf"]
        family = HistogramMetricFamily(self._name, self._documentation)
        family.add_metric([], list(zip(labels, cumulative, strict=True)), total)
        yield family


class ScoringMetrics:
    """Counters, histograms and gauges of one scorer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            f"{PREFIX}_messages_consumed", "Messages consumed from the transactions topic.",
            registry=r,
        )  # fmt: skip
        self.scored = Counter(
            f"{PREFIX}_transactions_scored", "Transactions scored and committed.", registry=r
        )
        self.predictions_written = Counter(
            f"{PREFIX}_predictions_written",
            "Prediction rows inserted (re-deliveries absorbed by ON CONFLICT are not counted).",
            registry=r,
        )
        self.transactions_aborted = Counter(
            f"{PREFIX}_transactions_aborted",
            "Output transactions aborted and sent again (their records never visible to "
            "read_committed readers).",
            registry=r,
        )
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters",
            "Messages sent to the dead-letter topic, by error type.",
            ["error_type"],
            registry=r,
        )
        self.errors = Counter(
            f"{PREFIX}_errors",
            "Failures the scorer waited out or skipped (outages, broker errors), by kind.",
            ["kind"],
            registry=r,
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size", "Messages per micro-batch.", buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.scoring_seconds = Histogram(
            f"{PREFIX}_scoring_seconds",
            "Time the model took to score one micro-batch.",
            buckets=SCORING_BUCKETS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            f"{PREFIX}_stage_seconds",
            "Time one micro-batch spent in each step: decode, score, shadow (the challenger), "
            "write, publish (outputs "
            "produced, or acknowledged without output transactions), and with output "
            "transactions turn (waiting for the micro-batch before it to commit) and commit "
            "(the offsets sent and the transaction committed).",
            ["stage"],
            buckets=SCORING_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            f"{PREFIX}_batch_seconds",
            "Time from a micro-batch consumed to its offsets committed.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.end_to_end_seconds = BatchHistogram(
            f"{PREFIX}_end_to_end_seconds",
            "Per transaction: Kafka record timestamp to its prediction committed.",
            LATENCY_BUCKETS,
        )
        r.register(self.end_to_end_seconds)
        self.consumer_lag = Gauge(
            f"{PREFIX}_consumer_lag",
            "Messages behind the partition's high watermark.",
            ["topic", "partition"],
            registry=r,
        )
        self.model_version = Gauge(
            f"{PREFIX}_model_version", "Registered version of the model being served.", registry=r
        )
        self.expired_unscored = Counter(
            f"{PREFIX}_records_expired_unscored",
            "Offsets the transactions topic deleted (retention) before this group scored them "
            "(records, and the transaction markers among them).",
            ["topic", "partition"],
            registry=r,
        )
        self.dependency_up = Gauge(
            f"{PREFIX}_dependency_up",
            "0 while the scorer waits out an outage of the dependency, else 1.",
            ["dependency"],
            registry=r,
        )
        self.last_commit_age_seconds = Gauge(
            f"{PREFIX}_last_commit_age_seconds",
            "Seconds since the last micro-batch was committed (since start-up before the first).",
            registry=r,
        )
        self.consumer_lag_seconds = Gauge(
            f"{PREFIX}_consumer_lag_seconds",
            "Age of the newest transaction of the last committed micro-batch, at its commit.",
            registry=r,
        )
        self.model_refusals = Counter(
            f"{PREFIX}_model_refusals",
            "Model versions refused at loading or scoring (failed verification), by version.",
            ["version"],
            registry=r,
        )

    def serve(self, port: int, addr: str = "127.0.0.1") -> MetricsServer:
        """Expose the metrics alone over HTTP until the returned server is closed (the scorer
        serves them with its health endpoints: `fraudpipe.scoring.health.serve`)."""
        server, thread = start_http_server(port, addr=addr, registry=self.registry)
        return MetricsServer(server, thread)


class MetricsServer:
    """A running metrics endpoint."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
