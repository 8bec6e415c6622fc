"""Bring the whole local stack up in dependency order, down in reverse, and report status."""

from __future__ import annotations

import fcntl
import grp
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from fraudpipe.config import Settings
from fraudpipe.errors import StackError
from fraudpipe.stack.base import Service, ServiceStatus


def services(settings: Settings) -> list[Service]:
    """The stack's services in start order: PostgreSQL first, since the others store in it."""
    # Imported here so importing the manager stays cheap (the CLI imports it eagerly).
    from fraudpipe.stack.airflow import airflow_services
    from fraudpipe.stack.api import ApiService
    from fraudpipe.stack.kafka import KafkaService
    from fraudpipe.stack.mlflow_server import MlflowService
    from fraudpipe.stack.postgres import PostgresService
    from fraudpipe.stack.prefect_server import PrefectService
    from fraudpipe.stack.prefect_worker import PrefectWorkerService
    from fraudpipe.stack.prometheus import PrometheusService
    from fraudpipe.stack.pushgateway import PushgatewayService
    from fraudpipe.stack.registry import RegistryService
    from fraudpipe.stack.scorers import ScorersService

    return [
        PostgresService(settings),
        KafkaService(settings),
        RegistryService(settings),
        MlflowService(settings),
        PrefectService(settings),
        PrefectWorkerService(settings),  # runs the deployments: needs the Prefect server
        # Airflow's tasks launch Prefect deployments: after the worker that runs them.
        *(component(settings) for component in airflow_services()),
        *([ScorersService(settings)] if settings.scorers else []),
        PushgatewayService(settings),  # holds the batch jobs' metrics
        PrometheusService(settings),  # scrapes the scorers, the API and the Pushgateway
        # The scoring API needs what the scorers need. Last: without FRAUDPIPE_API_KEYS its
        # `up` refuses, once everything else runs.
        *([ApiService(settings)] if settings.api_enabled else []),
    ]


def stack_up(
    settings: Settings, on_service: Callable[[str, bool], None] | None = None
) -> list[ServiceStatus]:
    """Start every service that does not already answer; idempotent, and one at a time."""
    with _one_at_a_time(settings):
        for service in services(settings):
            started = service.up()
            if on_service:
                on_service(service.name, started)
    return stack_status(settings)


@contextmanager
def _one_at_a_time(settings: Settings) -> Iterator[None]:
    """Hold the stack directory's lock: one `up` or `provision` at a time.

    Two at once (two shells, or `make test`'s two pytest workers starting together) would
    provision the same roles and users together, and PostgreSQL refuses the second
    `ALTER ROLE` ("tuple concurrently updated"); the second waits here instead.
    """
    make_private(settings.stack_dir)
    with (settings.stack_dir / "up.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def provision(settings: Settings, on_step: Callable[[str], None] | None = None) -> None:
    """Give services that run elsewhere (compose, a cluster) fraudpipe's principals; idempotent.

    What `stack_up` does after starting each service, for services it did not start: the
    PostgreSQL roles and databases (as the superuser of the settings), the Kafka users and
    ACLs, the MLflow users and their grants, and Airflow's admin login file (written before
    Airflow's api-server starts, which reads it). Each service must already answer.
    """
    from fraudpipe.adapters.airflow.environment import write_passwords_file
    from fraudpipe.stack.kafka import KafkaService
    from fraudpipe.stack.mlflow_server import MlflowService
    from fraudpipe.stack.postgres import PostgresService

    with _one_at_a_time(settings):
        for service in (PostgresService(settings), KafkaService(settings), MlflowService(settings)):
            if not service.is_up():
                raise StackError(service.name, f"does not answer at {service.url}")
            service.after_start()
            if on_step:
                on_step(service.name)
        write_passwords_file(settings)
    if on_step:
        on_step("airflow admin login")


def make_private(stack_dir: Path) -> None:
    """The stack's directory, readable by its owner alone.

    It holds data directories, logs and pid files. As root, PostgreSQL runs as the `postgres`
    user, whose server has its data under it: that user's group may pass through the directory
    (0710: traverse, not list); nobody else may enter.
    """
    from fraudpipe.stack.postgres import SERVER_OS_USER

    stack_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = grp.getgrnam(SERVER_OS_USER) if os.geteuid() == 0 else None
    except KeyError:
        server = None
    if server is None:
        stack_dir.chmod(0o700)
        return
    os.chown(stack_dir, -1, server.gr_gid)
    stack_dir.chmod(0o710)


def stack_down(settings: Settings) -> list[str]:
    """Stop the services this stack started (never someone else's); returns their names."""
    return [svc.name for svc in reversed(services(settings)) if svc.down()]


def stack_status(settings: Settings) -> list[ServiceStatus]:
    return [svc.status() for svc in services(settings)]
