"""`fraudpipe demo`: the whole pipeline through the Airflow DAGs, then its summary."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from fraudpipe.cli.output import console, domain_errors
from fraudpipe.config import get_settings


@domain_errors
def demo_cmd(
    keep_scorer: Annotated[
        bool,
        typer.Option("--keep-scorer", help="Leave the background scoring service running."),
    ] = False,
) -> None:
    """Run the whole pipeline through the Airflow DAGs: 2 ULB days, 14 synthetic days, a retrain.

    Bootstraps first (schema, topics, contracts, deployments, Airflow DB, a first model), scores
    in the background throughout, and ends with a table per day. Safe to run again: a second run
    adds nothing and says so.
    """
    from fraudpipe.cli.demo_summary import summary
    from fraudpipe.orchestration.demo import run_demo

    def say(step: str, detail: str) -> None:
        console.print(f"[bold cyan]{step}[/]: {detail}", highlight=False)

    settings = get_settings()
    result = run_demo(settings, say, keep_scorer=keep_scorer)
    # Piped to a file or CI log, rich assumes 80 columns and folds the table; print(width=)
    # cannot widen past the console's own width, so such output gets a wider console.
    out = console if console.is_terminal else Console(width=120)
    out.print(summary(result, settings))
