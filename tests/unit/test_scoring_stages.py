"""The scorer's stages: the consume loop waits for room doing its duties, never blocked."""

from __future__ import annotations

import threading
import time

import pytest

from fraudpipe.scoring.stages import PUBLISHING, Stages, Turn

pytestmark = pytest.mark.timeout(30)


def test_a_stuck_publish_stage_keeps_the_waiting_loop_doing_its_duties() -> None:
    # A publish that can only finish once the consume loop has done a duty (with output
    # transactions: refreshed the group's generation) must not deadlock the loop.
    duties = threading.Event()
    published: list[int] = []

    def publish(item: int, turn: Turn) -> None:
        assert duties.wait(10), "the consume loop never did its duties while waiting"
        published.append(item)

    stages: Stages[int, int] = Stages([lambda x: x, lambda x: x], [publish])
    stop = threading.Event()
    for item in range(PUBLISHING):
        stages.wait_for_room(stop, lambda: None)
        stages.submit(item)
    deadline = time.monotonic() + 5
    while stages.lanes[0].pending < PUBLISHING:  # both writes reached the publish stage
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
    stages.submit(PUBLISHING)
    stages.drain(alive)
    stages.close()
    assert published == list(range(PUBLISHING + 1))


def test_drain_does_the_duties_until_every_item_is_published() -> None:
    release = threading.Event()

    def publish(item: int, turn: Turn) -> None:
        assert release.wait(10)

    stages: Stages[int, int] = Stages([lambda x: x], [publish])
    stages.submit(1)
    calls = 0

    def alive() -> None:
        nonlocal calls
        calls += 1
        release.set()

    stages.drain(alive)
    assert calls >= 1 and stages.lanes[0].pending == 0
    stages.close()


def test_lanes_take_turns_and_commit_in_submission_order() -> None:
    # Micro-batch k goes to lane k mod 2; each lane "commits" only after its turn comes, so the
    # commits keep the submission order even when the later lane is ready first.
    stop = threading.Event()
    committed: list[int] = []
    lanes_seen: dict[int, str] = {}

    def publish(item: int, turn: Turn) -> None:
        lanes_seen[item] = threading.current_thread().name
        if item % 2 == 0:
            time.sleep(0.02)  # the even lane is slower: the odd one waits for its turn
        assert turn.wait(stop)
        committed.append(item)

    stages: Stages[int, int] = Stages([lambda x: x], [publish, publish])
    for item in range(10):
        stages.wait_for_room(stop, lambda: None)
        stages.submit(item)
    stages.drain(lambda: None)
    stages.close()
    assert committed == list(range(10))
    assert {lanes_seen[i] for i in range(0, 10, 2)} == {"scorer-publish-0"}
    assert {lanes_seen[i] for i in range(1, 10, 2)} == {"scorer-publish-1"}


def test_a_failed_micro_batch_keeps_the_next_one_from_committing() -> None:
    # The offsets of micro-batch 2 would pass over micro-batch 1's messages: after 1 fails,
    # 2's turn says no, though it was published on another lane.
    stop = threading.Event()
    answers: dict[int, bool] = {}
    all_submitted = threading.Event()

    def publish(item: int, turn: Turn) -> None:
        if item == 1:
            assert all_submitted.wait(10)  # a failed stage refuses further submissions
            raise RuntimeError("the broker refused micro-batch 1")
        answers[item] = turn.wait(stop)

    stages: Stages[int, int] = Stages([lambda x: x], [publish, publish])
    for item in range(3):
        stages.wait_for_room(stop, lambda: None)
        stages.submit(item)
    all_submitted.set()
    with pytest.raises(RuntimeError, match="micro-batch 1"):
        stages.drain(lambda: None)
    deadline = time.monotonic() + 5
    while 2 not in answers:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stages.close()
    assert answers[0] is True
    assert answers[2] is False
