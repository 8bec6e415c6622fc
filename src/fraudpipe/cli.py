"""`fraudpipe` command line: thin commands that hand off to the core.

A `FraudpipeError` prints one clear line and exits 1; anything else is a bug and shows a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from fraudpipe.config import get_settings
from fraudpipe.errors import FraudpipeError
from fraudpipe.logs import configure_logging

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(help="Credit-card fraud detection pipeline.", no_args_is_help=True)
stack_app = typer.Typer(
    help="The local service stack (PostgreSQL, Kafka, registry, MLflow, Prefect)."
)
app.add_typer(stack_app, name="stack")

console = Console()
err_console = Console(stderr=True)


def domain_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a FraudpipeError into one red line and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except FraudpipeError as exc:
            err_console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from exc

    return wrapper


@app.callback()
def main(
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Log JSON lines.")] = False,
) -> None:
    configure_logging(json=json_logs)


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
    if not all_up:
        raise typer.Exit(1)


@stack_app.command("up")
@domain_errors
def stack_up_cmd() -> None:
    """Start each service that is not already reachable and wait until it is healthy."""
    from fraudpipe.stack.manager import stack_up

    def report(name: str, started: bool) -> None:
        console.print(f"{name}: {'started' if started else 'already up'}")

    stack_up(get_settings(), on_service=report)
    print_status()


@stack_app.command("down")
@domain_errors
def stack_down_cmd() -> None:
    """Stop the services this stack started."""
    from fraudpipe.stack.manager import stack_down

    stopped = stack_down(get_settings())
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing'}")


@stack_app.command("status")
@domain_errors
def stack_status_cmd() -> None:
    """Print a table of service, URL, up/down and version (exit 1 if any is down)."""
    print_status()
