"""What every local service has in common: a health probe, a detached process, bounded waits.

A service is started only when its probe fails, and only a service we started gets a pid file
under `.stack/run/`, so `stack down` never touches a server someone else runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog

from fraudpipe.config import Settings
from fraudpipe.errors import StackError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    url: str
    up: bool
    version: str | None
    managed: bool


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0, auth: tuple[str, str] | None = None) -> bool:
    """True when GET url (as `auth`'s user, with HTTP basic auth) answers 2xx."""
    try:
        return httpx.get(url, timeout=timeout, auth=auth).is_success
    except httpx.HTTPError:
        return False


def wait_until(
    probe: Callable[[], bool],
    *,
    service: str,
    timeout: float,
    log_file: Path | None = None,
    process: subprocess.Popen[bytes] | None = None,
    interval: float = 0.5,
) -> None:
    """Poll `probe` until it is true; fail fast if the process died, else after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        if process is not None and process.poll() is not None:
            raise StackError(
                service, f"process exited with code {process.returncode} while starting", log_file
            )
        time.sleep(interval)
    raise StackError(service, f"not healthy after {timeout:.0f}s", log_file)


class Service(ABC):
    """One local service: install once, start when absent, probe, stop what we started."""

    name: str
    #: Signal that asks the service to shut down cleanly.
    stop_signal: signal.Signals = signal.SIGTERM

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # -- paths -------------------------------------------------------------------------------
    @property
    def home(self) -> Path:
        return self.settings.stack_dir.resolve() / self.name

    @property
    def log_file(self) -> Path:
        return self.settings.stack_dir.resolve() / "logs" / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.settings.stack_dir.resolve() / "run" / f"{self.name}.pid"

    # -- what each service defines -----------------------------------------------------------
    @property
    @abstractmethod
    def url(self) -> str:
        """Where clients reach it."""

    @abstractmethod
    def is_up(self) -> bool:
        """Cheap health probe."""

    @abstractmethod
    def version(self) -> str | None:
        """Version reported by the running service, None when unknown."""

    def install(self) -> None:  # noqa: B027  # optional hook: most services need nothing
        """Fetch binaries/jars and prepare data directories, once (idempotent)."""

    @abstractmethod
    def launch(self) -> subprocess.Popen[bytes]:
        """Spawn the service process (use `spawn`)."""

    def after_start(self) -> None:  # noqa: B027  # optional hook
        """Post-start provisioning (users, databases, topics), idempotent."""

    def configuration(self) -> str:
        """What the service is launched with that a restart must pick up (listeners, logins).

        `up` restarts a process of ours launched with anything else; only a digest of it is
        kept (`run/<name>.config`), so it may hold secrets. Empty: nothing to compare.
        """
        return ""

    @property
    def _config_digest_file(self) -> Path:
        return self.pid_file.with_suffix(".config")

    def _config_digest(self) -> str:
        configuration = self.configuration()
        return hashlib.sha256(configuration.encode()).hexdigest() if configuration else ""

    def launched_outdated(self) -> bool:
        """True when our running process was launched with another `configuration()`.

        The record names the process it describes: one launched by anything else (an older
        fraudpipe, say) has none of its own and counts as outdated.
        """
        expected = self._config_digest()
        if not expected:
            return False
        try:
            pid, _, digest = self._config_digest_file.read_text().strip().partition(" ")
        except FileNotFoundError:
            return True
        return pid != str(self.managed_pid()) or digest != expected

    # -- shared behaviour --------------------------------------------------------------------
    def spawn(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start `cmd` detached in its own session, output to the log file, pid recorded."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **(env or {})}
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                list(cmd),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=cwd,
                start_new_session=True,  # survives the CLI, and stop() can kill its whole group
            )
        self.pid_file.write_text(str(proc.pid))
        self._config_digest_file.write_text(f"{proc.pid} {self._config_digest()}")
        return proc

    def managed_pid(self) -> int | None:
        """Pid of the process we started, if it is still alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def up(self) -> bool:
        """Start the service unless it already answers. Returns True when we started it.

        A process of ours that is alive but does not answer (say PostgreSQL, where it keeps
        its data, is restarting) is waited for, not doubled: a second copy cannot bind the port,
        yet it would take over the pid file and leave the first for no `down` to stop. One that
        does not answer within `stack_wait_seconds` is stopped and replaced, and so is one
        launched with an earlier `configuration()` (security turned on, say).
        """
        if self.managed_pid() is not None and self.launched_outdated():
            log.info("restarting with its new configuration", service=self.name)
            self.down()
        if self.is_up():
            self.after_start()
            return False
        if self.managed_pid() is not None:
            try:
                wait_until(
                    self.is_up,
                    service=self.name,
                    timeout=self.settings.stack_wait_seconds,
                    log_file=self.log_file,
                )
            except StackError:
                self.down()
            else:
                self.after_start()
                return False
        self.install()
        proc = self.launch()
        wait_until(
            self.is_up,
            service=self.name,
            timeout=self.settings.stack_wait_seconds,
            log_file=self.log_file,
            process=proc,
        )
        self.after_start()
        return True

    def down(self, timeout: float = 30.0) -> bool:
        """Stop the process group we started (TERM, then KILL). Returns True if one was stopped."""
        pid = self.managed_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal_group(pid, self.stop_signal)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> ServiceStatus:
        up = self.is_up()
        return ServiceStatus(
            name=self.name,
            url=self.url,
            up=up,
            version=self.version() if up else None,
            managed=self.managed_pid() is not None,
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours still "exists"; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
