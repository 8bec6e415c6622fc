"""The scorer's /healthz and /readyz on a real run: not ready before it holds partitions and a
verified model, ready while it scores, and its gauges on /metrics."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from ports import free_port
from scoring_support import champion_model, own_settings, scoring_topics

from fraudpipe.config import Settings
from fraudpipe.scoring.runtime import ScoringOptions
from fraudpipe.scoring.service import ScoringService

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def env(fresh_db: Settings, unique: str) -> Iterator[Settings]:
    settings = own_settings(fresh_db, unique)
    with scoring_topics(settings), champion_model(settings, seed=1):
        yield settings


def _get(port: int, path: str) -> tuple[int, Any]:
    try:
        url = f"http://127.0.0.1:{port}{path}"  # loopback, the scorer's own endpoint
        with urllib.request.urlopen(url, timeout=5) as answer:
            body = answer.read()
            status = answer.status
    except urllib.error.HTTPError as refused:
        body, status = refused.read(), refused.code
    except OSError:
        return 0, None
    return status, (json.loads(body) if path != "/metrics" else body.decode())


def test_ready_once_it_holds_partitions_and_a_verified_model(env: Settings) -> None:
    port = free_port()
    service = ScoringService(env, ScoringOptions(metrics_port=port, poll_timeout_s=0.2))
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 120
        answers: list[tuple[int, Any]] = []
        while time.monotonic() < deadline:
            answers.append(_get(port, "/readyz"))
            if answers[-1][0] == 200:
                break
            time.sleep(0.2)
        status, checks = answers[-1]
        assert status == 200, answers[-5:]
        assert checks == {
            "ok": True,
            "model_loaded": True,
            "dependencies_in_outage": [],
            "partitions_assigned": True,
        }
        assert any(code == 503 for code, _ in answers) or len(answers) == 1
        assert _get(port, "/healthz")[0] == 200
        _, metrics = _get(port, "/metrics")
        assert 'fraudpipe_scorer_dependency_up{dependency="PostgreSQL"} 1.0' in metrics
        assert "fraudpipe_scorer_last_commit_age_seconds" in metrics
        assert "fraudpipe_scorer_model_version 1.0" in metrics
    finally:
        service.stop()
        runner.join(timeout=60)
    assert not runner.is_alive()
