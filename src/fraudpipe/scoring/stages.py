"""The scorer's write stages and its publish stage, driven as one by the consume loop.

Micro-batches go to the least busy write stage (each its own PostgreSQL connection) and, as a
future of that write, to the one publish stage, which waits for each future in turn: writes
overlap, outputs and offsets go out in consumption order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import partial
from typing import Generic, TypeVar

from fraudpipe.scoring.commit_stage import CommitStage

P = TypeVar("P")
"""A micro-batch ready to write."""
W = TypeVar("W")
"""A written micro-batch, ready to publish."""

_ROOM_POLL_S = 0.001
#: Micro-batches that may wait behind a write stage's current one. Few: while every write
#: stage is busy, new messages gather in the client's queue and form one larger micro-batch.
QUEUED_WRITES = 1
#: Micro-batches that may wait behind the one being published (the publish stage's queue).
QUEUED_PUBLISHES = 1

#: A micro-batch handed to a write stage, and where its outcome will appear.
_WriteJob = tuple[P, "Future[W]"]


class Stages(Generic[P, W]):
    """The write stages and the publish stage, driven as one.

    Each micro-batch goes to the least busy write stage and, as a future of its write, to the
    publish stage, in consumption order; the publish stage waits for each future in turn.
    """

    def __init__(
        self,
        writers: Sequence[Callable[[P], W]],
        publish: Callable[[W], None],
    ) -> None:
        self.publish: CommitStage[Future[W]] = CommitStage(
            lambda future: publish(self._written(future)), "scorer-publish"
        )
        self.writers: list[CommitStage[_WriteJob[P, W]]] = [
            CommitStage(partial(_fulfil, write), f"scorer-write-{i}")
            for i, write in enumerate(writers)
        ]

    def wait_for_room(self, stop: threading.Event, alive: Callable[[], None]) -> None:
        """Wait until a write stage could take a micro-batch (see `QUEUED_WRITES`) and the
        publish stage could queue it, calling `alive` meanwhile.

        The consume loop must never block in `submit` instead: with output transactions, the
        publish stage commits with the group metadata `alive` refreshes, and a commit made
        with a generation a rebalance has since replaced is retried until it is refreshed.

        Raises:
            Whatever ended a stage, if one failed.
        """
        while (
            min(w.pending for w in self.writers) > QUEUED_WRITES
            or self.publish.pending > QUEUED_PUBLISHES
        ) and not stop.is_set():
            self.raise_if_failed()
            alive()  # waiting for the stages, which wait out any outage, is being alive
            time.sleep(_ROOM_POLL_S)
        self.raise_if_failed()

    def submit(self, batch: P) -> None:
        future: Future[W] = Future()
        min(self.writers, key=lambda w: w.pending).submit((batch, future))
        self.publish.submit(future)

    def _written(self, future: Future[W]) -> W:
        # A write stage that failed leaves the jobs queued behind the failed one unanswered.
        while True:
            try:
                return future.result(timeout=_ROOM_POLL_S * 100)
            except TimeoutError:
                for writer in self.writers:
                    writer.raise_if_failed()

    def raise_if_failed(self) -> None:
        for writer in self.writers:
            writer.raise_if_failed()
        self.publish.raise_if_failed()

    def drain(self, alive: Callable[[], None]) -> None:
        """Wait until every submitted micro-batch is published, calling `alive` meanwhile
        (see `wait_for_room`)."""
        for writer in self.writers:
            writer.drain(alive)
        self.publish.drain(alive)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        self.publish.close()


def _fulfil(write: Callable[[P], W], job: _WriteJob[P, W]) -> None:
    """Run one write job; its outcome, result or failure, goes to the publish stage's future."""
    batch, future = job
    try:
        future.set_result(write(batch))
    except BaseException as exc:
        future.set_exception(exc)
        raise
