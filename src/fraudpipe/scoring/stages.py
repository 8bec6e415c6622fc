"""The scorer's write stages and its publish lanes, driven as one by the consume loop.

Micro-batches go to the least busy write stage (each its own PostgreSQL connection) and, as a
future of that write, to the publish lanes in turn (micro-batch k to lane k mod n). A lane
waits for each future, and its publish function waits for its `Turn` before its commit: so
writes overlap, a lane prepares micro-batch k+1's outputs while another commits micro-batch k,
and the commits themselves still go in consumption order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import partial
from typing import Any, Generic, TypeVar

from fraudpipe.scoring.commit_stage import CommitStage

P = TypeVar("P")
"""A micro-batch ready to write."""
W = TypeVar("W")
"""A written micro-batch, ready to publish."""

_ROOM_POLL_S = 0.001
#: Micro-batches that may wait behind a write stage's current one. Few: while every write
#: stage is busy, new messages gather in the client's queue and form one larger micro-batch.
QUEUED_WRITES = 1
#: Micro-batches in the publish lanes at once, being published or queued. Two: with one lane,
#: one waits while the other is published; with two, each lane has one. Letting each of two
#: lanes queue one more (four in all) measured worse in the same sitting (`bench/stream.py`,
#: p99 at 1k / 5k / 20k tx/s offered: 191 / 169 / 281 ms, against 53-90 / 84-88 / 122-176 ms
#: with two), and a third (three in all) no better at 20k tx/s.
PUBLISHING = 2

#: A micro-batch handed to a write stage, and where its outcome will appear.
_WriteJob = tuple[P, "Future[W]"]


class Turn:
    """A micro-batch's place in the order of commits, handed to its publish function."""

    def __init__(self, previous: Turn | None) -> None:
        self._previous = previous
        self._finished = threading.Event()
        self._failed = False

    def wait(self, stop: threading.Event) -> bool:
        """Wait until the micro-batch before this one is finished (or a stop); whether it
        finished without raising. False means this one must not commit: the offsets it
        carries would pass over micro-batches that were never committed."""
        previous = self._previous
        if previous is None:
            return True
        while not previous._finished.wait(_ROOM_POLL_S * 100):
            if stop.is_set():
                return False
        return not previous._failed

    def finish(self, *, failed: bool) -> None:
        self._failed = failed
        self._finished.set()
        self._previous = None  # a finished turn need not keep the chain before it alive


#: Publishes one written micro-batch; commits only once its turn comes (`Turn.wait`).
Publish = Callable[[W, Turn], None]


class Stages(Generic[P, W]):
    """The write stages and the publish lanes, driven as one.

    Each micro-batch goes to the least busy write stage and, as a future of its write, to the
    next publish lane, in consumption order; each lane waits for its futures in turn.
    """

    def __init__(
        self,
        writers: Sequence[Callable[[P], W]],
        publishers: Sequence[Publish[W]],
    ) -> None:
        self.lanes: list[CommitStage[tuple[Future[W], Turn]]] = [
            CommitStage(partial(self._publish, publish), f"scorer-publish-{i}")
            for i, publish in enumerate(publishers)
        ]
        self.writers: list[CommitStage[_WriteJob[P, W]]] = [
            CommitStage(partial(_fulfil, write), f"scorer-write-{i}")
            for i, write in enumerate(writers)
        ]
        self._submitted = 0
        self._last_turn: Turn | None = None

    @property
    def _next_lane(self) -> CommitStage[tuple[Future[W], Turn]]:
        return self.lanes[self._submitted % len(self.lanes)]

    def wait_for_room(self, stop: threading.Event, alive: Callable[[], None]) -> None:
        """Wait until a write stage could take a micro-batch (see `QUEUED_WRITES`) and the
        publish lanes could too (`PUBLISHING`), calling `alive` meanwhile.

        The consume loop must never block in `submit` instead: with output transactions, the
        publish stage commits with the group metadata `alive` refreshes, and a commit made
        with a generation a rebalance has since replaced is retried until it is refreshed.

        Raises:
            Whatever ended a stage, if one failed.
        """
        while (
            min(w.pending for w in self.writers) > QUEUED_WRITES
            or sum(lane.pending for lane in self.lanes) >= PUBLISHING
        ) and not stop.is_set():
            self.raise_if_failed()
            alive()  # waiting for the stages, which wait out any outage, is being alive
            time.sleep(_ROOM_POLL_S)
        self.raise_if_failed()

    def submit(self, batch: P) -> None:
        future: Future[W] = Future()
        turn = Turn(self._last_turn)
        min(self.writers, key=lambda w: w.pending).submit((batch, future))
        self._next_lane.submit((future, turn))
        self._submitted += 1
        self._last_turn = turn

    def _publish(self, publish: Publish[W], job: tuple[Future[W], Turn]) -> None:
        future, turn = job
        try:
            publish(self._written(future), turn)
        except BaseException:
            turn.finish(failed=True)
            raise
        turn.finish(failed=False)

    def _written(self, future: Future[W]) -> W:
        # A write stage that failed leaves the jobs queued behind the failed one unanswered.
        while True:
            try:
                return future.result(timeout=_ROOM_POLL_S * 100)
            except TimeoutError:
                for writer in self.writers:
                    writer.raise_if_failed()

    def raise_if_failed(self) -> None:
        for stage in self._all():
            stage.raise_if_failed()

    def drain(self, alive: Callable[[], None]) -> None:
        """Wait until every submitted micro-batch is published, calling `alive` meanwhile
        (see `wait_for_room`)."""
        for stage in self._all():
            stage.drain(alive)

    def _all(self) -> list[CommitStage[Any]]:
        return [*self.writers, *self.lanes]

    def close(self) -> None:
        for stage in self._all():
            stage.close()


def _fulfil(write: Callable[[P], W], job: _WriteJob[P, W]) -> None:
    """Run one write job; its outcome, result or failure, goes to the publish stage's future."""
    batch, future = job
    try:
        future.set_result(write(batch))
    except BaseException as exc:
        future.set_exception(exc)
        raise
