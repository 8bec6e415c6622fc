"""Is the scorer alive, and is it ready? What `/healthz` and `/readyz` answer.

- **Live** (`/healthz`): the consume loop turned, or waited out an outage, within
  `stall_after_s`. A scorer waiting for PostgreSQL to come back is alive: restarting it would
  not bring PostgreSQL back. A loop that stopped turning (a deadlock, a thread that died) is
  not, and a restart is the cure.
- **Ready** (`/readyz`): a verified model is loaded, no dependency is in an outage right now,
  and this member holds partitions of the transactions topic.

Both answer JSON with each check, and 200 or 503, as Kubernetes probes expect. The same facts
are gauges on `/metrics` (`ScoringMetrics`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from fraudpipe.scoring.metrics import MetricsServer, ScoringMetrics

#: The services an outage can be waited out on, as `ServiceUnavailableError` names them.
DEPENDENCIES: Final = ("Kafka", "PostgreSQL", "Schema Registry", "MLflow")

Environ = dict[str, Any]
StartResponse = Callable[[str, list[tuple[str, str]]], object]


@dataclass
class Health:
    """The scorer's liveness and readiness, updated by its loop and its retries."""

    metrics: ScoringMetrics
    stall_after_s: float = 60.0
    beat_at: float = field(default_factory=time.monotonic)
    model_ready: bool = False
    holds_partitions: Callable[[], bool] = lambda: False
    _waiting: dict[str, str] = field(default_factory=dict)  # step → service it waits for
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for service in DEPENDENCIES:
            self.metrics.dependency_up.labels(service).set(1)

    def beat(self) -> None:
        """The loop turned (or is waiting out an outage, which is also alive)."""
        self.beat_at = time.monotonic()

    def waiting(self, step: str, service: str) -> None:
        """`step` is waiting for `service` to come back."""
        self.beat()
        with self._lock:
            self._waiting[step] = service
            self._publish()

    def done(self, step: str) -> None:
        """`step` succeeded (its wait, if any, is over)."""
        with self._lock:
            if self._waiting.pop(step, None) is not None:
                self._publish()

    def outages(self) -> set[str]:
        with self._lock:
            return set(self._waiting.values())

    def live(self) -> tuple[bool, dict[str, Any]]:
        stalled_s = time.monotonic() - self.beat_at
        return stalled_s < self.stall_after_s, {"loop_last_turned_s_ago": round(stalled_s, 3)}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        outages = sorted(self.outages())
        checks = {
            "model_loaded": self.model_ready,
            "dependencies_in_outage": outages,
            "partitions_assigned": self.holds_partitions(),
        }
        return self.model_ready and not outages and bool(checks["partitions_assigned"]), checks

    def _publish(self) -> None:
        down = set(self._waiting.values())
        for service in _known(down):
            self.metrics.dependency_up.labels(service).set(0 if service in down else 1)


def _known(down: Iterable[str]) -> list[str]:
    return sorted({*DEPENDENCIES, *down})


def health_app(health: Health) -> Callable[[Environ, StartResponse], list[bytes]]:
    """A WSGI app: `/healthz`, `/readyz`, and the Prometheus metrics on every other path."""
    metrics_app = make_wsgi_app(health.metrics.registry)

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in ("/healthz", "/readyz"):
            result: list[bytes] = metrics_app(environ, start_response)
            return result
        ok, checks = health.live() if path == "/healthz" else health.ready()
        body = json.dumps({"ok": ok, **checks}).encode()
        status = "200 OK" if ok else "503 Service Unavailable"
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the base's name
        """Probes every few seconds would flood the log."""


def serve(health: Health, port: int, addr: str) -> MetricsServer:
    """Serve `/healthz`, `/readyz` and `/metrics` on `addr`:`port` until closed."""
    server = make_server(addr, port, health_app(health), ThreadingWSGIServer, _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="scorer-http", daemon=True)
    thread.start()
    return MetricsServer(server, thread)
