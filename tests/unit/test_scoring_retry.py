"""Back-off retries: waiting out a named outage, giving way to a stop, never hiding bugs."""

from __future__ import annotations

import threading

import pytest

from fraudpipe.errors import ServiceUnavailableError
from fraudpipe.retry import Backoff, StopRequested, retry_until_done

pytestmark = pytest.mark.unit

FAST = Backoff(first=0.001, cap=0.004)


def test_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(first=1.0, cap=8.0)
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        assert 0.8 * base <= backoff.delay(attempt) <= 1.2 * base


def test_retries_until_the_service_is_back() -> None:
    calls: list[int] = []
    failures: list[BaseException] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ServiceUnavailableError("PostgreSQL", "127.0.0.1:5432")
        return "done"

    result = retry_until_done(
        flaky,
        what="write",
        retry_on=(ServiceUnavailableError,),
        stop=threading.Event(),
        backoff=FAST,
        on_failure=failures.append,
    )
    assert result == "done" and len(calls) == 4 and len(failures) == 3


def test_a_stop_request_ends_the_wait() -> None:
    stop = threading.Event()
    stop.set()

    def down() -> None:
        raise ServiceUnavailableError("Kafka", "127.0.0.1:9092")

    with pytest.raises(StopRequested):
        retry_until_done(down, what="commit", retry_on=(ServiceUnavailableError,), stop=stop)


def test_other_errors_propagate_at_once() -> None:
    calls: list[int] = []

    def buggy() -> None:
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        retry_until_done(
            buggy, what="x", retry_on=(ServiceUnavailableError,), stop=threading.Event()
        )
    assert calls == [1]
