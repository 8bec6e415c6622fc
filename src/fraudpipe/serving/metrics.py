"""The scoring API's Prometheus metrics.

`serve` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before its processes start:
each worker, and the decision recorder, writes its values there, and `/metrics` answers the sum
over all of them (prometheus_client's multiprocess mode), whichever worker the scrape reaches.
An app built without `serve` keeps them on a registry of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client import values as prometheus_values

PREFIX: Final = "fraudpipe_api"
#: From a fraction of a millisecond to the seconds of an outage: the goal (10 ms) is a bound.
LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
)  # fmt: skip
#: What a request came to: ``ok`` (decided now), ``replayed`` (an earlier decision returned),
#: ``invalid`` (422), ``unauthorized`` (401), ``too_large`` (413), ``unavailable`` (503: no
#: model, or the decision could not be recorded), ``error`` (500).
OUTCOMES: Final = ("ok", "replayed", "invalid", "unauthorized", "too_large", "unavailable", "error")


def multiprocess_dir() -> str | None:
    """The directory of multiprocess mode, when several workers share the metrics."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


@dataclass
class ApiMetrics:
    """The metrics one API worker updates."""

    registry: CollectorRegistry
    latency: Histogram
    requests: Counter
    model_version: Gauge
    lookups_failed: Counter

    @classmethod
    def create(cls) -> ApiMetrics:
        """The metrics, on a registry of their own (or the multiprocess directory's files)."""
        registry = CollectorRegistry(auto_describe=True)
        return cls(
            registry=registry,
            latency=Histogram(
                f"{PREFIX}_request_seconds",
                "Time from a request's arrival to its answer, by endpoint.",
                ["endpoint"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            requests=Counter(
                f"{PREFIX}_requests",
                "Requests by endpoint and outcome.",
                ["endpoint", "outcome"],
                registry=registry,
            ),
            model_version=Gauge(
                f"{PREFIX}_model_version",
                "The model version serving (the highest among the workers).",
                registry=registry,
                multiprocess_mode="livemax",
            ),
            lookups_failed=Counter(
                f"{PREFIX}_lookups_failed",
                "Repeat checks PostgreSQL did not answer in time (the request was scored).",
                registry=registry,
            ),
        )

    def exposition(self) -> tuple[bytes, str]:
        """The text `/metrics` answers, and its content type."""
        directory = multiprocess_dir()
        if directory is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        files = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(files, path=directory)  # type: ignore[no-untyped-call]
        if _in_files():
            return generate_latest(files), CONTENT_TYPE_LATEST
        # One worker runs in `serve`'s own process, whose metrics were created before the
        # directory was set: in memory. The recorder's are in the files.
        return generate_latest(self.registry) + generate_latest(files), CONTENT_TYPE_LATEST


def _in_files() -> bool:
    """Whether this process's metrics write to the multiprocess directory (decided when
    prometheus_client was imported)."""
    return bool(prometheus_values.ValueClass.__name__ == "MmapedValue")


def decisions_recorded_counter() -> Counter:
    """The recorder process's count of decisions written (new rows), in the multiprocess
    directory `serve` set up, where the workers' `/metrics` finds it."""
    return Counter(
        f"{PREFIX}_decisions_recorded",
        "Decisions the recorder wrote to PostgreSQL (new rows).",
        registry=CollectorRegistry(),
    )
