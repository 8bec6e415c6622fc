"""The scoring service as a background process the demo starts, watches and stops.

`python -m consumers.scorer` from the checkout root, JSON logs to `<stack_dir>/logs/`, stopped
with SIGTERM (the service finishes its micro-batch, commits and exits).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from fraudpipe.config import Settings
from fraudpipe.errors import StackError
from fraudpipe.project import project_root

#: A scorer that survives this long after start has loaded its model and joined the group.
_STARTUP_GRACE_SECONDS = 5.0
_STOP_SECONDS = 60.0


class ScorerProcess:
    """A `consumers.scorer` subprocess; a context manager that stops it on exit.

    Args:
        settings: Where its log goes (`<stack_dir>/logs/<name>.log`).
        name: Log file stem, and the name in errors.
        env: Extra environment (e.g. a test's FRAUDPIPE_PG_DATABASE and topics).
        metrics_port: Its Prometheus port (0: none).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        name: str = "scorer",
        env: Mapping[str, str] | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.name = name
        self.log_file = settings.stack_dir.resolve() / "logs" / f"{name}.log"
        self.env = dict(env or {})
        self.metrics_port = settings.metrics_port if metrics_port is None else metrics_port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> None:
        """Start the scorer and check it is still running after a short grace period.

        Raises:
            StackError: it exited at once (no champion model, port taken, ...); see its log.
        """
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "consumers.scorer",
                    "--metrics-port",
                    str(self.metrics_port),
                ],
                cwd=project_root(),
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not it
            )
        deadline = time.monotonic() + _STARTUP_GRACE_SECONDS
        while time.monotonic() < deadline:
            self.check_alive()
            time.sleep(0.2)

    def check_alive(self) -> None:
        """Raise if the scorer has exited.

        Raises:
            StackError: the process is gone (its log says why).
        """
        if self.process is None:
            raise StackError(self.name, "was never started", self.log_file)
        code = self.process.poll()
        if code is not None:
            raise StackError(self.name, f"exited with code {code}", self.log_file)

    def stop(self) -> int | None:
        """SIGTERM, wait for the graceful exit (SIGKILL after a minute); returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> ScorerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of its log (for error messages)."""
        path = Path(self.log_file)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
