"""A PostgreSQL outage mid-stream: the scorer waits with back-off, then finishes, losing nothing.

The shared PostgreSQL is never stopped: the scorer reaches it through a TCP relay owned by the
test, and the outage is the relay dropping every connection and refusing new ones for a while.
From the scorer's side that is exactly a database that went away and came back. A short cut,
and one longer than the consumer's ``max.poll.interval.ms`` (the scorer leaves the group, and
rejoins once the database is back).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from relay import Relay, ScorerThread
from scoring_support import (
    assert_each_once,
    batch_status,
    champion_model,
    ingest_ulb_day,
    own_settings,
    predictions,
    scoring_topics,
    write_ulb_day,
)
from scratch_db import scratch_database

from fraudpipe.config import Settings
from fraudpipe.publish import publish_batch
from fraudpipe.retry import Backoff
from fraudpipe.scoring.runtime import ScoringOptions

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

ROWS = 3000


@pytest.fixture
def env(stack: Settings, unique: str) -> Iterator[Settings]:
    with scratch_database(stack, prefix="fraudpipe_test") as db:
        settings = own_settings(db, unique)
        with scoring_topics(settings), champion_model(settings, seed=4):
            yield settings


def test_a_database_outage_is_waited_out_and_nothing_is_lost(env: Settings, tmp_path: Path) -> None:
    csv = tmp_path / "cards_outage.csv"
    write_ulb_day(csv, ROWS, seed=41)
    batch_id = ingest_ulb_day(env, csv)
    relay = Relay((env.pg_host, env.pg_port))
    through_relay = env.model_copy(update={"pg_port": relay.port})
    options = ScoringOptions(batch_size=100, idle_exit_s=8.0, backoff=Backoff(first=0.2, cap=1.0))
    scorer = ScorerThread(through_relay, options)
    service, errors = scorer.service, scorer.errors
    try:
        publish_batch(env, batch_id)
        scorer.thread.start()
        scorer.wait_until(lambda: len(predictions(env, batch_id)) >= 500)
        relay.cut()
        written_at_cut = len(predictions(env, batch_id))
        time.sleep(4.0)  # several retries against a database that is not there
        written_during = len(predictions(env, batch_id)) - written_at_cut
        relay.restore()
        scorer.thread.join(timeout=120)
        assert not scorer.thread.is_alive(), "the scorer did not recover"
    finally:
        relay.close()

    assert not errors, errors
    assert written_at_cut < ROWS, "the outage should hit mid-stream"
    assert written_during == 0
    rows = predictions(env, batch_id)
    assert len(rows) == ROWS and len({r.transaction_id for r in rows}) == ROWS
    assert batch_status(env, batch_id) == "scored"
    retried = service.metrics.registry.get_sample_value(
        "fraudpipe_scorer_errors_total", {"kind": "ServiceUnavailableError"}
    )
    assert retried is not None and retried >= 2


def test_an_outage_longer_than_max_poll_interval_loses_and_doubles_nothing(
    env: Settings, tmp_path: Path
) -> None:
    # The loop waits out the outage without consuming, so the client leaves the group: the
    # micro-batch written once the database is back is fenced (its offsets carry the old
    # generation), and is read again after the scorer rejoins. PostgreSQL and the output topics
    # (read_committed, output transactions on) still hold each prediction once.
    csv = tmp_path / "cards_long_outage.csv"
    write_ulb_day(csv, ROWS, seed=42)
    batch_id = ingest_ulb_day(env, csv)
    poll_s = 10.0
    relay = Relay((env.pg_host, env.pg_port))
    through_relay = env.model_copy(
        update={"pg_port": relay.port, "kafka_max_poll_interval_ms": int(poll_s * 1000)}
    )
    assert through_relay.scorer_exactly_once
    scorer = ScorerThread(
        through_relay, ScoringOptions(batch_size=100, backoff=Backoff(first=0.2, cap=1.0))
    )
    try:
        publish_batch(env, batch_id)
        scorer.thread.start()
        scorer.wait_until(lambda: len(predictions(env, batch_id)) >= 500)
        relay.cut()
        cut_at = time.monotonic()
        written_at_cut = len(predictions(env, batch_id))
        time.sleep(poll_s + 5.0)
        relay.restore()
        scorer.wait_until(lambda: batch_status(env, batch_id) == "scored", seconds=180)
        recovered_s = time.monotonic() - cut_at
    finally:
        scorer.stop()
        relay.close()

    assert not scorer.errors, scorer.errors
    assert written_at_cut < ROWS, "the outage should hit mid-stream"
    rows = predictions(env, batch_id)
    assert_each_once(env, rows, ROWS)
    print(
        f"outage {poll_s + 5:.0f} s, poll interval {poll_s:.0f} s: scored after {recovered_s:.1f} s"
    )
