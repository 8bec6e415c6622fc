"""Local Prefect server, its database in PostgreSQL, its home under `.stack/prefect/`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from fraudpipe.stack.base import Service, http_ok, port_open


class PrefectService(Service):
    name = "prefect"

    @property
    def url(self) -> str:
        return self.settings.prefect_api_url

    def is_up(self) -> bool:
        s = self.settings
        return port_open(s.prefect_host, s.prefect_port) and http_ok(f"{self.url}/health")

    def version(self) -> str | None:
        try:
            response = httpx.get(f"{self.url}/admin/version", auth=self.login, timeout=2)
            return str(response.raise_for_status().json())
        except (httpx.HTTPError, ValueError):
            return None

    @property
    def login(self) -> tuple[str, str]:
        s = self.settings
        return s.prefect_api_user, s.prefect_api_password.get_secret_value()

    def configuration(self) -> str:
        env = self.server_env()
        return "\n".join(f"{k}={env[k]}" for k in sorted(env))

    def server_env(self) -> dict[str, str]:
        s = self.settings
        db_url = s.service_db_url(s.prefect_database).replace("+psycopg", "+asyncpg")
        return {
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_DATABASE_CONNECTION_URL": db_url,
            "PREFECT_SERVER_API_HOST": s.prefect_host,
            "PREFECT_SERVER_API_PORT": str(s.prefect_port),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
            # Every API request but `GET /health` logs in; the UI asks for the same login.
            "PREFECT_SERVER_API_AUTH_STRING": s.prefect_auth_string(),
            # `GET /api/metrics` for the stack's Prometheus (behind the same login).
            "PREFECT_API_ENABLE_METRICS": "true",
        }

    def launch(self) -> subprocess.Popen[bytes]:
        self.home.mkdir(parents=True, exist_ok=True)
        prefect = Path(sys.executable).parent / "prefect"
        s = self.settings
        return self.spawn(
            [
                str(prefect),
                "server",
                "start",
                "--host",
                s.prefect_host,
                "--port",
                str(s.prefect_port),
            ],
            env=self.server_env(),
        )
