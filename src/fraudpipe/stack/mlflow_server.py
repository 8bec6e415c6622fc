"""Local MLflow tracking server: runs and registry in PostgreSQL, artifacts in `.stack/mlflow/`.

It runs MLflow's basic-auth app: every request logs in, users and grants live in their own
database (`mlflow_auth_database`), and `fraudpipe.adapters.mlflow.server_auth` decides who
moves aliases. The admin is created by the server at its first start; `after_start` creates the
pipeline's principals (`fraudpipe.adapters.mlflow.users`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from fraudpipe.adapters.mlflow.principals import ADMIN_VARIABLE, PROMOTER_VARIABLE, basic_auth
from fraudpipe.adapters.mlflow.users import provision_users
from fraudpipe.private_files import write_private
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
            response = httpx.get(
                f"{self.url}/version", auth=basic_auth(self.settings, "reader"), timeout=2
            )
        except httpx.HTTPError:
            return None
        if not response.is_success:
            return None
        return response.text.strip() or None

    @property
    def auth_config_file(self) -> Path:
        return self.home / "basic_auth.ini"

    def auth_config(self) -> str:
        """The basic-auth app's configuration: no password in it (those come by environment)."""
        s = self.settings
        # psycopg takes the password from PGPASSWORD; `%` is configparser's interpolation.
        database = f"postgresql+psycopg://{s.pg_services_user}@{s.pg_host}:{s.pg_port}/"
        return (
            "[mlflow]\n"
            "default_permission = NO_PERMISSIONS\n"
            f"database_uri = {(database + s.mlflow_auth_database).replace('%', '%%')}\n"
            f"admin_username = {s.mlflow_admin_user}\n"
            "authorization_function = fraudpipe.adapters.mlflow.server_auth:authenticate\n"
            # Checking a password (PBKDF2) cost ~0.4 s a request here; a login is checked once
            # a minute per worker instead. A changed password reaches the other worker then.
            "auth_cache_ttl_seconds = 60\n"
        )

    def server_env(self) -> dict[str, str]:
        """Secrets in the environment (readable by this user alone), never on the command line."""
        s = self.settings
        return {
            "MLFLOW_BACKEND_STORE_URI": s.service_db_url(s.mlflow_database),
            "MLFLOW_AUTH_CONFIG_PATH": str(self.auth_config_file),
            "MLFLOW_AUTH_ADMIN_PASSWORD": s.mlflow_admin_password.get_secret_value(),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": s.mlflow_server_secret.get_secret_value(),
            "PGPASSWORD": s.pg_services_password.get_secret_value(),
            ADMIN_VARIABLE: s.mlflow_admin_user,
            PROMOTER_VARIABLE: s.mlflow_promoter_user,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            # The job runner (GenAI evaluation jobs) adds four worker processes we never use.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }

    def configuration(self) -> str:
        env = self.server_env()
        return self.auth_config() + "\n".join(f"{k}={env[k]}" for k in sorted(env))

    def after_start(self) -> None:
        provision_users(self.settings)

    def launch(self) -> subprocess.Popen[bytes]:
        s = self.settings
        artifacts = self.home / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        mlflow = Path(sys.executable).parent / "mlflow"
        write_private(self.auth_config_file, self.auth_config())
        return self.spawn(
            [
                str(mlflow),
                "server",
                "--app-name",
                "basic-auth",
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
            env=self.server_env(),
        )
