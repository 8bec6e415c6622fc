"""Alembic, configured in code: `upgrade(settings)` works from any working directory.

The migrations live in this package (``migrations``); there is no alembic.ini.
Migrations run as the owner role, which owns every table; `privileges` then gives the app role
the verbs the code uses on each table, and the reader role SELECT.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from fraudpipe.adapters.postgres.bounds import apply_bounds
from fraudpipe.adapters.postgres.connect import connect, create_engine
from fraudpipe.adapters.postgres.privileges import apply_privileges
from fraudpipe.config import Settings
from fraudpipe.data.bounds import feature_bounds
from fraudpipe.errors import ServiceUnavailableError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    """An Alembic config pointing at our migrations; env.py reads `settings` from attributes.

    The database URL (with its password) is handed over as an object, not through the ini
    options, whose %-interpolation would mangle passwords containing ``%``.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["settings"] = settings
    return config


def upgrade(settings: Settings, revision: str = "head") -> str | None:
    """Apply migrations up to `revision` as the owner role, then the features' bounds of
    `settings` (`bounds.apply_bounds`) and each role's rights (`privileges.apply_privileges`);
    a no-op when all are already there.

    Returns:
        The revision the database is at afterwards.

    Raises:
        ServiceUnavailableError: PostgreSQL is not reachable.
    """
    command.upgrade(alembic_config(settings), revision)
    if revision == "head":
        with connect(settings, "owner", autocommit=True) as conn:
            apply_bounds(conn, feature_bounds(settings.bounds_margin))
            apply_privileges(conn, settings)
    return current_revision(settings)


def head_revision() -> str | None:
    """The newest revision in the migrations directory."""
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def current_revision(settings: Settings) -> str | None:
    """The revision the database is at (None before the first migration)."""
    engine = create_engine(settings, "owner")
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except sa.exc.OperationalError as exc:
        raise ServiceUnavailableError(
            "PostgreSQL", f"{settings.pg_host}:{settings.pg_port}", "run `fraudpipe stack up`"
        ) from exc
    finally:
        engine.dispose()
