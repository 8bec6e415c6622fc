"""The stack's scoring API service (`stack.api`), with a stand-in for `fraudpipe serve`.

`ApiService` is run for real: `up` spawns its supervisor (``python -m fraudpipe.stack.api``)
in a private stack directory, which runs a small HTTP server answering `/healthz`, `/readyz`
and `/metrics` the way the API does. The test SIGKILLs that server and sees it started again,
reads readiness and model version through `stack status`'s view, and stops everything with
`down`. Without FRAUDPIPE_API_KEYS nothing starts and the status says why.

What does NOT run: `fraudpipe serve` itself (uvicorn, the model, Kafka); that the command line
the service builds is one `serve` accepts is checked against the CLI once the command exists.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ports import free_port
from pydantic import SecretStr
from waiting import wait_for

from fraudpipe.config import Settings
from fraudpipe.errors import StackError
from fraudpipe.stack.api import (
    MISSING_KEYS,
    ApiService,
    _readiness,
    api_status,
    reachable,
)
from fraudpipe.stack.manager import services
from fraudpipe.stack.prometheus import API_JOB, PrometheusService
from fraudpipe.stack.supervisor import state_file, targets_file

pytestmark = pytest.mark.unit

KEYS = "local=k3y-of-the-unit-test,ops=an0ther-key-of-the-test"

# Answers like the API (`serving.app`): /healthz alive; /readyz 503 with its checks until
# `ready_flag` exists, then 200; /metrics the model version served (0: none). Records its pid
# and the keys its environment gave it, one JSON line per start.
STAND_IN = r"""
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port, ready_flag, starts = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(starts, "a") as out:
    keys = os.environ.get("FRAUDPIPE_API_KEYS")
    out.write(json.dumps({"pid": os.getpid(), "keys": keys}) + "\n")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        ready = os.path.exists(ready_flag)
        kind = "application/json"
        if self.path == "/healthz":
            code, body = 200, {"ok": True}
        elif self.path == "/readyz":
            checks = {"model": ready, "kafka": True, "recorder": True}
            body = {"ready": ready, "checks": checks, "model_version": 3 if ready else None}
            code = 200 if ready else 503
        elif self.path == "/metrics":
            kind = "text/plain; version=0.0.4"
            code, body = 200, None
            text = "# TYPE fraudpipe_api_model_version gauge\n"
            text += f"fraudpipe_api_model_version {3 if ready else 0}\n"
        else:
            code, body = 404, {}
        data = text.encode() if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


@pytest.fixture
def private(settings: Settings, tmp_path: Path) -> Settings:
    """The settings with a stack directory, API port and keys of this test's own."""
    return settings.model_copy(
        update={
            "stack_dir": tmp_path / "stack",
            "stack_wait_seconds": 20.0,
            "api_host": "127.0.0.1",
            "api_port": free_port(),
            "api_workers": 1,
            "api_keys": SecretStr(KEYS),
            "api_enabled": True,
        }
    )


@pytest.fixture
def stand_in(private: Settings, tmp_path: Path) -> Iterator[ApiService]:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    command = [
        sys.executable,
        str(script),
        str(private.api_port),
        str(tmp_path / "ready"),
        str(tmp_path / "starts.jsonl"),
    ]
    service = ApiService(private, command=command)
    yield service
    service.down(timeout=10)


def _starts(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "starts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_the_api_is_supervised_restarted_and_stopped(
    stand_in: ApiService, private: Settings, tmp_path: Path
) -> None:
    def evidence() -> str:
        return stand_in.log_file.read_text()[-3000:] if stand_in.log_file.exists() else "-"

    assert stand_in.up() is True
    supervisor = stand_in.managed_pid()
    assert supervisor is not None
    wait_for("the server answering", lambda: api_status(private).answering, 20, evidence)

    # Up (supervised) but not ready: no model yet, which `stack status` shows with the reason.
    status = stand_in.status()
    assert (status.up, status.managed, status.url) == (True, True, stand_in.url)
    assert status.version == "not ready: model failing"
    address = f"127.0.0.1:{private.api_port}"
    assert json.loads(targets_file(private, "api").read_text()) == [{"targets": [address]}]
    assert stand_in.up() is False  # already up: nothing started twice

    # The keys reach the server through its environment, never a command line.
    (first,) = _starts(tmp_path)
    assert first["keys"] == KEYS
    server = api_status(private).pid
    assert server == first["pid"]
    assert KEYS not in _cmdline(server)
    assert KEYS not in _cmdline(supervisor)

    # A server that dies is started again after the back-off.
    os.kill(server, signal.SIGKILL)
    wait_for(
        "the killed server restarted and answering",
        lambda: (s := api_status(private)).pid not in (None, server) and s.answering,
        30,
        evidence,
    )
    assert api_status(private).restarts == 1
    (tmp_path / "ready").touch()
    wait_for("ready", lambda: api_status(private).ready, 10, evidence)
    assert stand_in.status().version == "ready, model v3; 1 restart"

    # Down stops the supervisor and the server, and takes the target away from Prometheus.
    restarted = api_status(private).pid
    assert restarted is not None
    assert stand_in.down(timeout=10) is True
    assert stand_in.managed_pid() is None
    assert not _alive(supervisor) and not _alive(restarted)
    assert not state_file(private, "api").exists()
    assert json.loads(targets_file(private, "api").read_text()) == []
    assert stand_in.status().up is False
    log = stand_in.log_file
    assert log == private.stack_dir.resolve() / "logs" / "api.log"
    assert "api exited; restarting after back-off" in log.read_text()


