"""Wait out an outage: retry with exponential back-off, bounded per attempt, unbounded overall.

A scorer that gives up during a PostgreSQL or broker outage would need a person to restart it;
one that waits loses nothing, because offsets of unfinished work are never committed. Only a
stop request (SIGTERM) ends the waiting, by raising `StopRequested`; the caller then closes
without committing, and the work is redone after the restart.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

T = TypeVar("T")

log = structlog.get_logger(__name__)


class StopRequested(Exception):  # noqa: N818  # a signal to unwind, not an error
    """A stop was requested while waiting for a service to come back."""


@dataclass(frozen=True)
class Backoff:
    """Delays of successive attempts: `first`, doubling, capped at `cap`, with ±20 % jitter."""

    first: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        base = min(self.cap, self.first * 2 ** (attempt - 1))
        # Jitter spreads the reconnects of several scorers after a shared outage.
        return float(base * random.uniform(0.8, 1.2))  # noqa: S311  # not cryptographic


def retry_until_done(
    action: Callable[[], T],
    *,
    what: str,
    retry_on: tuple[type[BaseException], ...],
    stop: threading.Event,
    backoff: Backoff = Backoff(),
    on_failure: Callable[[BaseException], None] | None = None,
) -> T:
    """Run `action` until it succeeds, waiting longer after each failure of a `retry_on` kind.

    Args:
        action: The work; it must be safe to repeat (each call starts over).
        what: What is being done, for the log ("write predictions").
        retry_on: Errors meaning "a service is away"; anything else propagates at once.
        stop: Set by a shutdown request; ends the wait.
        backoff: The delay schedule.
        on_failure: Called with each retried error (metrics).

    Returns:
        What `action` returned.

    Raises:
        StopRequested: `stop` was set while waiting.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return action()
        except retry_on as exc:
            if on_failure is not None:
                on_failure(exc)
            wait = backoff.delay(attempt)
            log.warning(
                "retrying after failure",
                what=what,
                attempt=attempt,
                retry_in_s=round(wait, 2),
                error_type=type(exc).__name__,
                error=str(exc),
            )
            if stop.wait(wait):
                raise StopRequested(what) from exc
