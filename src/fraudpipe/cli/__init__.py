"""`fraudpipe` command line: thin commands that hand off to the core, one module per group.

Commands print through `output` (rich), where a `FraudpipeError` becomes one red line and exit
code 1; long work shows a progress bar (`progress`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from fraudpipe.cli import (
    contracts,
    dashboard,
    db,
    demo,
    ingest,
    labels,
    model,
    monitor,
    orchestration,
    publish,
    score,
    serve,
    stack,
    topics,
)
from fraudpipe.logs import configure_logging

app = typer.Typer(help="Credit-card fraud detection pipeline.", no_args_is_help=True)


@app.callback()
def main(
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Log JSON lines.")] = False,
) -> None:
    configure_logging(json=json_logs)


app.add_typer(stack.app, name="stack")
app.add_typer(contracts.app, name="contracts")
app.add_typer(topics.app, name="topics")
app.add_typer(orchestration.deployments_app, name="deployments")
app.add_typer(orchestration.airflow_app, name="airflow")
app.add_typer(db.app, name="db")
app.add_typer(labels.app, name="labels")
app.add_typer(monitor.app, name="monitor")
app.command("ingest")(ingest.ingest_cmd)
app.command("train")(model.train_cmd)
app.command("models")(model.models_cmd)
app.command("publish")(publish.publish_cmd)
app.command("consume")(score.consume_cmd)
app.command("dashboard")(dashboard.dashboard_cmd)
app.command("serve")(serve.serve_cmd)
app.command("demo")(demo.demo_cmd)

__all__ = ["app"]
