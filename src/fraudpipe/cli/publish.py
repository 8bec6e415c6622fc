"""`fraudpipe publish`: a loaded batch to Kafka, with a progress bar of acknowledgements."""

from __future__ import annotations

from typing import Annotated

import typer

from fraudpipe.cli.output import console, domain_errors
from fraudpipe.config import get_settings


@domain_errors
def publish_cmd(
    batch_id: Annotated[
        str | None,
        typer.Option("--batch-id", help="Batch to publish (default: the oldest loaded one)."),
    ] = None,
    resend: Annotated[
        bool,
        typer.Option(
            "--resend",
            help="Send a published batch's unscored transactions again (after the scorer "
            "reported records expired before they were scored).",
        ),
    ] = False,
) -> None:
    """Send a loaded batch to Kafka as Avro transactions; mark it published once all are acked."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fraudpipe.publish import publish_batch

    settings = get_settings()
    if resend and batch_id is None:
        raise typer.BadParameter("--resend needs --batch-id")
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as bar:
        task = bar.add_task(f"publish → {settings.topic_transactions}", total=None)

        def report(acked: int, total: int) -> None:
            bar.update(task, completed=acked, total=total)

        result = publish_batch(settings, batch_id, on_progress=report, resend=resend)
    if result.batch_id is None:
        console.print("nothing to publish: no batch is loaded")
    elif resend and result.status != "loaded":
        console.print(
            f"{result.batch_id}: {result.acknowledged:,} unscored transaction(s) sent again "
            f"({result.status})",
            highlight=False,
        )
    elif result.status != "published" or not result.records:
        console.print(f"{result.batch_id} is already {result.status}: nothing sent")
    else:
        console.print(
            f"{result.batch_id}: {result.acknowledged:,} of {result.records:,} records "
            f"acknowledged on {result.topic} in {result.seconds:.1f} s "
            f"({result.records_per_second:,.0f}/s); batch published",
            highlight=False,
        )
