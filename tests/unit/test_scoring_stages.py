"""The scorer's stages: the consume loop waits for room doing its duties, never blocked."""

from __future__ import annotations

import threading
import time

import pytest

from fraudpipe.scoring.stages import QUEUED_PUBLISHES, Stages

pytestmark = pytest.mark.timeout(30)


def test_a_stuck_publish_stage_keeps_the_waiting_loop_doing_its_duties() -> None:
    # A publish that can only finish once the consume loop has done a duty (with output
    # transactions: refreshed the group's generation) must not deadlock the loop.
    duties = threading.Event()
    published: list[int] = []

    def publish(item: int) -> None:
        assert duties.wait(10), "the consume loop never did its duties while waiting"
        published.append(item)

    stages: Stages[int, int] = Stages([lambda x: x, lambda x: x], publish)
    stop = threading.Event()
    for item in range(QUEUED_PUBLISHES + 1):
        stages.wait_for_room(stop, lambda: None)
        stages.submit(item)
    deadline = time.monotonic() + 5
    while stages.publish.pending <= QUEUED_PUBLISHES:  # both writes reached the publish stage
        assert time.monotonic() < deadline
        time.sleep(0.01)
    calls = 0

    def alive() -> None:
        nonlocal calls
        calls += 1
        if calls >= 3:
            duties.set()

    stages.wait_for_room(stop, alive)
    assert calls >= 3
    stages.submit(QUEUED_PUBLISHES + 1)
    stages.drain(alive)
    stages.close()
    assert published == list(range(QUEUED_PUBLISHES + 2))


def test_drain_does_the_duties_until_every_item_is_published() -> None:
    release = threading.Event()

    def publish(item: int) -> None:
        assert release.wait(10)

    stages: Stages[int, int] = Stages([lambda x: x], publish)
    stages.submit(1)
    calls = 0

    def alive() -> None:
        nonlocal calls
        calls += 1
        release.set()

    stages.drain(alive)
    assert calls >= 1 and stages.publish.pending == 0
    stages.close()
