"""The stack's supervised scorers: `ScorersService`, the supervisor `stack up` starts, runs two
scorers in one consumer group on this test's own database, topics and model, and the stack's
`PrometheusService`, configured for them, scrapes both and the Prefect server (its targets API
says up). Once the first day
is scored, one scorer is SIGKILLed and the next days are published at once, while it is dead;
the supervisor starts it again after its back-off, and every prediction lands once, in
PostgreSQL and on the read_committed topics. `down` stops the supervisor and its scorers.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from ports import free_ports
from scoring_support import (
    assert_each_once,
    ingest_days,
    predictions,
    scorer_env,
)
from waiting import wait_for

from fraudpipe.config import Settings
from fraudpipe.publish import publish_batch
from fraudpipe.stack.prometheus import SCORER_JOB, PrometheusService
from fraudpipe.stack.scorers import ScorersService, ScorerStatus, scorer_statuses

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(900)]

DAYS = 3
ROWS_PER_DAY = 4_000
ROWS = DAYS * ROWS_PER_DAY
SCORERS = 2


@pytest.fixture(scope="module")
def env(four_partitions_once: Settings) -> Settings:
    return four_partitions_once


def _wait(what: str, done: Callable[[], bool], seconds: float, log: Path) -> None:
    wait_for(what, done, seconds, lambda: log.read_text()[-3000:] if log.exists() else "(no log)")


def test_a_killed_supervised_scorer_is_restarted_and_nothing_is_lost(
    env: Settings, tmp_path: Path
) -> None:
    first, *rest = ingest_days(env, tmp_path, DAYS, ROWS_PER_DAY, seed=31)
    port = free_ports(SCORERS + 1)  # the scorers', then Prometheus's
    stack_dir = tmp_path / "stack"
    settings = env.model_copy(
        update={
            "stack_dir": stack_dir,
            "scorers": SCORERS,
            "metrics_port": port,
            "prometheus_port": port + SCORERS,
        }
    )
    prometheus = PrometheusService(settings)
    service = ScorersService(
        settings,
        env=scorer_env(env)
        | {
            "FRAUDPIPE_STACK_DIR": str(stack_dir),
            "FRAUDPIPE_SCORERS": str(SCORERS),
            "FRAUDPIPE_METRICS_PORT": str(port),
        },
    )
    log = stack_dir / "logs" / "scorer-0.log"

    def statuses() -> list[ScorerStatus]:
        return scorer_statuses(settings)

    def scored() -> int:
        return len(predictions(env))

    assert service.up()
    try:
        _wait(
            "both scorers ready, each with partitions",
            lambda: len(s := statuses()) == SCORERS and all(x.ready and x.partitions for x in s),
            180,
            log,
        )
        assert prometheus.up()
        _wait(
            "Prometheus scraping both scorers and the Prefect server",
            lambda: (
                _scraped_up(prometheus.url) == SCORERS
                and _scraped_up(prometheus.url, "prefect") == 1
            ),
            90,
            prometheus.log_file,
        )
        publish_batch(env, first)
        _wait("the first day scored", lambda: scored() >= ROWS_PER_DAY, 120, log)
        victim = statuses()[0]
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = scored()
        for batch_id in rest:
            publish_batch(env, batch_id)
        killed = time.monotonic()
        _wait("every row scored", lambda: scored() >= ROWS, 300, log)
        drained = time.monotonic() - killed
        _wait(
            "the killed scorer restarted and ready",
            lambda: (s := statuses()[0]).pid not in (None, victim.pid) and s.ready,
            180,
            log,
        )
        restarted = time.monotonic() - killed
        after = statuses()
        print(
            f"scorer 0 SIGKILLed at {killed_at} of {ROWS} scored, the other days published "
            f"then; all scored {drained:.1f} s after the kill; scorer 0 restarted and ready "
            f"{restarted:.1f} s after it; restarts {after[0].restarts}, {after[1].restarts}"
        )
        assert after[0].restarts == 1 and after[1].restarts == 0
    finally:
        prometheus.down()
        assert service.down()
    assert service.managed_pid() is None and statuses() == []
    assert_each_once(env, predictions(env), ROWS)


def _scraped_up(prometheus: str, job: str = SCORER_JOB) -> int:
    """Targets of `job` Prometheus's targets API reports up."""
    try:
        body = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()
    except httpx.HTTPError:
        return 0
    return sum(
        1
        for target in body["data"]["activeTargets"]
        if target["labels"]["job"] == job and target["health"] == "up"
    )
