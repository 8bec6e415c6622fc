"""SIGKILL `fraudpipe ingest` mid-day, then run it again: the day is loaded once, whole.

A day is one PostgreSQL transaction (its batch row, its own table, the rows, the partition
attached): the kill lands while its COPY streams, the server rolls all of it back, and the
re-run, waiting first for the killed session's batch lock, loads the day from the start. A
third run finds it loaded and adds nothing.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scoring_support import scorer_env, write_ulb_day
from scratch_db import scratch_database

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.data.files import FileSource
from fraudpipe.ingest import ingest

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

ROWS = 400_000
REPO = Path(__file__).resolve().parents[2]
FRAUDPIPE = REPO / ".venv" / "bin" / "fraudpipe"


@pytest.fixture
def env(stack: Settings) -> Iterator[Settings]:
    with scratch_database(stack, prefix="fraudpipe_test") as db:
        yield db


def _count(settings: Settings, query: str) -> int:
    with connect(settings) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def _copying(settings: Settings) -> bool:
    """Whether a COPY into this database is streaming (the app role sees its own sessions)."""
    return (
        _count(
            settings,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND query ILIKE 'COPY%'",
        )
        > 0
    )


def test_an_ingest_killed_mid_day_and_run_again_loads_the_day_once(
    env: Settings, tmp_path: Path
) -> None:
    csv = tmp_path / "cards.csv"
    write_ulb_day(csv, ROWS, seed=71)
    log = tmp_path / "ingest.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(FRAUDPIPE), "ingest", "--source", str(csv), "--all-days"],
            cwd=REPO,
            env=scorer_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while not _copying(env):
        assert process.poll() is None, "ingest ended before its COPY was seen:\n" + log.read_text()
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    assert process.wait(timeout=30) == -signal.SIGKILL

    [batch] = ingest(env, FileSource(csv)).batches
    recovered_s = time.monotonic() - killed_at
    assert (batch.outcome, batch.loaded, batch.quarantined) == ("loaded", ROWS, 0)
    assert _count(env, "SELECT count(*) FROM transactions") == ROWS
    assert _count(env, "SELECT count(DISTINCT transaction_id) FROM transactions") == ROWS
    assert _count(env, "SELECT count(*) FROM batches") == 1

    [again] = ingest(env, FileSource(csv)).batches
    assert again.loaded == 0
    assert _count(env, "SELECT count(*) FROM transactions") == ROWS
    print(f"ingest SIGKILLed mid-COPY: the re-run had the day loaded {recovered_s:.1f} s later")
