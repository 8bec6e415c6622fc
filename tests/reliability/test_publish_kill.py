"""SIGKILL `fraudpipe publish` mid-batch, then run it again: the scorer reads each record once.

The batch goes in one Kafka transaction whose id is the batch's own. The killed run leaves
records on the log that no ``read_committed`` reader sees; the re-run aborts that transaction
at once (same id) and sends the batch again. The transactions topic then holds each record
once for a ``read_committed`` reader (and more for a ``read_uncommitted`` one, which proves the
kill landed mid-batch), and the scorer writes and publishes one prediction per transaction.

A run stopped after its Kafka commit, before its PostgreSQL one, leaves the batch `loaded` with
its records committed: the re-run finds them past the offsets its attempt recorded, marks the
batch published and sends nothing.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from scoring_support import (
    batch_status,
    exactly_once,
    ingest_ulb_day,
    predictions,
    published,
    read_topic,
    scorer_env,
    write_ulb_day,
)

from fraudpipe.adapters.kafka.security import client_config
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.publish import publish_batch
from fraudpipe.scoring.runtime import ScoringOptions
from fraudpipe.scoring.service import ScoringService

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

# Publishing runs at some 75k records/s here: a batch this size takes over a second, so the kill
# lands mid-batch though the watermark is only looked at every few milliseconds.
ROWS = 120_000
KILL_AFTER = 2_000  # records on the log, uncommitted
SECOND_ROWS = 5_000
REPO = Path(__file__).resolve().parents[2]
FRAUDPIPE = REPO / ".venv" / "bin" / "fraudpipe"


@pytest.fixture(scope="module")
def env(one_partition: Settings) -> Settings:
    return exactly_once(one_partition)


def _watermark_reader(settings: Settings) -> Consumer:
    return Consumer(
        {
            **client_config(settings, "admin"),
            "group.id": "unused",
            "isolation.level": "read_uncommitted",
        }
    )


def _on_the_log(settings: Settings, consumer: Consumer) -> int:
    """Records on the transactions topic, committed or not (the high watermark)."""
    _, high = consumer.get_watermark_offsets(
        TopicPartition(settings.topic_transactions, 0), timeout=10, cached=False
    )
    return int(high)


def test_a_publish_killed_mid_batch_and_run_again_is_read_once(
    env: Settings, tmp_path: Path
) -> None:
    csv = tmp_path / "cards.csv"
    write_ulb_day(csv, ROWS, seed=51)
    batch_id = ingest_ulb_day(env, csv)
    log = tmp_path / "publish.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(FRAUDPIPE), "publish", "--batch-id", batch_id],
            cwd=REPO,
            env=scorer_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    # One reader, connected before the publish starts: each look is one round trip.
    watermarks = _watermark_reader(env)
    try:
        _on_the_log(env, watermarks)
        deadline = time.monotonic() + 120
        while _on_the_log(env, watermarks) < KILL_AFTER:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        killed_at = _on_the_log(env, watermarks)
    finally:
        watermarks.close()
    assert KILL_AFTER <= killed_at < ROWS, "the kill should land mid-batch"
    assert batch_status(env, batch_id) == "loaded"

    again = publish_batch(env, batch_id)
    assert (again.status, again.records) == ("published", ROWS)

    committed = read_topic(env, env.topic_transactions, ROWS)
    assert len(committed) == len({m.key() for m in committed}) == ROWS
    assert (
        len(read_topic(env, env.topic_transactions, ROWS + 1, isolation="read_uncommitted")) > ROWS
    )
    ScoringService(env, ScoringOptions(idle_exit_s=5.0)).run()
    rows = predictions(env, batch_id)
    assert len(rows) == len({r.transaction_id for r in rows}) == ROWS
    outputs, _ = published(env, ROWS, 0)
    assert len(outputs) == len({p.transaction_id for p in outputs}) == ROWS


class _StoppedError(Exception):
    """Raised by the fault hook: the run dies between its Kafka and PostgreSQL commits."""


def test_a_publish_stopped_after_its_kafka_commit_is_marked_not_sent_again(
    env: Settings, tmp_path: Path
) -> None:
    csv = tmp_path / "cards2.csv"
    write_ulb_day(csv, SECOND_ROWS, seed=52, day_offset=1)
    batch_id = ingest_ulb_day(env, csv)
    with connect(env) as conn:
        keys = {
            row[0].encode()
            for row in conn.execute(
                "SELECT transaction_id::text FROM transactions WHERE batch_id = %s", (batch_id,)
            )
        }

    def on_the_topic() -> int:
        records = read_topic(env, env.topic_transactions, SECOND_ROWS)
        return sum(m.key() in keys for m in records)

    def stop_after_kafka(point: str) -> None:
        if point == "kafka-committed":
            raise _StoppedError(point)

    with pytest.raises(_StoppedError):
        publish_batch(env, batch_id, fault=stop_after_kafka)
    # The PostgreSQL transaction rolled back, as a kill's would: loaded, yet on the topic.
    assert batch_status(env, batch_id) == "loaded"
    assert on_the_topic() == SECOND_ROWS

    again = publish_batch(env, batch_id)
    assert (again.status, again.records) == ("published", SECOND_ROWS)
    assert batch_status(env, batch_id) == "published"
    assert on_the_topic() == SECOND_ROWS  # found committed, not sent again
