"""Local MLflow tracking server: runs and registry in PostgreSQL, artifacts in `.stack/mlflow/`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from fraudpipe.stack.base import Service, http_ok, port_open


class MlflowService(Service):
    name = "mlflow"

    @property
    def url(self) -> str:
        return self.settings.mlflow_tracking_uri

    def is_up(self) -> bool:
        s = self.settings
        return port_open(s.mlflow_host, s.mlflow_port) and http_ok(f"{self.url}/health")

    def version(self) -> str | None:
        try:
            return httpx.get(f"{self.url}/version", timeout=2).text.strip() or None
        except httpx.HTTPError:
            return None

    def launch(self) -> subprocess.Popen[bytes]:
        s = self.settings
        artifacts = self.home / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        mlflow = Path(sys.executable).parent / "mlflow"
        return self.spawn(
            [
                str(mlflow),
                "server",
                # Clients upload through the server (mlflow-artifacts:/), so they need no
                # filesystem access to the artifact store.
                "--artifacts-destination",
                str(artifacts),
                "--serve-artifacts",
                "--host",
                s.mlflow_host,
                "--port",
                str(s.mlflow_port),
                "--workers",
                "2",
            ],
            env={
                # The database URL holds a password: in the environment (readable by this user
                # alone), never on the command line (readable by every user of the host).
                "MLFLOW_BACKEND_STORE_URI": s.service_db_url(s.mlflow_database),
                "MLFLOW_DISABLE_TELEMETRY": "true",
                # The job runner (GenAI evaluation jobs) adds four worker processes we never use.
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            },
        )
