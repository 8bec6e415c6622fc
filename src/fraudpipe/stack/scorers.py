"""The stack's scorers: a supervised service (`stack.supervisor`) running `FRAUDPIPE_SCORERS`
scoring services in one consumer group, and what each one reports on its health and metrics
endpoints (pid, model version served, partitions held, lag, age of the last commit).

The service is up while its supervisor runs: a scorer waiting for its first champion, or being
restarted, is the supervisor's job, and `scorer_statuses` shows it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fraudpipe.config import Settings
from fraudpipe.project import project_root
from fraudpipe.stack.base import Service
from fraudpipe.stack.supervisor import STOP_WAIT_S, read_state

_METRICS_PREFIX = "fraudpipe_scorer"


@dataclass(frozen=True)
class ScorerStatus:
    """One supervised scorer, as its endpoints report it (None: not reported)."""

    index: int
    pid: int | None
    port: int
    restarts: int
    ready: bool
    model_version: int | None
    partitions: int | None
    lag: float | None
    last_commit_age_s: float | None


class ScorersService(Service):
    name = "scorers"

    def __init__(self, settings: Settings, env: Mapping[str, str] | None = None) -> None:
        """Args: settings: the stack's; env: extra environment for the supervisor and its
        scorers (a test's database, topics and group)."""
        super().__init__(settings)
        self.env = dict(env or {})

    @property
    def url(self) -> str:
        s = self.settings
        return f"http://{s.metrics_host}:{s.metrics_port}/readyz"

    def is_up(self) -> bool:
        pid = self.managed_pid()
        return pid is not None and read_state(self.settings).get("supervisor") == pid

    def version(self) -> str | None:
        versions = sorted(
            {s.model_version for s in scorer_statuses(self.settings) if s.model_version}
        )
        served = ", ".join(f"v{v}" for v in versions) or "no model yet"
        return f"{self.settings.scorers} × model {served}"

    def configuration(self) -> str:
        s = self.settings
        described = {"scorers": s.scorers, "port": s.metrics_port, "env": self.env}
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()

    def launch(self) -> subprocess.Popen[bytes]:
        return self.spawn(
            [sys.executable, "-m", "fraudpipe.stack.supervisor"],
            env=self.env,
            cwd=project_root(),  # the scorers read `.env` there
        )

    def down(self, timeout: float = STOP_WAIT_S + 15) -> bool:
        """SIGTERM to the supervisor and its scorers; each finishes its micro-batch first."""
        return super().down(timeout)


def scorer_statuses(settings: Settings) -> list[ScorerStatus]:
    """Each supervised scorer from the supervisor's state file and its own endpoints."""
    entries = read_state(settings).get("scorers", [])
    return [_status(settings.metrics_host, entry) for entry in entries]


def _status(host: str, entry: dict[str, object]) -> ScorerStatus:
    port = int(str(entry["port"]))
    base = f"http://{host}:{port}"
    ready, samples = False, {}
    try:
        ready = httpx.get(f"{base}/readyz", timeout=2).is_success
        samples = _samples(httpx.get(f"{base}/metrics", timeout=2).text)
    except httpx.HTTPError:
        pass
    lags = samples.get("consumer_lag", [])
    version = samples.get("model_version", [])
    age = samples.get("last_commit_age_seconds", [])
    pid = entry.get("pid")
    return ScorerStatus(
        index=int(str(entry["index"])),
        pid=int(str(pid)) if pid is not None else None,
        port=port,
        restarts=int(str(entry.get("restarts", 0))),
        ready=ready,
        model_version=int(version[0]) if version and version[0] > 0 else None,
        partitions=len(lags) if samples else None,
        lag=sum(lags) if lags else None,
        last_commit_age_s=age[0] if age else None,
    )


def _samples(text: str) -> dict[str, list[float]]:
    """The values of each `fraudpipe_scorer_*` gauge, by name without the prefix."""
    found: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith(_METRICS_PREFIX):
            name = family.name.removeprefix(_METRICS_PREFIX + "_")
            found.setdefault(name, []).extend(s.value for s in family.samples)
    return found
