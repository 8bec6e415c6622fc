"""Waiting in a test for something to happen, with the evidence to show when it never does."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    what: str,
    done: Callable[[], bool],
    seconds: float,
    evidence: Callable[[], str],
    poll_s: float = 0.2,
) -> None:
    """Poll `done` until it holds; past `seconds`, fail with `what` and `evidence()` (a log)."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:.0f}s\n{evidence()}")
        time.sleep(poll_s)
