"""`BoundedCalls`: a call's result or error within the deadline, `CallOverran` past it."""

from __future__ import annotations

import threading

import pytest

from fraudpipe.adapters.kafka.bounded_call import BoundedCalls, CallOverran


def test_a_call_that_ends_in_time_gives_its_result_or_its_error() -> None:
    calls = BoundedCalls(5.0, "test-calls")
    assert calls.call(lambda: 41 + 1) == 42
    with pytest.raises(ZeroDivisionError):
        calls.call(lambda: 1 / 0)
    calls.close()


def test_a_blocked_call_is_abandoned_and_the_next_one_runs_on_a_new_thread() -> None:
    release = threading.Event()
    calls = BoundedCalls(0.2, "blocked-calls")
    with pytest.raises(CallOverran, match=r"no answer in 0\.2 s"):
        calls.call(release.wait)
    serving = calls.call(threading.current_thread)
    abandoned = [t for t in threading.enumerate() if t.name == "blocked-calls" and t is not serving]
    assert len(abandoned) == 1, "the abandoned thread is still in its call"
    release.set()  # its call returns at last: the abandoned thread ends
    abandoned[0].join(timeout=5)
    assert not abandoned[0].is_alive()
    assert serving.is_alive()
    calls.close()
