"""`fraudpipe labels`: labels that arrive after the transactions (chargebacks, analysts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudpipe.cli.output import console, domain_errors
from fraudpipe.config import get_settings

app = typer.Typer(help="Labels that arrive after the transactions (chargebacks, analysts).")


@app.command("import")
@domain_errors
def labels_import_cmd(
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV or Parquet: transaction_id, label, source, labelled_by, known_at[, note]."
        ),
    ],
) -> None:
    """Add a file's labels; bad rows go to quarantine with why; importing again adds nothing."""
    from fraudpipe.labels import import_labels

    result = import_labels(get_settings(), path)
    console.print(
        f"{path}: {result.rows:,} rows; {result.added:,} labels added, "
        f"{result.already_known:,} already known, {result.quarantined:,} quarantined",
        highlight=False,
    )
