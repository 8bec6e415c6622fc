"""Throwaway databases for tests and benchmarks, so they never touch the pipeline's data.

A scratch database is created by the superuser, owned by the owner role, given the same role
privileges as the real one, migrated to head, and dropped (connections and all) afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from fraudpipe.adapters.postgres.migrate import upgrade
from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError
from fraudpipe.stack.postgres import grant_app_privileges, superuser_conninfo_for


def create_scratch_database(settings: Settings, prefix: str = "fraudpipe_test") -> Settings:
    """Create and migrate ``<prefix>_<uuid>``; return settings pointing at it.

    Raises:
        ServiceUnavailableError: PostgreSQL is not reachable as the superuser.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(superuser_conninfo_for(settings, "postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(settings.pg_owner_user)
                )
            )
    except psycopg.OperationalError as exc:
        raise ServiceUnavailableError(
            "PostgreSQL", f"{settings.pg_host}:{settings.pg_port}", "run `fraudpipe stack up`"
        ) from exc
    scratch = settings.model_copy(update={"pg_database": name})
    try:
        grant_app_privileges(scratch, superuser_conninfo_for(scratch, name))
        upgrade(scratch)
    except BaseException:
        drop_scratch_database(scratch)
        raise
    return scratch


def drop_scratch_database(scratch: Settings) -> None:
    """Drop the scratch database, closing any connection still open to it."""
    with psycopg.connect(superuser_conninfo_for(scratch, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(scratch.pg_database)
            )
        )


@contextmanager
def scratch_database(settings: Settings, prefix: str = "fraudpipe_test") -> Iterator[Settings]:
    """`create_scratch_database`, dropped when the block ends (even on error)."""
    scratch = create_scratch_database(settings, prefix)
    try:
        yield scratch
    finally:
        drop_scratch_database(scratch)
