"""The stack's supervised scoring API with the real `fraudpipe serve`: `ApiService`, the service
`stack up` starts, runs the server on this test's own database, decisions topic, recorder group
and champion. Decisions are asked for; the server is SIGKILLed between two requests and more are
asked for while it is dead; the supervisor starts it again after its back-off, `stack status`'s
view shows it ready again with one restart, and every decision that was answered, before the
kill or after, is in PostgreSQL as it was answered (each was acknowledged by Kafka before its
answer). `down` stops the supervisor and the server and takes the Prometheus target away.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from api_support import recorded, transaction
from ports import free_port
from pydantic import SecretStr
from scoring_support import champion_model, own_settings, scoring_topics
from scratch_db import scratch_database
from waiting import wait_for

from fraudpipe.config import Settings
from fraudpipe.stack.api import ApiService, api_status
from fraudpipe.stack.supervisor import state_file, targets_file

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

BEFORE, DURING, AFTER = 40, 10, 40


@pytest.fixture(scope="module")
def api_settings(stack: Settings) -> Iterator[Settings]:
    with scratch_database(stack, prefix="fraudpipe_test") as db:
        settings = own_settings(db, uuid.uuid4().hex[:10], partitions=2)
        with scoring_topics(settings), champion_model(settings, seed=7):
            yield settings


def test_a_killed_api_is_restarted_and_every_answered_decision_is_recorded(
    api_settings: Settings, tmp_path: Path
) -> None:
    key = secrets.token_urlsafe(24)
    settings = api_settings.model_copy(
        update={
            "stack_dir": tmp_path / "stack",
            "stack_wait_seconds": 60.0,
            "api_host": "127.0.0.1",
            "api_port": free_port(),
            "api_workers": 1,
            "api_keys": SecretStr(f"test={key}"),
            "api_enabled": True,
        }
    )
    # What the server reads of the test's own (the rest comes from .env, as on the stack).
    service = ApiService(
        settings,
        env={
            "FRAUDPIPE_PG_DATABASE": settings.pg_database,
            "FRAUDPIPE_TOPIC_DECISIONS": settings.topic_decisions,
            "FRAUDPIPE_API_RECORDER_GROUP": settings.api_recorder_group,
            "FRAUDPIPE_MODEL_NAME": settings.model_name,
        },
    )
    rng = np.random.default_rng(17)
    answered: dict[str, dict[str, Any]] = {}
    refused = 0

    def evidence() -> str:
        log = service.log_file
        return log.read_text(errors="replace")[-5000:] if log.exists() else "(no log)"

    def ask(count: int) -> None:
        nonlocal refused
        with httpx.Client(base_url=service.url, headers={"X-API-Key": key}, timeout=10) as http:
            for _ in range(count):
                body = transaction(rng)
                try:
                    answer = http.post("/v1/score", json=body)
                except httpx.TransportError:
                    refused += 1  # nobody listening: the server is dead or starting
                    continue
                assert answer.status_code in (200, 503), answer.text
                if answer.status_code == 200:
                    answered[body["transaction_id"]] = answer.json()

    assert service.up() is True
    try:
        wait_for("the API ready", lambda: api_status(settings).ready, 120, evidence)
        ask(BEFORE)
        assert len(answered) == BEFORE
        victim = api_status(settings).pid
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        ask(DURING)
        wait_for(
            "the killed server restarted and ready",
            lambda: (s := api_status(settings)).pid not in (None, victim) and s.ready,
            120,
            evidence,
        )
        ask(AFTER)
        status = service.status()
        assert (status.up, status.managed) == (True, True)
        assert status.version == "ready, model v1; 1 restart"
        address = f"127.0.0.1:{settings.api_port}"
        assert json.loads(targets_file(settings, "api").read_text()) == [{"targets": [address]}]

        ids = list(answered)
        wait_for(
            f"{len(ids)} answered decisions recorded",
            lambda: len(recorded(settings, ids)) == len(ids),
            90,
            lambda: f"{len(recorded(settings, ids))} recorded\n{evidence()}",
        )
        stored = recorded(settings, ids)
        for tx, answer in answered.items():
            assert stored[tx] == (answer["model_version"], answer["score"], answer["is_fraud"])
        print(
            f"{len(answered)} answered ({BEFORE} before the kill, "
            f"{len(answered) - BEFORE - AFTER} while it was dead, {AFTER} after), "
            f"{refused} refused while it was dead; all recorded"
        )
        assert len(answered) >= BEFORE + AFTER
    finally:
        assert service.down() is True
    assert service.managed_pid() is None
    assert not state_file(settings, "api").exists()
    assert json.loads(targets_file(settings, "api").read_text()) == []
