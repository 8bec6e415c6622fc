"""Keeps the stack's scorers running: ``python -m fraudpipe.stack.supervisor``, started by
`stack up` (`stack.scorers.ScorersService`).

It runs `FRAUDPIPE_SCORERS` scoring services in one consumer group, each
``python -m consumers.scorer --metrics-port <FRAUDPIPE_METRICS_PORT + i>`` from the checkout
root, logging to ``<stack_dir>/logs/scorer-<i>.log``. A scorer that exits, whatever the reason,
is started again after a back-off that doubles from 1 s to 60 s and starts over once a scorer
has run for a minute: a crash loop (no champion yet, say) costs little, a one-off crash is
mended at once. SIGTERM stops every scorer with SIGTERM (each finishes and commits its
micro-batch), waits for them, then exits.

``<stack_dir>/run/scorers.json`` says which pid serves which port and how often each slot was
restarted; `stack status` reads it. ``<stack_dir>/prometheus/targets/scorers.json`` lists the
scorers' metrics addresses for Prometheus's file-based discovery, so Prometheus scrapes the
scorers that run, however many, with no restart of its own.

The loop itself (`Slot`, `keep_running`) keeps any command running: `stack.api` supervises the
scoring API with it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

import structlog

from fraudpipe.config import Settings, get_settings
from fraudpipe.logs import configure_logging
from fraudpipe.project import project_root

log = structlog.get_logger(__name__)

BACKOFF_FIRST_S: Final = 1.0
BACKOFF_MAX_S: Final = 60.0
#: A scorer that ran this long before it exited starts the back-off over.
STEADY_AFTER_S: Final = 60.0
#: How long a stopping scorer may take to finish its micro-batch before it is killed.
STOP_WAIT_S: Final = 60.0
_TICK_S: Final = 0.5


def state_file(settings: Settings, service: str = "scorers") -> Path:
    """Which pid a supervisor runs where, for `stack status`: ``run/<service>.json``."""
    return settings.stack_dir.resolve() / "run" / f"{service}.json"


def read_state(settings: Settings, service: str = "scorers") -> dict[str, Any]:
    """A supervisor's state file (`state_file`); empty when none runs."""
    try:
        state: dict[str, Any] = json.loads(state_file(settings, service).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return state


def targets_file(settings: Settings, service: str = "scorers") -> Path:
    """A supervised service's metrics addresses, in Prometheus's `file_sd` format."""
    return settings.stack_dir.resolve() / "prometheus" / "targets" / f"{service}.json"


def scorer_port(settings: Settings, index: int) -> int:
    """The metrics port of scorer `index`: one port each, so they never collide."""
    return settings.metrics_port + index


def scorer_command(port: int) -> list[str]:
    """Scorer `port`'s command line, run from the checkout's root."""
    return [sys.executable, "-m", "consumers.scorer", "--metrics-port", str(port)]


@dataclass
class Slot:
    """One process the supervisor keeps running: `command`, from the checkout's root."""

    index: int
    port: int
    log_file: Path
    command: Sequence[str]
    #: What the log calls it ("scorer", "api").
    role: str = "scorer"
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = 0.0
    next_start: float = 0.0
    last_exit: int | None = None
    history: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(
                list(self.command),
                cwd=project_root(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.started = time.monotonic()
        log.info(f"{self.role} started", index=self.index, pid=self.process.pid, port=self.port)

    def reap(self, now: float) -> None:
        """If the process has exited, schedule its restart after the back-off."""
        if self.process is None or (code := self.process.poll()) is None:
            return
        steady = now - self.started >= STEADY_AFTER_S
        self.backoff = (
            BACKOFF_FIRST_S if steady or not self.backoff else min(self.backoff * 2, BACKOFF_MAX_S)
        )
        self.next_start = now + self.backoff
        self.last_exit = code
        self.restarts += 1
        self.process = None
        log.warning(
            f"{self.role} exited; restarting after back-off",
            index=self.index,
            code=code,
            backoff_s=self.backoff,
            log_file=str(self.log_file),
        )

    def as_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "pid": self.process.pid if self.process else None,
            "port": self.port,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "log_file": str(self.log_file),
        }


def supervise(settings: Settings, stop: threading.Event) -> None:
    """Run `settings.scorers` scorers until `stop` is set, then stop them gracefully."""
    logs = settings.stack_dir.resolve() / "logs"
    slots = []
    for i in range(settings.scorers):
        port = scorer_port(settings, i)
        slots.append(Slot(i, port, logs / f"scorer-{i}.log", scorer_command(port)))
    addresses = [f"{settings.metrics_host}:{slot.port}" for slot in slots]
    write_atomically(targets_file(settings), json.dumps([{"targets": addresses}]))
    try:
        keep_running(slots, stop, state_file(settings), key="scorers")
    finally:
        write_atomically(targets_file(settings), "[]")


def keep_running(
    slots: Sequence[Slot],
    stop: threading.Event,
    state: Path,
    *,
    key: str,
    stop_wait_s: float = STOP_WAIT_S,
) -> None:
    """Keep each slot's process running until `stop` is set, then stop them gracefully.

    `state` says, under `key`, which pid each slot runs and how often it was restarted (and
    the supervisor's own pid), while the loop runs; it is removed once every process stopped.
    """
    written = ""
    try:
        while not stop.is_set():
            now = time.monotonic()
            for slot in slots:
                slot.reap(now)
                if slot.process is None and now >= slot.next_start:
                    slot.start()
            snapshot = json.dumps({"supervisor": os.getpid(), key: [s.as_json() for s in slots]})
            if snapshot != written:
                write_atomically(state, snapshot)
                written = snapshot
            stop.wait(_TICK_S)
    finally:
        _stop_all(slots, stop_wait_s)
        state.unlink(missing_ok=True)


def write_atomically(path: Path, text: str) -> None:
    """Readers (stack status, Prometheus) never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _stop_all(slots: Sequence[Slot], wait_s: float) -> None:
    running = [s.process for s in slots if s.process is not None and s.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_on_signals(who: str) -> threading.Event:
    """An event set by SIGTERM or SIGINT (logged as `who` stopping)."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info(f"{who} stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


def main() -> int:
    settings = get_settings()
    configure_logging(json=True)
    stop = stop_on_signals("supervisor")
    log.info("supervisor started", scorers=settings.scorers, first_port=settings.metrics_port)
    supervise(settings, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
