"""A deadline for librdkafka calls that can block for ever whatever timeout they are given.

librdkafka 2.16 can stay in ``send_offsets_to_transaction`` for good once the group coordinator
went away: the coordinator request's own timeout is never checked (librdkafka issue 5456), and
a request parked on a coordinator that came back may never be woken again (issue 5511). Seen in
``tests/reliability/test_broker_kill.py``: 1 run in 3, the scorer sat in that call for the
test's whole 300 s after the broker was back, with its timeout set to 10 s. The Java producer
bounds the same call with ``max.block.ms`` (KAFKA-10309); a C call cannot be interrupted from
Python, so the bound is kept from outside: the call runs on a thread of its own, and the caller
stops waiting at the deadline and abandons the client (see `TransactionalProducer`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

T = TypeVar("T")

_Call = tuple[Callable[[], object], "Future[object]"]


class CallOverran(Exception):  # noqa: N818  # the name says what happened, as TimeoutError does
    """A call outlived its deadline; it is still blocked on its abandoned thread."""


class BoundedCalls:
    """Runs calls one at a time on a daemon thread, each waited for at most `deadline_s`.

    A daemon thread, not a `ThreadPoolExecutor`: the executor's threads are joined at
    interpreter exit, and one blocked for good would keep the process from ending.
    """

    def __init__(self, deadline_s: float, name: str) -> None:
        self.deadline_s = deadline_s
        self._name = name
        self._calls: queue.SimpleQueue[_Call | None] = self._start()

    def call(self, fn: Callable[[], T]) -> T:
        """`fn()`'s result or exception, if it ends within the deadline.

        Raises:
            CallOverran: It did not; later calls run on a new thread, the blocked one exits
                if the call ever returns.
        """
        future: Future[object] = Future()
        self._calls.put((fn, future))
        try:
            return future.result(timeout=self.deadline_s)  # type: ignore[return-value]
        except FutureTimeout:
            self._calls.put(None)  # the blocked thread ends once (if ever) its call returns
            self._calls = self._start()
            raise CallOverran(f"{self._name}: no answer in {self.deadline_s:g} s") from None

    def close(self) -> None:
        """End the thread once its current call, if any, returns."""
        self._calls.put(None)

    def _start(self) -> queue.SimpleQueue[_Call | None]:
        calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        threading.Thread(target=_serve, args=(calls,), name=self._name, daemon=True).start()
        return calls


def _serve(calls: queue.SimpleQueue[_Call | None]) -> None:
    while (item := calls.get()) is not None:
        fn, future = item
        try:
            future.set_result(fn())
        except BaseException as exc:  # noqa: BLE001  # handed to the caller, who decides
            future.set_exception(exc)
