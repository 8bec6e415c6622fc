"""`Service.up` with a process of ours that stops answering: wait for it, or replace it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fraudpipe.config import Settings
from fraudpipe.stack.base import Service

pytestmark = pytest.mark.unit


class _Sleeper(Service):
    """A real process (a sleeping Python) whose health answer the test decides."""

    name = "sleeper"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.answering = False
        self.silent_probes = 0  # probes still to answer False once `answering` is set
        self.launches = 0

    @property
    def url(self) -> str:
        return "test://sleeper"

    def is_up(self) -> bool:
        if not self.answering:
            return False
        if self.silent_probes:
            self.silent_probes -= 1
            return False
        return True

    def version(self) -> str | None:
        return None

    def launch(self) -> subprocess.Popen[bytes]:
        self.launches += 1
        self.answering = True
        return self.spawn([sys.executable, "-c", "import time; time.sleep(120)"])


@pytest.fixture
def sleeper(settings: Settings, tmp_path: Path) -> Iterator[_Sleeper]:
    private = settings.model_copy(update={"stack_dir": tmp_path, "stack_wait_seconds": 3.0})
    service = _Sleeper(private)
    yield service
    service.down(timeout=5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_process_of_ours_that_answers_again_is_waited_for_not_doubled(
    sleeper: _Sleeper,
) -> None:
    assert sleeper.up() is True
    first = sleeper.managed_pid()
    assert first is not None

    sleeper.silent_probes = 3  # e.g. its database restarting: a few failed probes, then fine
    assert sleeper.up() is False

    assert sleeper.launches == 1
    assert sleeper.managed_pid() == first
    assert sleeper.down(timeout=5) is True
    assert not _alive(first)


def test_a_process_of_ours_that_stays_silent_is_stopped_and_replaced(sleeper: _Sleeper) -> None:
    assert sleeper.up() is True
    first = sleeper.managed_pid()
    assert first is not None

    sleeper.answering = False  # until the next launch
    assert sleeper.up() is True

    assert sleeper.launches == 2
    second = sleeper.managed_pid()
    assert second is not None and second != first
    assert not _alive(first)
