"""`fraudpipe stack`: start, stop and show the local services."""

from __future__ import annotations

import typer
from rich.table import Table

from fraudpipe.cli.output import console, domain_errors
from fraudpipe.config import get_settings

app = typer.Typer(
    help="The local service stack (PostgreSQL, Kafka, registry, MLflow, Prefect, Airflow, "
    "the supervised scorers)."
)


def print_status() -> None:
    from fraudpipe.stack.manager import stack_status

    table = Table(title="fraudpipe stack")
    for col in ("service", "url", "state", "version", "started by us"):
        table.add_column(col)
    all_up = True
    for st in stack_status(get_settings()):
        all_up &= st.up
        state = "[green]up[/]" if st.up else "[red]down[/]"
        table.add_row(st.name, st.url, state, st.version or "-", "yes" if st.managed else "no")
    console.print(table)
    print_scorers()
    if not all_up:
        raise typer.Exit(1)


def print_scorers() -> None:
    """The supervised scorers, as their health and metrics endpoints report them."""
    from fraudpipe.stack.scorers import scorer_statuses

    statuses = scorer_statuses(get_settings())
    if not statuses:
        return
    table = Table(title="supervised scorers (one consumer group)")
    columns = ("#", "pid", "port", "ready", "model", "partitions", "lag", "last commit", "restarts")
    for col in columns:
        table.add_column(col, justify="right")

    def shown(value: object, fmt: str = "{}") -> str:
        return "-" if value is None else fmt.format(value)

    for st in statuses:
        table.add_row(
            str(st.index),
            shown(st.pid),
            str(st.port),
            "[green]yes[/]" if st.ready else "[red]no[/]",
            shown(st.model_version, "v{}"),
            shown(st.partitions),
            shown(st.lag, "{:,.0f}"),
            shown(st.last_commit_age_s, "{:.1f} s ago"),
            str(st.restarts),
        )
    console.print(table)


@app.command("up")
@domain_errors
def stack_up_cmd() -> None:
    """Start each service that is not already reachable and wait until it is healthy."""
    from fraudpipe.stack.manager import stack_up

    def report(name: str, started: bool) -> None:
        console.print(f"{name}: {'started' if started else 'already up'}")

    stack_up(get_settings(), on_service=report)
    print_status()


@app.command("provision")
@domain_errors
def stack_provision_cmd() -> None:
    """Provision fraudpipe's roles, users and ACLs on services that already run elsewhere
    (compose, Kubernetes): PostgreSQL, Kafka, MLflow, and Airflow's admin login."""
    from fraudpipe.stack.manager import provision

    provision(get_settings(), on_step=lambda name: console.print(f"{name}: provisioned"))


@app.command("down")
@domain_errors
def stack_down_cmd() -> None:
    """Stop the services this stack started."""
    from fraudpipe.stack.manager import stack_down

    stopped = stack_down(get_settings())
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing'}")


@app.command("status")
@domain_errors
def stack_status_cmd() -> None:
    """Print a table of service, URL, up/down and version (exit 1 if any is down)."""
    print_status()
