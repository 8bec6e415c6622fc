"""A stage of the pipeline in its own thread: one item at a time, first in first out.

The scorer runs its write stages and its publish stage this way (`pipeline`): while one
micro-batch waits on PostgreSQL (psycopg releases the GIL) or on the broker's
acknowledgements, the consume loop decodes and scores the next. At most one item waits in a
stage's queue: a slow database holds the consume loop back instead of piling scored work up in
memory.

A failure in the stage (a fatal Kafka error, a stop during an outage, a bug) stops the stage
and is re-raised in the consume loop by `raise_if_failed()`; nothing after the failed
micro-batch is committed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_S = 0.1


class CommitStage(Generic[T]):
    """Runs `handle(item)` for each submitted item, in order, in one background thread."""

    def __init__(self, handle: Callable[[T], None], name: str = "scorer-commit") -> None:
        self._handle = handle
        self._queue: queue.Queue[T | None] = queue.Queue(maxsize=1)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> None:
        """Queue an item, waiting while the previous one is still queued.

        Raises:
            Whatever ended the stage, if it failed.
        """
        while True:
            self.raise_if_failed()
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    @property
    def pending(self) -> int:
        """Items submitted and not yet handled (queued or in progress)."""
        return self._queue.unfinished_tasks

    def drain(self, waiting: Callable[[], None] | None = None) -> None:
        """Wait until every submitted item is handled (or the stage failed).

        Args:
            waiting: Called between waits (the caller's duties while it waits).

        Raises:
            Whatever ended the stage, if it failed.
        """
        while self._queue.unfinished_tasks and self._failure is None:
            if waiting is not None:
                waiting()
            with self._queue.all_tasks_done:
                self._queue.all_tasks_done.wait(_POLL_S)
        self.raise_if_failed()

    def close(self) -> None:
        """Stop the thread after the items already queued (does not raise)."""
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=_POLL_S)
                break
            except queue.Full:
                continue  # the thread is still busy with an item, or just failed on it
        self._thread.join()

    def raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._handle(item)
            # Not swallowed: handed to the consume loop, which re-raises it (raise_if_failed).
            except BaseException as exc:  # noqa: BLE001
                self._failure = exc
                return
            finally:
                self._queue.task_done()
