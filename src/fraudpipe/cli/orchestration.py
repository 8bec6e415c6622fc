"""`fraudpipe deployments` and `fraudpipe airflow`: Prefect's deployments, Airflow's environment."""

from __future__ import annotations

import typer
from rich.table import Table

from fraudpipe.cli.output import console, domain_errors
from fraudpipe.config import get_settings

deployments_app = typer.Typer(help="Prefect deployments of the flows (prefect.yaml).")
airflow_app = typer.Typer(help="Airflow's environment and metadata database.")


@deployments_app.command("apply")
@domain_errors
def deployments_apply_cmd() -> None:
    """Create the work pool if missing, then create or update every deployment of prefect.yaml."""
    from fraudpipe.orchestration.deployments import apply_deployments

    settings = get_settings()
    with console.status("prefect deploy --all ..."):
        applied = apply_deployments(settings)
    table = Table(title=f"Prefect deployments (work pool {settings.prefect_work_pool})")
    for col in ("deployment", "entrypoint", "work pool", "id"):
        table.add_column(col)
    for d in applied:
        table.add_row(d.name, d.entrypoint, d.work_pool, d.deployment_id)
    console.print(table)


@airflow_app.command("migrate")
@domain_errors
def airflow_migrate_cmd() -> None:
    """Create or upgrade Airflow's metadata database in the stack's PostgreSQL (idempotent)."""
    from fraudpipe.adapters.airflow.environment import migrate_airflow_db

    with console.status("airflow db migrate ..."):
        last_line = migrate_airflow_db(get_settings())
    console.print(last_line, highlight=False)


@airflow_app.command("env")
@domain_errors
def airflow_env_cmd() -> None:
    """Print `export` lines for Airflow's environment (includes the metadata DB password)."""
    from fraudpipe.adapters.airflow.environment import airflow_env, export_lines

    for line in export_lines(airflow_env(get_settings())):
        typer.echo(line)
