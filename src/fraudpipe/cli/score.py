"""`fraudpipe consume`: run one scorer of the consumer group until it stops."""

from __future__ import annotations

from typing import Annotated

import typer

from fraudpipe.cli.output import console, domain_errors
from fraudpipe.config import get_settings


@domain_errors
def consume_cmd(
    max_messages: Annotated[
        int | None,
        typer.Option("--max-messages", min=1, help="Stop after this many messages."),
    ] = None,
    idle_exit: Annotated[
        float | None,
        typer.Option("--idle-exit", min=0.0, help="Stop after this many seconds without one."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Most messages per micro-batch.")
    ] = 10_000,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            help="Port of /metrics, /healthz, /readyz (default: settings; 0 = none).",
        ),
    ] = None,
    model_poll: Annotated[
        float,
        typer.Option("--model-poll", min=0.1, help="Seconds between serving-alias checks."),
    ] = 10.0,
) -> None:
    """Run the scoring service: Kafka transactions → champion model → predictions and alerts.

    Several processes started this way share the topic's partitions (one consumer group).
    SIGTERM/SIGINT finish the current micro-batch, commit it and exit.
    """
    from fraudpipe.scoring.runtime import ScoringOptions
    from fraudpipe.scoring.service import run_scorer

    settings = get_settings()
    options = ScoringOptions(
        batch_size=batch_size,
        max_messages=max_messages,
        idle_exit_s=idle_exit,
        model_poll_s=model_poll,
        metrics_port=settings.metrics_port if metrics_port is None else metrics_port,
        metrics_addr=settings.metrics_host,
    )
    summary = run_scorer(settings, options)
    console.print(
        f"consumed {summary.consumed:,}, scored {summary.scored:,} "
        f"({summary.inserted:,} new predictions), dead letters {summary.dead_letters:,}; "
        f"batches scored: {', '.join(summary.batches_scored) or 'none'} ({summary.stopped_by})",
        highlight=False,
    )