@pytest.mark.parametrize("keys", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_without_keys_nothing_starts_and_the_status_says_why(
    private: Settings, keys: str | None
) -> None:
    keyless = private.model_copy(update={"api_keys": None if keys is None else SecretStr(keys)})
    service = ApiService(keyless, command=[sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(StackError, match="FRAUDPIPE_API_KEYS is unset") as raised:
        service.up()
    assert "make bootstrap" in str(raised.value)
    assert service.managed_pid() is None
    status = service.status()
    assert (status.up, status.version) == (False, MISSING_KEYS)


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ("local=", "entry 1 is not name=key"),
        ("local=short", "the key of 'local' is shorter than 16 characters"),
        ("a=k3y-long-enough-1,a=k3y-long-enough-2", "names 'a' twice"),
    ],
)
def test_keys_serve_would_refuse_start_nothing(private: Settings, keys: str, reason: str) -> None:
    """What `fraudpipe serve` refuses, `stack up` refuses with its reason, never the key."""
    refused = private.model_copy(update={"api_keys": SecretStr(keys)})
    service = ApiService(refused, command=[sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(StackError, match=reason) as raised:
        service.up()
    assert "k3y" not in str(raised.value)
    assert service.managed_pid() is None
    status = service.status()
    assert status.up is False
    assert status.version is not None and reason in status.version


def test_keys_removed_stop_a_server_of_ours(stand_in: ApiService, private: Settings) -> None:
    assert stand_in.up() is True
    supervisor = stand_in.managed_pid()
    assert supervisor is not None
    keyless = ApiService(private.model_copy(update={"api_keys": None}))
    with pytest.raises(StackError):
        keyless.up()
    assert not _alive(supervisor)
    assert keyless.managed_pid() is None


def test_a_server_someone_else_runs_is_not_started_twice(
    stand_in: ApiService, private: Settings, tmp_path: Path
) -> None:
    """Something answering /healthz on the API's address is up, and not ours."""
    assert stand_in.up() is True
    wait_for("the server answering", lambda: api_status(private).answering, 20, lambda: "")
    other_dir = private.model_copy(update={"stack_dir": tmp_path / "other"})
    other = ApiService(other_dir, command=[sys.executable, "-c", "raise SystemExit(3)"])
    assert other.up() is False
    assert other.managed_pid() is None
    status = other.status()
    assert (status.up, status.managed) == (True, False)
    assert status.version == "not ready: model failing"


def test_the_command_is_fraudpipe_serve_on_the_settings_address(private: Settings) -> None:
    command = ApiService(private).command()
    assert Path(command[0]).name == "fraudpipe"
    assert command[1:] == [
        "--json-logs",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(private.api_port),
        "--workers",
        "1",
    ]
    assert not any(KEYS in part for part in command)


def test_serve_accepts_the_options_the_stack_passes() -> None:
    from typer.testing import CliRunner

    from fraudpipe.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"])
    if result.exit_code != 0 and "No such command" in result.output:
        pytest.skip("`fraudpipe serve` does not exist yet")
    assert result.exit_code == 0, result.output
    for option in ("--host", "--port", "--workers"):
        assert option in result.output


def test_a_changed_key_restarts_the_api(private: Settings) -> None:
    """`stack up` restarts a running API launched with other keys, host, port or workers."""
    before = ApiService(private).configuration()
    assert ApiService(private).configuration() == before
    for change in (
        {"api_keys": SecretStr("local=another")},
        {"api_port": private.api_port + 1},
        {"api_workers": 2},
    ):
        assert ApiService(private.model_copy(update=change)).configuration() != before, change


def test_the_api_comes_last_in_the_stack_unless_disabled(private: Settings) -> None:
    names = [service.name for service in services(private)]
    assert names[-1] == "api" and names.count("api") == 1
    disabled = private.model_copy(update={"api_enabled": False})
    assert "api" not in [service.name for service in services(disabled)]


def test_prometheus_scrapes_the_api_from_its_supervisors_targets(private: Settings) -> None:
    jobs = {job["job_name"]: job for job in PrometheusService(private).config()["scrape_configs"]}
    assert API_JOB == "fraudpipe_api"
    assert jobs[API_JOB]["file_sd_configs"] == [
        {"files": [str(targets_file(private, "api"))], "refresh_interval": "10s"}
    ]
    assert "basic_auth" not in jobs[API_JOB]  # /metrics needs no key


@pytest.mark.parametrize(
    ("body", "failing", "version"),
    [
        (
            {"ready": False, "checks": {"model": False, "kafka": True, "recorder": False}},
            ("model", "recorder"),
            None,
        ),
        ({"ready": True, "checks": {"model": True, "kafka": True}, "model_version": 7}, (), 7),
        # Anything but true fails a check; a version must be a positive integer.
        (
            {"checks": {"model": "yes", "kafka": None}, "model_version": True},
            ("kafka", "model"),
            None,
        ),
        ({"checks": [], "model_version": 0}, (), None),
        (["not", "an", "object"], (), None),
    ],
)
def test_readiness_is_read_from_readyz(
    body: object, failing: tuple[str, ...], version: int | None
) -> None:
    assert _readiness(httpx.Response(503, json=body)) == (failing, version)
    assert _readiness(httpx.Response(503, text="not json")) == ((), None)


def test_a_wildcard_address_is_reached_on_loopback() -> None:
    assert reachable("0.0.0.0") == "127.0.0.1"
    assert reachable("::") == "[::1]"
    assert reachable("::1") == "[::1]"
    assert reachable("10.0.0.5") == "10.0.0.5"
