"""Exactly once on the output topics: a scorer killed inside a micro-batch's Kafka transaction.

The scorer process (`fault_scorer.py`) kills itself at the third micro-batch whose outputs are
in its open Kafka transaction: its PostgreSQL commit is done, its Kafka commit is not. A clean
scorer then takes over. PostgreSQL holds one prediction per transaction; a ``read_committed``
reader of the topics sees each prediction and each alert once, with the scoring time
PostgreSQL stored (the redelivered micro-batch republishes the stored records); a
``read_uncommitted`` reader sees the killed attempt's records as well, which proves the crash
landed inside the transaction.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from scoring_support import (
    exactly_once,
    ingest_ulb_day,
    predictions,
    published,
    read_topic,
    scorer_env,
    stored_scoring_times,
    write_ulb_day,
)

from fraudpipe.config import Settings
from fraudpipe.publish import publish_batch
from fraudpipe.scoring.runtime import ScoringOptions
from fraudpipe.scoring.service import ScoringService

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

ROWS = 3_000
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env(one_partition: Settings) -> Settings:
    return exactly_once(one_partition)


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def test_a_scorer_killed_inside_its_output_transaction_publishes_each_record_once(
    env: Settings, tmp_path: Path
) -> None:
    csv = tmp_path / "cards.csv"
    write_ulb_day(csv, ROWS, seed=31)
    batch_id = ingest_ulb_day(env, csv)
    publish_batch(env, batch_id)
    log = tmp_path / "scorer.log"
    with log.open("wb") as out:
        killed = subprocess.run(
            [
                sys.executable,
                str(REPO / "tests/reliability/fault_scorer.py"),
                "outputs-produced",
                "3",
            ],
            cwd=REPO,
            env=scorer_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=False,
        )
    assert killed.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    written_before_the_kill = len(predictions(env, batch_id))
    assert 0 < written_before_the_kill < ROWS

    summary = ScoringService(env, ScoringOptions(batch_size=300, idle_exit_s=5.0)).run()

    rows = predictions(env, batch_id)
    assert len(rows) == len({r.transaction_id for r in rows}) == ROWS
    assert summary.inserted == ROWS - written_before_the_kill
    flagged = sum(r.is_fraud for r in rows)
    assert flagged, "the day's fraud pattern should raise alerts"
    stored = stored_scoring_times(env, batch_id)
    outputs, alerts = published(env, ROWS, flagged)
    assert len(outputs) == ROWS and {p.transaction_id for p in outputs} == set(stored)
    assert len(alerts) == flagged == len({a.transaction_id for a in alerts})
    assert all(_ms(p.scored_at) == stored[p.transaction_id] for p in outputs)
    assert all(_ms(a.raised_at) == stored[a.transaction_id] for a in alerts)
    # The killed attempt's records are in the log, aborted: only read_uncommitted sees them.
    everything = read_topic(env, env.topic_predictions, ROWS + 1, isolation="read_uncommitted")
    assert len(everything) > ROWS
