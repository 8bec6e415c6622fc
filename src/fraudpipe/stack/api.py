"""The stack's scoring API: `fraudpipe serve`, kept running by a supervisor of its own.

`stack up` starts ``python -m fraudpipe.stack.api`` (`ApiService`), which runs
``fraudpipe --json-logs serve --host <FRAUDPIPE_API_HOST> --port <FRAUDPIPE_API_PORT>
--workers <FRAUDPIPE_API_WORKERS>`` from the checkout root, and starts it again whenever it
exits, after the scorers' back-off (`stack.supervisor`: 1 s doubling to 60 s, over once it ran a
minute). SIGTERM (`stack down`) reaches the server, which shuts down gracefully (uvicorn: no
new connection, requests in flight answered); it is killed if it has not exited after
`STOP_WAIT_S`. The supervisor and the server log to ``<stack_dir>/logs/api.log``.

The server refuses to start without valid ``FRAUDPIPE_API_KEYS`` (`serving.keys`), and so does
the service: `stack up` says what is wrong with them instead of starting a server that can only
exit, and `stack status` says why it is down. `FRAUDPIPE_API_ENABLED=false` leaves it out of the
stack.

The service is up while its supervisor runs (or while something else answers `/healthz` on the
API's address: then it is not ours to start). Whether the server is *ready* (a verified
champion loaded, Kafka reachable, the decision recorder running) is what `/readyz` answers;
`stack status` shows it as the service's version column, with the model version it serves
(`api_status`). Until a first model is promoted the server runs and is not ready, which is no
failure of the stack. ``<stack_dir>/prometheus/targets/api.json`` lists its metrics address
while the supervisor runs, for Prometheus's job `fraudpipe_api` (`stack.prometheus`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import structlog

from fraudpipe.config import Settings
from fraudpipe.errors import ConfigurationError, StackError
from fraudpipe.logs import configure_logging
from fraudpipe.project import project_root
from fraudpipe.serving.keys import ApiKeys
from fraudpipe.stack.base import Service, ServiceStatus, http_ok
from fraudpipe.stack.supervisor import (
    Slot,
    keep_running,
    read_state,
    state_file,
    stop_on_signals,
    targets_file,
    write_atomically,
)

log = structlog.get_logger(__name__)

NAME: Final = "api"
#: How long a stopping server may take to answer the requests in flight before it is killed.
STOP_WAIT_S: Final = 30.0
#: What `stack status` shows when the API has no keys to accept (`up` adds `_KEYS_HINT`).
MISSING_KEYS: Final = "not started: FRAUDPIPE_API_KEYS is unset"
_KEYS_HINT: Final = (
    "`make bootstrap` adds a generated key to .env; FRAUDPIPE_API_ENABLED=false leaves the API "
    "out of the stack"
)


def reachable(host: str) -> str:
    """Where a client on this host reaches a server listening on `host` (a wildcard: loopback)."""
    if host in ("", "0.0.0.0"):  # noqa: S104  # recognising the wildcard, not binding to it
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def api_address(settings: Settings) -> str:
    """``host:port`` of the API as a client on this host reaches it."""
    return f"{reachable(settings.api_host)}:{settings.api_port}"


def keys_problem(settings: Settings) -> str | None:
    """Why `serve` would refuse FRAUDPIPE_API_KEYS (never showing a key), or None."""
    keys = settings.api_keys
    if keys is None or not keys.get_secret_value().strip():
        return MISSING_KEYS
    try:
        ApiKeys.parse(keys)
    except ConfigurationError as refused:
        return f"not started: {refused}"
    return None


def fraudpipe_command() -> str:
    """The `fraudpipe` console script of this interpreter's environment (the venv's), else
    the one on PATH."""
    beside = Path(sys.executable).with_name("fraudpipe")
    if beside.is_file():
        return str(beside)
    found = shutil.which("fraudpipe")
    if found is None:
        raise StackError(NAME, "the `fraudpipe` command is missing: run `uv sync`")
    return found


class ApiService(Service):
    name = NAME

    def __init__(
        self,
        settings: Settings,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        """Args: settings: the stack's; env: extra environment for the supervisor and the server
        (a test's database, topics); command: what to supervise instead of `fraudpipe serve`
        (a test's stand-in server)."""
        super().__init__(settings)
        self.env = dict(env or {})
        self._command = list(command) if command else None

    @property
    def url(self) -> str:
        return f"http://{api_address(self.settings)}"

    def command(self) -> list[str]:
        """The server's command line: `fraudpipe serve` on the settings' address and workers."""
        if self._command is not None:
            return self._command
        s = self.settings
        return [
            fraudpipe_command(),
            "--json-logs",
            "serve",
            "--host",
            s.api_host,
            "--port",
            str(s.api_port),
            "--workers",
            str(s.api_workers),
        ]

    def is_up(self) -> bool:
        return self._supervising() or http_ok(f"{self.url}/healthz")

    def _supervising(self) -> bool:
        pid = self.managed_pid()
        return pid is not None and read_state(self.settings, NAME).get("supervisor") == pid

    def version(self) -> str | None:
        return api_status(self.settings).summary()

    def configuration(self) -> str:
        keys = self.settings.api_keys
        return json.dumps(
            {
                "command": self.command(),
                "env": self.env,
                "keys": keys.get_secret_value() if keys is not None else None,
            },
            sort_keys=True,
        )

    def up(self) -> bool:
        """Start the supervisor unless the API already answers; refuse without valid API keys.

        Raises:
            StackError: FRAUDPIPE_API_KEYS is unset or `serve` would refuse it (a server of
                ours still running on keys since removed is stopped first).
        """
        problem = keys_problem(self.settings)
        if problem is not None:
            self.down()
            raise StackError(self.name, f"{problem} ({_KEYS_HINT})")
        return super().up()

    def launch(self) -> subprocess.Popen[bytes]:
        keys = self.settings.api_keys
        if keys is None:  # `up` refuses before it gets here
            raise StackError(self.name, MISSING_KEYS)
        s = self.settings
        return self.spawn(
            [
                sys.executable,
                "-m",
                "fraudpipe.stack.api",
                "--state",
                str(state_file(s, NAME)),
                "--targets",
                str(targets_file(s, NAME)),
                "--address",
                api_address(s),
                "--log-file",
                str(self.log_file),
                "--",
                *self.command(),
            ],
            # The keys through the environment (never a command line, which `ps` shows): the
            # server gets the ones `up` checked, whatever `.env` or `env` say.
            env={**self.env, "FRAUDPIPE_API_KEYS": keys.get_secret_value()},
            cwd=project_root(),  # the server reads `.env` there
        )

    def down(self, timeout: float = STOP_WAIT_S + 15) -> bool:
        """SIGTERM to the supervisor and the server, which answers its requests in flight."""
        return super().down(timeout)

    def status(self) -> ServiceStatus:
        problem = keys_problem(self.settings)
        if problem is not None and not self.is_up():
            return ServiceStatus(
                name=self.name,
                url=self.url,
                up=False,
                version=problem,
                managed=self.managed_pid() is not None,
            )
        return super().status()


@dataclass(frozen=True)
class ApiStatus:
    """The supervised API, as the supervisor's state file and the server's endpoints report it
    (None: not reported)."""

    pid: int | None
    restarts: int
    last_exit: int | None
    answering: bool
    ready: bool
    #: The checks `/readyz` reports failing.
    failing: tuple[str, ...]
    model_version: int | None

    def summary(self) -> str:
        """One line for `stack status`: ready or not and why, the model served, restarts."""
        if self.ready:
            text = f"ready, model v{self.model_version}" if self.model_version else "ready"
        elif self.answering:
            text = "not ready" + (f": {', '.join(self.failing)} failing" if self.failing else "")
        elif self.pid is None and self.last_exit is not None:
            text = f"restarting (exited with code {self.last_exit})"
        else:
            text = "starting"
        if self.restarts:
            text += f"; {self.restarts} restart{'s' if self.restarts > 1 else ''}"
        return text


def api_status(settings: Settings) -> ApiStatus:
    """The API's readiness (`/readyz`), model version (`/metrics`) and supervision."""
    state = read_state(settings, NAME)
    slot: dict[str, Any] = next(iter(state.get(NAME, [])), {})
    base = f"http://{api_address(settings)}"
    answering, ready = False, False
    failing: tuple[str, ...] = ()
    version: int | None = None
    try:
        answer = httpx.get(f"{base}/readyz", timeout=2)
        answering, ready = True, answer.is_success
        failing, version = _readiness(answer)
    except httpx.HTTPError:
        pass
    pid, last_exit = slot.get("pid"), slot.get("last_exit")
    return ApiStatus(
        pid=int(pid) if pid is not None else None,
        restarts=int(slot.get("restarts", 0)),
        last_exit=int(last_exit) if last_exit is not None else None,
        answering=answering,
        ready=ready,
        failing=failing,
        model_version=version,
    )


def _readiness(answer: httpx.Response) -> tuple[tuple[str, ...], int | None]:
    """The checks a `/readyz` answer of `serving.app` reports failing, and the version it
    serves (None: no model yet, or not that answer)."""
    try:
        body = answer.json()
    except ValueError:
        return (), None
    if not isinstance(body, dict):
        return (), None
    checks = body.get("checks")
    failing = (
        tuple(sorted(name for name, ok in checks.items() if ok is not True))
        if isinstance(checks, dict)
        else ()
    )
    version = body.get("model_version")
    served = type(version) is int and version > 0
    return failing, version if served else None


# -- the supervisor: python -m fraudpipe.stack.api ------------------------------------------


def supervise(
    command: Sequence[str],
    *,
    state: Path,
    targets: Path,
    address: str,
    log_file: Path,
    stop: threading.Event,
) -> None:
    """Keep `command` running until `stop` is set, then stop it gracefully; Prometheus finds
    its metrics at `address` meanwhile."""
    port = int(address.rpartition(":")[2])
    slot = Slot(0, port, log_file, command, role="api")
    write_atomically(targets, json.dumps([{"targets": [address]}]))
    try:
        keep_running([slot], stop, state, key=NAME, stop_wait_s=STOP_WAIT_S)
    finally:
        write_atomically(targets, "[]")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fraudpipe.stack.api",
        description="Keep the scoring API running (started by `fraudpipe stack up`).",
    )
    parser.add_argument("--state", type=Path, required=True, help="the state file to keep")
    parser.add_argument("--targets", type=Path, required=True, help="Prometheus' file_sd file")
    parser.add_argument("--address", required=True, help="host:port of the server's /metrics")
    parser.add_argument("--log-file", type=Path, required=True, help="the server's log")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the server's command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to supervise (after --)")
    configure_logging(json=True)
    stop = stop_on_signals("api supervisor")
    log.info("api supervisor started", address=args.address)
    supervise(
        command,
        state=args.state,
        targets=args.targets,
        address=args.address,
        log_file=args.log_file,
        stop=stop,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
