"""`fraudpipe topics`: the pipeline's Kafka topics."""

from __future__ import annotations

import typer
from rich.table import Table

from fraudpipe.cli.output import console, domain_errors
from fraudpipe.config import get_settings

app = typer.Typer(help="The pipeline's Kafka topics.")


@app.command("ensure")
@domain_errors
def topics_ensure_cmd() -> None:
    """Create missing topics and reset drifted configs (partitions, retention, replicas)."""
    from fraudpipe.adapters.kafka.topics import ensure_topics

    table = Table(title="Kafka topics")
    for col in ("topic", "purpose", "action", "partitions", "replicas", "retention", "notes"):
        table.add_column(col)
    for t in ensure_topics(get_settings()):
        changed = f" ({', '.join(t.changed_configs)})" if t.changed_configs else ""
        table.add_row(
            t.spec.name,
            t.spec.purpose,
            f"{t.action.value}{changed}",
            str(t.partitions),
            str(t.replication_factor),
            f"{t.spec.retention_days} d",
            "; ".join(t.notes) or "-",
        )
    console.print(table)
