"""A Kafka broker SIGKILLed mid-stream, then restarted: nothing lost, nothing doubled.

A relay cannot stand in for Kafka: clients reconnect to the address the broker advertises, not
the one they bootstrapped from. So the test runs a broker of its own, with the stack's code and
jars but its own ports and storage, and kills that one: the shared broker is never touched.
With one broker, its death takes the group coordinator, the transaction coordinator and every
partition leader down at once, the hardest case for the scorer's output transactions.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from ports import free_port
from relay import ScorerThread
from scoring_support import (
    assert_each_once,
    batch_status,
    champion_model,
    ingest_days,
    own_settings,
    predictions,
    scoring_topics,
)
from scratch_db import scratch_database

from fraudpipe.config import Settings
from fraudpipe.publish import publish_batch
from fraudpipe.retry import Backoff
from fraudpipe.scoring.runtime import ScoringOptions
from fraudpipe.stack.kafka import KafkaService

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(900)]

DAYS = 3
ROWS = 4000  # per day


def _own_broker(base: Settings, home: Path) -> KafkaService:
    """A broker like the stack's, in `home`, on free ports; its jars linked, not fetched."""
    client, broker, controller = free_port(), free_port(), free_port()
    settings = base.model_copy(
        update={
            "stack_dir": home,
            "kafka_bootstrap_servers": f"127.0.0.1:{client}",
            "kafka_admin_bootstrap_servers": f"127.0.0.1:{broker}",
            "kafka_controller_port": controller,
        }
    )
    service, shared = KafkaService(settings), KafkaService(base)
    service.version_dir.mkdir(parents=True)
    service.libs_dir.symlink_to(shared.libs_dir)
    (service.version_dir / ".installed").write_text("linked to the stack's jars\n")
    return service


@pytest.fixture
def env(stack: Settings, unique: str, tmp_path: Path) -> Iterator[tuple[Settings, KafkaService]]:
    broker = _own_broker(stack, tmp_path / "stack")
    with ExitStack() as cleanup:
        cleanup.callback(broker.down)
        broker.up()
        db = cleanup.enter_context(scratch_database(stack, prefix="fraudpipe_test"))
        settings = own_settings(db, unique).model_copy(
            update={
                "stack_dir": broker.settings.stack_dir,
                "kafka_bootstrap_servers": broker.settings.kafka_bootstrap_servers,
                "kafka_admin_bootstrap_servers": broker.settings.kafka_admin_bootstrap_servers,
                "kafka_controller_port": broker.settings.kafka_controller_port,
            }
        )
        cleanup.enter_context(scoring_topics(settings))
        cleanup.enter_context(champion_model(settings, seed=5))
        yield settings, broker


def _sigkill(broker: KafkaService) -> None:
    pid = broker.managed_pid()
    assert pid is not None, "the test's broker is not running"
    os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)  # the broker is this process's child: reap it, or it lingers a zombie
    assert broker.managed_pid() is None


def test_a_broker_killed_mid_stream_and_restarted_loses_and_doubles_nothing(
    env: tuple[Settings, KafkaService], tmp_path: Path
) -> None:
    settings, broker = env
    assert settings.scorer_exactly_once
    batches = ingest_days(settings, tmp_path, DAYS, ROWS, seed=51)
    total = DAYS * ROWS
    scored = lambda: sum(len(predictions(settings, b)) for b in batches)  # noqa: E731
    scorer = ScorerThread(
        settings, ScoringOptions(batch_size=200, backoff=Backoff(first=0.2, cap=1.0))
    )
    try:
        for batch_id in batches:
            publish_batch(settings, batch_id)
        scorer.thread.start()
        scorer.wait_until(lambda: scored() >= 1000)
        _sigkill(broker)
        killed_at = time.monotonic()
        at_kill = scored()
        time.sleep(3.0)
        broker.up()
        restarted_at = time.monotonic()
        scorer.wait_until(
            lambda: all(batch_status(settings, b) == "scored" for b in batches), seconds=300
        )
        done_at = time.monotonic()
    finally:
        scorer.stop()

    assert not scorer.errors, scorer.errors
    assert at_kill < total, "the kill should land mid-stream"
    rows = [r for b in batches for r in predictions(settings, b)]
    assert_each_once(settings, rows, total)
    print(
        f"broker SIGKILL at {at_kill} of {total} scored; restarted after "
        f"{restarted_at - killed_at:.1f} s; all scored {done_at - restarted_at:.1f} s later"
    )
