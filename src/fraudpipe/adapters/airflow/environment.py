"""Airflow's environment, built from fraudpipe settings, and the `airflow` commands that use it.

Airflow reads its configuration when `airflow` is first imported, so everything goes through
environment variables: `airflow_env` builds them, the stack launches its four Airflow processes
with them, `apply_airflow_env` puts them into this process before an in-process `dag.test()`,
and `run_airflow` hands them to an `airflow` subprocess. Every process gets the same variables:
the scheduler signs the tokens its task processes present to the api-server, and the api-server
encrypts what the triggerer decrypts, so their secrets must agree. Connections and variables
come from the same env (`AIRFLOW_CONN_*`, `AIRFLOW_VAR_*`), never from the UI, so a fresh
metadata database needs nothing but `airflow db migrate`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from fraudpipe.config import Settings
from fraudpipe.errors import AirflowCommandError, ConfigurationError
from fraudpipe.private_files import write_private
from fraudpipe.project import project_root


def airflow_home(settings: Settings) -> Path:
    """Airflow's home (its generated `airflow.cfg`, logs): `<stack_dir>/airflow`."""
    return settings.stack_dir.resolve() / "airflow"


def airflow_env(settings: Settings, *, log_level: str = "INFO") -> dict[str, str]:
    """The environment variables that configure Airflow for fraudpipe.

    Args:
        settings: fraudpipe settings; the metadata DB is `settings.airflow_database` in the
            stack's PostgreSQL, owned by the services role.
        log_level: Airflow's own log level (the demo keeps it to warnings and errors).

    Returns:
        Variable name to value, secrets included (the metadata DB password): print with care.
    """
    s = settings
    sync_url = s.service_db_url(s.airflow_database)
    app_pg = _postgres_connection(s, s.pg_app_user, s.pg_app_password.get_secret_value())
    home = airflow_home(s)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project_root() / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "utc",
        # A new DAG starts paused: `stack up` unpauses fraudpipe's own (`airflow_unpause_dags`);
        # anything else dropped into dags/ waits for someone to ask.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sync_url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": sync_url.replace("+psycopg", "+asyncpg"),
        "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
        "AIRFLOW__API__HOST": s.airflow_host,
        "AIRFLOW__API__PORT": str(s.airflow_port),
        "AIRFLOW__API__BASE_URL": s.airflow_url,
        # One uvicorn process: each more loads Airflow again (about 250 MB).
        "AIRFLOW__API__WORKERS": "1",
        # The scheduler's task processes reach the Execution API here (else localhost:8080).
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{s.airflow_url}/execution/",
        # LocalExecutor forks this many workers up front (32 by default); fraudpipe's tasks
        # mostly wait on Prefect runs and deferred sensors.
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        # Re-parse the two DAG files every 2 minutes, not 30 s: parsing imports Airflow's SDK
        # and costs CPU on a 2-core machine; a changed file is still seen within 2 minutes.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "120",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # Airflow's own logins: one admin, whose password fraudpipe writes (see
        # `write_passwords_file`); Airflow would generate one for a user missing from it.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{s.airflow_admin_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(s)),
        "AIRFLOW__API_AUTH__JWT_SECRET": _derived_secret(s, "jwt", 64).hex(),
        "AIRFLOW__API__SECRET_KEY": _derived_secret(s, "api", 32).hex(),
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(
            _derived_secret(s, "fernet", 32)
        ).decode(),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": log_level,
        # Connections come from env only (never the UI), for operators and Airflow-native
        # checks; the DAGs' own code reads fraudpipe settings, the one source of endpoints.
        "AIRFLOW_CONN_FRAUDPIPE_POSTGRES": json.dumps(app_pg),
        "AIRFLOW_CONN_FRAUDPIPE_PREFECT": json.dumps(
            {"conn_type": "http", "host": s.prefect_api_url}
        ),
    }


def passwords_file(settings: Settings) -> Path:
    """Airflow's login file (SimpleAuthManager): the admin's password, mode 600."""
    return airflow_home(settings) / "passwords.json"


def write_passwords_file(settings: Settings) -> None:
    """Write the admin's password from the settings into Airflow's login file (idempotent)."""
    path = passwords_file(settings)
    secret = settings.airflow_admin_password.get_secret_value()
    write_private(path, json.dumps({settings.airflow_admin_user: secret}))


def _derived_secret(settings: Settings, purpose: str, size: int) -> bytes:
    """A key for one of Airflow's secrets, derived from `airflow_secret` (one secret in `.env`,
    one key per purpose, each as long as its algorithm wants: HS512 warns below 64 bytes)."""
    secret = settings.airflow_secret.get_secret_value().encode()
    return hashlib.shake_256(b"fraudpipe-airflow-" + purpose.encode() + b"\0" + secret).digest(size)


def _postgres_connection(settings: Settings, user: str, password: str) -> dict[str, object]:
    return {
        "conn_type": "postgres",
        "host": settings.pg_host,
        "port": settings.pg_port,
        "login": user,
        "password": password,
        "schema": settings.pg_database,
    }


def export_lines(env: dict[str, str]) -> list[str]:
    """Shell `export` lines for `env`, quoted for POSIX shells."""
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]


def apply_airflow_env(settings: Settings, *, log_level: str = "INFO") -> None:
    """Put Airflow's environment into this process, before `airflow` is imported.

    Raises:
        ConfigurationError: `airflow` was already imported with another home; its
            configuration cannot change any more in this process.
    """
    env = airflow_env(settings, log_level=log_level)
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != env["AIRFLOW_HOME"]:
        raise ConfigurationError(
            "airflow was imported before fraudpipe set its environment "
            f"(AIRFLOW_HOME={os.environ.get('AIRFLOW_HOME')!r}): call apply_airflow_env first, "
            "or run in a fresh process"
        )
    airflow_home(settings).mkdir(parents=True, exist_ok=True)
    os.environ.update(env)


def airflow_executable() -> Path:
    """The `airflow` script of this virtual environment."""
    return Path(sys.executable).parent / "airflow"


def run_airflow(
    settings: Settings, *args: str, timeout: float = 600.0
) -> subprocess.CompletedProcess[str]:
    """Run `airflow <args>` with fraudpipe's Airflow environment from the checkout root.

    Raises:
        AirflowCommandError: the command exited non-zero (its output is in the message).
    """
    airflow_home(settings).mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [str(airflow_executable()), *args],
        env={**os.environ, **airflow_env(settings)},
        cwd=project_root(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AirflowCommandError(" ".join(args), result.returncode, result.stdout + result.stderr)
    return result


def migrate_airflow_db(settings: Settings) -> str:
    """Create or upgrade Airflow's metadata database (`airflow db migrate`); idempotent.

    Returns:
        Where the database is now, for a progress line.
    """
    run_airflow(settings, "db", "migrate")
    return f"{settings.airflow_database} migrated to Airflow's head revision"
