"""A second scorer joins mid-stream and leaves mid-stream: every transaction still scored once.

Twenty small days are published one a second in three phases, each opened by the event the
one before waits for, so no phase can end before its rebalance however slow the machine:
days 0-4 to scorer A (in this process, four partitions); once B (its own process) has joined
and taken partitions over (a cooperative rebalance: A commits what it holds of them first),
days 5-9 to both; once all of them are written (B's partitions' share by B), B is stopped
(SIGTERM: it commits and leaves) and days 10-19 follow while A takes its partitions back.
PostgreSQL and the topics (read_committed) hold one prediction per transaction, and each
scorer did part of the work. Run with output transactions (the default) and without.

With them, this test found a deadlock: a publish attempt refused with ILLEGAL_GENERATION waits
for the consume loop to refresh the group's metadata, and the loop was blocked handing the
publish stage its next micro-batch (`stages.Stages.wait_for_room`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from scoring_support import (
    ingest_ulb_day,
    predictions,
    published,
    scorer_env,
    write_ulb_day,
)

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.publish import publish_batch
from fraudpipe.scoring.runtime import ScoringOptions
from fraudpipe.scoring.service import ScoringService

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

DAYS, DAY_ROWS = 20, 1_500
ROWS = DAYS * DAY_ROWS
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(four_partitions: Settings) -> Settings:
    return four_partitions


def _written(settings: Settings) -> int:
    with connect(settings) as conn:
        row = conn.execute("SELECT count(*) FROM predictions").fetchone()
    assert row is not None
    return int(row[0])


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_scorer_joining_and_leaving_mid_stream_changes_no_count(
    env: Settings, tmp_path: Path
) -> None:
    batches = []
    for day in range(DAYS):
        csv = tmp_path / f"cards{day}.csv"
        write_ulb_day(csv, DAY_ROWS, seed=61 + day, day_offset=day)
        batches.append(ingest_ulb_day(env, csv))
    a = ScoringService(env, ScoringOptions(batch_size=100))
    runner = threading.Thread(target=a.run, daemon=True)
    runner.start()
    _wait_for(lambda: len(a.assigned_partitions) == 4, "A holds every partition")

    b_joined, b_leaving = threading.Event(), threading.Event()

    def publish_one_a_second() -> None:
        for day, batch_id in enumerate(batches):
            gate = {5: b_joined, 10: b_leaving}.get(day)
            if gate is not None:
                gate.wait(timeout=300)
            publish_batch(env, batch_id)
            time.sleep(1.0)

    publisher = threading.Thread(target=publish_one_a_second, daemon=True)
    publisher.start()
    _wait_for(lambda: _written(env) >= 2_000, "A scores")
    log = tmp_path / "b.log"
    with log.open("wb") as out:
        b = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "consumers.scorer",
                "--batch-size",
                "100",
                "--metrics-port",
                "0",
            ],
            cwd=REPO,
            env=scorer_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(lambda: len(a.assigned_partitions) < 4, "B takes partitions from A")
        b_joined.set()
        _wait_for(lambda: _written(env) == 10 * DAY_ROWS, "B and A score days 5-9")
        b.send_signal(signal.SIGTERM)
        b_leaving.set()
        assert b.wait(timeout=120) == 0, log.read_text()[-3000:]
    finally:
        if b.poll() is None:
            b.kill()
        b_joined.set()
        b_leaving.set()
    _wait_for(lambda: len(a.assigned_partitions) == 4, "A takes every partition back")
    publisher.join(timeout=120)
    _wait_for(lambda: _written(env) == ROWS, "A scores the rest")
    a.stop()
    runner.join(timeout=120)
    assert not runner.is_alive()

    rows = predictions(env)
    assert len(rows) == len({r.transaction_id for r in rows}) == ROWS
    b_scored = next(
        int(line.split('"scored": ')[1].split(",")[0])
        for line in log.read_text().splitlines()
        if '"scorer stopped"' in line
    )
    assert 0 < b_scored < ROWS and 0 < a.summary.scored < ROWS
    flagged = sum(r.is_fraud for r in rows)
    outputs, alerts = published(env, ROWS, flagged)
    assert len(outputs) == len({p.transaction_id for p in outputs}) == ROWS
    assert len(alerts) == len({x.transaction_id for x in alerts}) == flagged
