"""`fraudpipe monitor`: how far scored batches moved from the models' training data."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from fraudpipe.cli.output import console, domain_errors
from fraudpipe.config import get_settings

app = typer.Typer(help="Drift of scored batches against the models' training data.")


@app.command("drift")
@domain_errors
def drift_cmd(
    batch_id: Annotated[str, typer.Argument(help="A scored batch, e.g. synthetic-s7:2025-09-22.")],
) -> None:
    """Measure a scored batch's drift per version that scored it, store it, print the top PSI.

    What the daily DAG's `drift` task runs; running it again stores nothing new.
    """
    from fraudpipe.monitoring.batch_drift import measure_batch_drift

    settings = get_settings()
    measured = measure_batch_drift(settings, batch_id)
    if not measured:
        console.print(f"{batch_id}: no scored rows from a version with a reference profile")
        raise typer.Exit(1)
    threshold = settings.drift_psi_threshold
    for m in measured:
        table = Table(
            title=f"{batch_id}, v{m.model_version}: {m.rows:,} rows, alert rate "
            f"{m.alert_rate:.3%} (expected {m.expected_alert_rate:.3%})"
        )
        table.add_column("column")
        table.add_column("PSI", justify="right")
        table.add_column(f"> {threshold:g}")
        for name, psi in sorted(m.psi.items(), key=lambda kv: -kv[1])[:10]:
            table.add_row(name, f"{psi:.4f}", "drifted" if psi > threshold else "")
        console.print(table)
