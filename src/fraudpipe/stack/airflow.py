"""Airflow 3 as four services of the stack: the api-server, the scheduler, the dag-processor and
the triggerer, each its own `airflow <component>` process in the foreground, all with the one
environment of `adapters.airflow.environment` (LocalExecutor, metadata in the stack's
PostgreSQL, Airflow's own login for the UI and REST API).

Health is Airflow's own: `GET /api/v2/monitor/health` on the api-server reports the metadata
database and each component's latest heartbeat. A heartbeat outlives its process by up to
Airflow's 30 s threshold, so a component whose process of ours has died counts as down at once.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from typing import ClassVar

import structlog

from fraudpipe.adapters.airflow import api
from fraudpipe.adapters.airflow.api import FRAUDPIPE_DAGS
from fraudpipe.adapters.airflow.environment import (
    airflow_env,
    airflow_executable,
    run_airflow,
    write_passwords_file,
)
from fraudpipe.errors import StackError
from fraudpipe.project import project_root
from fraudpipe.stack.base import Service

log = structlog.get_logger(__name__)

#: Seconds the dag-processor gets to store fraudpipe's DAGs after it starts.
_PARSE_SECONDS = 120.0


class AirflowComponent(Service):
    """One Airflow process; `health_key` names it in the health endpoint's answer."""

    component: ClassVar[str]
    health_key: ClassVar[str]
    #: Extra `airflow <component>` arguments.
    arguments: ClassVar[tuple[str, ...]] = ()

    @property
    def url(self) -> str:
        return f"{self.settings.airflow_url}/api/v2/monitor/health#{self.health_key}"

    def is_up(self) -> bool:
        if self.pid_file.exists() and self.managed_pid() is None:
            return False  # ours, and dead: its last heartbeat may still look recent
        status = api.health(self.settings)
        return status is not None and status.get(self.health_key) == "healthy"

    def version(self) -> str | None:
        return api.version(self.settings)

    def configuration(self) -> str:
        env = airflow_env(self.settings)
        return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()

    def launch(self) -> subprocess.Popen[bytes]:
        return self.spawn(
            [str(airflow_executable()), self.component, *self.arguments],
            env=airflow_env(self.settings),
            # Task processes import the DAG files and read `.env` from the checkout root.
            cwd=project_root(),
        )


class AirflowApiServer(AirflowComponent):
    """The UI, the REST API and the Execution API the scheduler's tasks report to."""

    name = "airflow-api-server"
    component = "api-server"
    health_key = "metadatabase"

    @property
    def url(self) -> str:
        return self.settings.airflow_url

    def install(self) -> None:
        """Migrate the metadata database (idempotent) and write the admin's login."""
        run_airflow(self.settings, "db", "migrate")
        write_passwords_file(self.settings)


class AirflowScheduler(AirflowComponent):
    name = "airflow-scheduler"
    component = "scheduler"
    health_key = "scheduler"
    # Its log server would bind every interface on 8793; the api-server reads the log files.
    arguments = ("--skip-serve-logs",)


class AirflowDagProcessor(AirflowComponent):
    name = "airflow-dag-processor"
    component = "dag-processor"
    health_key = "dag_processor"

    def after_start(self) -> None:
        """Wait until fraudpipe's DAGs are stored, then unpause them, or pause them when
        `airflow_unpause_dags` is off (a test stack: the schedules would ingest real days)."""
        paused = not self.settings.airflow_unpause_dags
        deadline = time.monotonic() + _PARSE_SECONDS
        with api.AirflowClient(self.settings) as client:
            while missing := set(FRAUDPIPE_DAGS) - set(client.dag_ids()):
                if time.monotonic() > deadline:
                    raise StackError(
                        self.name,
                        f"DAGs {sorted(missing)} not parsed within {_PARSE_SECONDS:.0f}s",
                        self.log_file,
                    )
                time.sleep(1.0)
            for dag_id in FRAUDPIPE_DAGS:
                if client.is_paused(dag_id) != paused:
                    client.set_paused(dag_id, paused)
                    log.info("paused" if paused else "unpaused", dag_id=dag_id)


class AirflowTriggerer(AirflowComponent):
    """Runs deferred tasks: `fraud_daily`'s wait for the batch to be scored."""

    name = "airflow-triggerer"
    component = "triggerer"
    health_key = "triggerer"
    arguments = ("--skip-serve-logs",)


def airflow_services() -> list[type[AirflowComponent]]:
    """The components in start order: the api-server first (the others' tasks report to it)."""
    return [AirflowApiServer, AirflowScheduler, AirflowDagProcessor, AirflowTriggerer]
