"""A real `fraudpipe serve` process for the scoring API's tests, and transactions to send it.

`ApiServer` starts the command as a user would, on a free port, with topics, model and
recorder group of the test's own (`scoring_support.own_settings`) and a key of its own, and
waits until `/readyz` says it is ready. Requests go over real HTTP.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from ports import free_port
from scoring_support import scorer_env
from waiting import wait_for

from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.columns import V_COLUMNS
from fraudpipe.config import Settings

READY_S = 90.0


def transaction(rng: np.random.Generator, *, fraud_like: bool = False) -> dict[str, Any]:
    """One valid request body, with a fresh id."""
    body: dict[str, Any] = {
        "transaction_id": str(uuid.uuid4()),
        "batch_id": "pos:2026-12-05",
        "source": "pos",
        "event_time": "2026-12-05T10:00:00Z",
        "amount": round(float(rng.lognormal(3.0, 1.0)), 2),
        **{v: float(rng.normal(0.0, 1.0)) for v in V_COLUMNS},
    }
    if fraud_like:
        body["v14"] -= 8.0
        body["v17"] -= 6.0
    return body


@dataclass
class ApiServer:
    """One `fraudpipe serve` process on its own port."""

    settings: Settings
    log_path: Path
    workers: int = 1
    #: More FRAUDPIPE_* settings for this server only.
    extra_env: dict[str, str] = field(default_factory=dict)
    key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return (
            scorer_env(self.settings)
            | {
                "FRAUDPIPE_TOPIC_DECISIONS": self.settings.topic_decisions,
                "FRAUDPIPE_API_RECORDER_GROUP": self.settings.api_recorder_group,
                "FRAUDPIPE_API_KEYS": f"test={self.key},other={secrets.token_urlsafe(24)}",
                "FRAUDPIPE_API_MODEL_POLL_S": "0.5",
            }
            | self.extra_env
        )

    def start(self) -> ApiServer:
        command = [
            str(Path(sys.executable).with_name("fraudpipe")), "serve",
            "--port", str(self.port), "--workers", str(self.workers),
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=os.getcwd(),
            start_new_session=True,  # its own process group, so its workers can be killed too
        )
        try:
            wait_for("the API ready", self.ready, READY_S, self.not_ready)
        except BaseException:
            # Its recorder would stay a member of the test's group, and the group's deletion
            # at teardown would fail too.
            self.kill_group()
            raise
        return self

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the API exited ({self.process.returncode})\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def not_ready(self) -> str:
        """Why it is not ready: `/readyz`'s checks, then the log's tail."""
        try:
            checks = httpx.get(f"{self.url}/readyz", timeout=5.0).text
        except httpx.HTTPError as exc:
            checks = f"/readyz unanswered: {exc!r}"
        return f"{checks}\n{self.log()}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-API-Key": self.key if key is None else key}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10.0)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def kill_group(self) -> None:
        """SIGKILL the server and its worker processes at once."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def recorded(settings: Settings, ids: list[str]) -> dict[str, tuple[int, float, bool]]:
    """The decisions PostgreSQL holds for some ids: version, score, verdict."""
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT transaction_id::text, model_version, score, is_fraud FROM api_decisions "
            "WHERE transaction_id = ANY(%s::uuid[])",
            (ids,),
        ).fetchall()
    return {tx: (version, score, flag) for tx, version, score, flag in rows}


def wait_recorded(server: ApiServer, ids: list[str], seconds: float = 60.0) -> None:
    """Until every id's decision is in PostgreSQL."""
    wait_for(
        f"{len(ids)} decisions recorded",
        lambda: len(recorded(server.settings, ids)) == len(ids),
        seconds,
        lambda: f"{len(recorded(server.settings, ids))} recorded\n{server.log()}",
    )
