"""Alembic environment: online migrations as the owner role, settings handed in by migrate.py."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from fraudpipe.adapters.postgres.connect import create_engine
from fraudpipe.adapters.postgres.models import Base
from fraudpipe.config import Settings, get_settings
from fraudpipe.errors import ServiceUnavailableError

target_metadata = Base.metadata


def run_migrations_online() -> None:
    settings = context.config.attributes.get("settings")
    if not isinstance(settings, Settings):
        # Called by the `alembic` command line rather than fraudpipe.adapters.postgres.migrate.
        settings = get_settings()
    engine = create_engine(settings, "owner")
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
    except sa.exc.OperationalError as exc:
        raise ServiceUnavailableError(
            "PostgreSQL",
            f"{settings.pg_host}:{settings.pg_port}/{settings.pg_database}",
            f"run `fraudpipe stack up` ({exc.orig})",
        ) from exc
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("fraudpipe migrations run online only: use `fraudpipe db upgrade`")
run_migrations_online()
