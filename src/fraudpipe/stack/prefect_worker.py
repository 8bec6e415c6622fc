"""The Prefect worker that runs fraudpipe's deployments: a `process` worker on the stack's pool.

Each flow run becomes a subprocess of the worker, started from the checkout root so the flows
read the same `.env` and settings as the CLI. The worker is up when the Prefect API has seen it
(or another worker of the pool) heartbeat recently.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as package_version
from pathlib import Path

import httpx

from fraudpipe.stack.base import Service

#: Seconds between the worker's polls for scheduled runs (Prefect's default of 10 adds up to
#: several idle seconds per flow run when Airflow waits on each one).
_QUERY_SECONDS = 2
#: Seconds between heartbeats; a worker silent for three of them counts as gone.
_HEARTBEAT_SECONDS = 15
#: Flow runs at once: ingest, publish and retrain are each CPU-heavy on a 2-core machine.
_CONCURRENT_RUNS = 2


class PrefectWorkerService(Service):
    name = "prefect-worker"

    @property
    def worker_name(self) -> str:
        return f"fraudpipe-{socket.gethostname()}"

    @property
    def url(self) -> str:
        ui = self.settings.prefect_api_url.rstrip("/").removesuffix("/api")
        return f"{ui}/work-pools/work-pool/{self.settings.prefect_work_pool}"

    def live_workers(self) -> list[str]:
        """Names of the pool's workers that heartbeat recently, per the Prefect API."""
        api = self.settings.prefect_api_url.rstrip("/")
        try:
            s = self.settings
            response = httpx.post(
                f"{api}/work_pools/{s.prefect_work_pool}/workers/filter",
                json={},
                auth=(s.prefect_api_user, s.prefect_api_password.get_secret_value()),
                timeout=2,
            )
        except httpx.HTTPError:
            return []
        if not response.is_success:  # 404: the pool does not exist yet
            return []
        cutoff = datetime.now(UTC) - timedelta(seconds=3 * _HEARTBEAT_SECONDS)
        live: list[str] = []
        for worker in response.json():
            beat = worker.get("last_heartbeat_time")
            if beat and datetime.fromisoformat(beat) >= cutoff and worker.get("status") == "ONLINE":
                live.append(str(worker["name"]))
        return live

    def is_up(self) -> bool:
        live = self.live_workers()
        if any(name != self.worker_name for name in live):
            return True
        # Our own worker's last heartbeat outlives it by up to three intervals after a stop;
        # only a live process of ours makes it count.
        return self.worker_name in live and self.managed_pid() is not None

    def configuration(self) -> str:
        return self.settings.prefect_client_env()["PREFECT_API_AUTH_STRING"]

    def version(self) -> str | None:
        # Workers do not report a version to the API; ours runs from this environment's Prefect.
        return package_version("prefect")

    def launch(self) -> subprocess.Popen[bytes]:
        from fraudpipe.project import project_root

        self.home.mkdir(parents=True, exist_ok=True)
        prefect = Path(sys.executable).parent / "prefect"
        s = self.settings
        return self.spawn(
            [
                str(prefect),
                "worker",
                "start",
                "--pool",
                s.prefect_work_pool,
                "--type",
                "process",
                "--name",
                self.worker_name,
                "--limit",
                str(_CONCURRENT_RUNS),
                "--install-policy",
                "never",
            ],
            env={
                # The login reaches the flow runs too: they inherit the worker's environment.
                **s.prefect_client_env(),
                "PREFECT_HOME": str(self.home),
                "PREFECT_WORKER_QUERY_SECONDS": str(_QUERY_SECONDS),
                "PREFECT_WORKER_HEARTBEAT_SECONDS": str(_HEARTBEAT_SECONDS),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            },
            # Flow runs inherit the worker's directory: the checkout root, where `.env` lives.
            cwd=project_root(),
        )
