"""SIGKILL the scoring service mid-stream, again and again: still exactly one prediction each.

The scorer runs as its own process (``python -m consumers.scorer``) against the real stack, on a
database, topics, consumer group and model of this test's own. It is killed without warning
several times while messages remain, restarted each time, and finally left to drain the topic.
Whatever was in flight at each kill (a written but uncommitted micro-batch, unacknowledged
predictions) must end up neither lost nor doubled.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from scoring_support import (
    batch_status,
    committed_offsets,
    ingest_ulb_day,
    predictions,
    published,
    read_topic,
    record_end_offsets,
    scorer_env,
    stored_scoring_times,
    write_ulb_day,
)

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.publish import publish_batch

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(900)]

ROWS = 12_000
KILLS = 3
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env(four_partitions_once: Settings) -> Settings:
    return four_partitions_once


def _scorer(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = scorer_env(settings)
    args = ["--batch-size", "200", "--idle-exit", "5", "--metrics-port", "0"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "consumers.scorer", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _counts(settings: Settings, batch_id: str) -> tuple[int, int, int]:
    """(predictions, distinct transactions predicted, transactions with more than one)."""
    with connect(settings) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT transaction_id), "
            "(SELECT count(*) FROM (SELECT transaction_id FROM predictions "
            " GROUP BY transaction_id HAVING count(*) > 1) d) "
            "FROM predictions WHERE batch_id = %s",
            (batch_id,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_sigkill_mid_stream_loses_and_doubles_nothing(env: Settings, tmp_path: Path) -> None:
    csv = tmp_path / "cards_crash.csv"
    write_ulb_day(csv, ROWS, seed=21, day_offset=0)
    batch_id = ingest_ulb_day(env, csv)
    publish_batch(env, batch_id)
    log = tmp_path / "scorer.log"

    kills_mid_stream = 0
    # From each scorer's start to its first new prediction: the first start is cold; each
    # later one also waits out the killed member's session and open transaction.
    resumed_after: list[float] = []
    for kill in range(KILLS):
        before = _counts(env, batch_id)[0]
        process = _scorer(env, log)
        started = time.monotonic()
        # Start-up (imports, model download) plus the group noticing the killed member.
        deadline = started + 300
        # Let it commit some work, then kill it at once, with no chance to clean up.
        while (now := _counts(env, batch_id)[0]) < before + 1000 and process.poll() is None:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            if now > before and len(resumed_after) < kill + 1:
                resumed_after.append(time.monotonic() - started)
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL, log.read_text()[-3000:]
        if _counts(env, batch_id)[0] < ROWS:
            kills_mid_stream += 1
    assert kills_mid_stream == KILLS, "every kill should land while messages remain"
    at_last_kill = _counts(env, batch_id)[0]

    final = _scorer(env, log)
    started = time.monotonic()
    while _counts(env, batch_id)[0] == at_last_kill and final.poll() is None:
        time.sleep(0.05)
    resumed_after.append(time.monotonic() - started)
    assert final.wait(timeout=300) == 0, log.read_text()[-3000:]
    print("each scorer's first new prediction after (s):", [f"{t:.1f}" for t in resumed_after])

    total, distinct, doubled = _counts(env, batch_id)
    assert (total, distinct, doubled) == (ROWS, ROWS, 0)
    with connect(env) as conn:
        missing = conn.execute(
            "SELECT count(*) FROM transactions t WHERE NOT EXISTS "
            "(SELECT 1 FROM predictions p WHERE p.transaction_id = t.transaction_id)"
        ).fetchone()
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    assert missing == (0,) and dead == (0,)
    assert batch_status(env, batch_id) == "scored"
    assert committed_offsets(env) == record_end_offsets(env, ROWS)
    # The topics too, for a read_committed reader: each prediction and alert once, as stored.
    stored = stored_scoring_times(env, batch_id)
    with connect(env) as conn:
        flagged = conn.execute(
            "SELECT count(*) FROM predictions WHERE batch_id = %s AND is_fraud", (batch_id,)
        ).fetchone()
    assert flagged is not None
    outputs, alerts = published(env, ROWS, int(flagged[0]))
    assert len(outputs) == ROWS and {p.transaction_id for p in outputs} == set(stored)
    assert len(alerts) == flagged[0] == len({a.transaction_id for a in alerts})
    assert all(_ms(p.scored_at) == stored[p.transaction_id] for p in outputs)
    assert all(_ms(a.raised_at) == stored[a.transaction_id] for a in alerts)


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def test_sigterm_finishes_the_micro_batch_commits_and_exits(env: Settings, tmp_path: Path) -> None:
    csv = tmp_path / "cards_term.csv"
    write_ulb_day(csv, ROWS, seed=22, day_offset=1)
    batch_id = ingest_ulb_day(env, csv)
    publish_batch(env, batch_id)
    log = tmp_path / "scorer.log"
    process = _scorer(env, log)
    deadline = time.monotonic() + 300
    while _counts(env, batch_id)[0] < 1000:
        assert time.monotonic() < deadline and process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.05)

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
    scored, distinct, doubled = _counts(env, batch_id)
    assert scored < ROWS, "the stop should come mid-stream"
    assert scored == distinct and doubled == 0
    # Whatever was written was committed, and nothing was committed that was not written:
    # below each partition's committed offset every transaction is scored, above it none.
    committed = committed_offsets(env)
    below = {
        uuid.UUID(m.key().decode())
        for m in read_topic(env, env.topic_transactions, 2 * ROWS)
        if m.key() is not None and (m.offset() or 0) < committed[m.partition() or 0]
    }
    assert below == {r.transaction_id for r in predictions(env)}
    assert '"stop requested"' in log.read_text()
