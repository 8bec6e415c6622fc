"""The scorer's liveness and readiness, and the answers of /healthz and /readyz."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from fraudpipe.scoring.health import Health, health_app
from fraudpipe.scoring.metrics import ScoringMetrics

pytestmark = pytest.mark.unit


def _get(health: Health, path: str) -> tuple[str, dict[str, Any]]:
    answer: list[str] = []
    body = health_app(health)(
        {"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": ""},
        lambda status, headers: answer.append(status),
    )
    return answer[0], json.loads(b"".join(body))


def _up(health: Health, service: str) -> float:
    value = health.metrics.registry.get_sample_value(
        "fraudpipe_scorer_dependency_up", {"dependency": service}
    )
    assert value is not None
    return value


def test_ready_only_with_a_model_partitions_and_no_outage() -> None:
    held = False
    health = Health(ScoringMetrics(), holds_partitions=lambda: held)
    assert _get(health, "/readyz")[0].startswith("503")
    health.model_ready = True
    status, checks = _get(health, "/readyz")
    assert status.startswith("503") and checks["partitions_assigned"] is False
    held = True
    assert _get(health, "/readyz") == (
        "200 OK",
        {"ok": True, "model_loaded": True, "dependencies_in_outage": [],
         "partitions_assigned": True},
    )  # fmt: skip

    health.waiting("write predictions", "PostgreSQL")
    status, checks = _get(health, "/readyz")
    assert status.startswith("503") and checks["dependencies_in_outage"] == ["PostgreSQL"]
    assert _up(health, "PostgreSQL") == 0 and _up(health, "Kafka") == 1
    # Waiting out an outage is alive: a restart would not bring PostgreSQL back.
    assert _get(health, "/healthz")[0] == "200 OK"
    health.done("write predictions")
    assert _get(health, "/readyz")[0] == "200 OK"
    assert _up(health, "PostgreSQL") == 1


def test_a_loop_that_stopped_turning_is_not_alive() -> None:
    health = Health(ScoringMetrics(), stall_after_s=0.05)
    assert _get(health, "/healthz")[0] == "200 OK"
    time.sleep(0.1)
    status, checks = _get(health, "/healthz")
    assert status.startswith("503") and checks["loop_last_turned_s_ago"] >= 0.05
    health.beat()
    assert _get(health, "/healthz")[0] == "200 OK"


def test_every_other_path_serves_the_metrics() -> None:
    answer: list[str] = []
    body = b"".join(
        health_app(Health(ScoringMetrics()))(
            {"PATH_INFO": "/metrics", "REQUEST_METHOD": "GET", "QUERY_STRING": ""},
            lambda status, headers: answer.append(status),
        )
    )
    assert answer == ["200 OK"] and b"fraudpipe_scorer_dependency_up" in body
