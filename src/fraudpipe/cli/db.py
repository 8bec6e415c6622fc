"""`fraudpipe db`: the fraudpipe database schema (Alembic migrations)."""

from __future__ import annotations

from typing import Annotated

import typer

from fraudpipe.cli.output import console, domain_errors
from fraudpipe.config import get_settings

app = typer.Typer(help="The fraudpipe database schema (Alembic migrations).")


@app.command("upgrade")
@domain_errors
def db_upgrade_cmd(
    revision: Annotated[str, typer.Option(help="Alembic revision to reach.")] = "head",
) -> None:
    """Apply the schema migrations as the owner role (a no-op when already at the revision)."""
    from fraudpipe.adapters.postgres.migrate import upgrade

    settings = get_settings()
    at = upgrade(settings, revision)
    console.print(f"database {settings.pg_database} is at revision {at}")
