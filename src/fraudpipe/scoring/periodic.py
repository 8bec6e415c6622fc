"""Run slow housekeeping beside the consume loop, so it never delays a micro-batch.

Asking MLflow whether the champion moved (and loading the new version), or checking whether a
145k-row batch is fully scored, takes from milliseconds to seconds on a loaded machine. Done in
the loop it would stall every message behind it and show up in the latency percentiles; in a
thread it overlaps the loop's waits. An unexpected error in the task is not swallowed: the
thread stops and `raise_if_failed()` re-raises it in the loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Periodic:
    """Calls `action` every `every_s` seconds in a daemon thread until `stop()`."""

    def __init__(self, name: str, every_s: float, action: Callable[[], object]) -> None:
        self._action = action
        self._every = every_s
        self._done = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current call (if any) returns."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def raise_if_failed(self) -> None:
        """Re-raise, in the caller's thread, an error that ended the task."""
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        while not self._done.wait(self._every):
            try:
                self._action()
            # Not swallowed: handed over to the loop, which re-raises it (raise_if_failed).
            except Exception as exc:  # noqa: BLE001
                self._failure = exc
                return
