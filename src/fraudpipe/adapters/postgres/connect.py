"""Connections to the fraudpipe database as one of its roles; nothing connects at import.

Roles follow least privilege: ``owner`` runs migrations, ``app`` reads and writes rows (the
pipeline), ``reader`` only selects (the dashboard).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import psycopg
import sqlalchemy as sa

from fraudpipe.config import Settings
from fraudpipe.errors import ServiceUnavailableError

Role = Literal["owner", "app", "reader", "analyst"]
Connection = psycopg.Connection[tuple[Any, ...]]

#: Raised inside ``conn.transaction()``, rolls that transaction back and is not raised further.
Rollback = psycopg.Rollback

#: A connection that broke in use (the server went away mid-transaction): what `connect` turns
#: into `ServiceUnavailableError` when it happens at connection time.
CONNECTION_LOST_ERRORS: tuple[type[BaseException], ...] = (psycopg.OperationalError,)

#: Errors after which the whole transaction rolled back and can simply be run again: a
#: deadlock or serialization failure between two writers (two scorers, say).
RETRIABLE_TRANSACTION_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.errors.TransactionRollback,
)

#: How long a connection attempt may take, with either driver.
CONNECT_TIMEOUT_SECONDS = 5


def conninfo(settings: Settings, role: Role = "app") -> str:
    """libpq connection string for `role` on ``settings.pg_database``."""
    user, password = settings.credentials("pg", role)
    return psycopg.conninfo.make_conninfo(
        host=settings.pg_host,
        port=settings.pg_port,
        dbname=settings.pg_database,
        user=user,
        password=password.get_secret_value(),
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        application_name="fraudpipe",
    )


def connect(settings: Settings, role: Role = "app", *, autocommit: bool = False) -> Connection:
    """A psycopg 3 connection as `role` (use it as a context manager).

    Raises:
        ServiceUnavailableError: PostgreSQL did not accept the connection.
    """
    try:
        return psycopg.connect(conninfo(settings, role), autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise unreachable(settings, role, exc) from exc


def unreachable(settings: Settings, role: Role, exc: BaseException) -> ServiceUnavailableError:
    """The error for a connection as `role` that failed or was lost."""
    return ServiceUnavailableError(
        "PostgreSQL",
        f"{settings.pg_host}:{settings.pg_port}/{settings.pg_database} as {role}",
        f"run `fraudpipe stack up` or check FRAUDPIPE_PG_* ({str(exc).strip()})",
    )


def create_engine(settings: Settings, role: Role = "app") -> sa.Engine:
    """A SQLAlchemy 2 engine (psycopg 3 driver) as `role`; dispose it when done."""
    user, password = settings.credentials("pg", role)
    return sa.create_engine(settings.pg_url(user, password), pool_pre_ping=True)


def set_for_transaction(conn: Connection, settings: Mapping[str, str]) -> None:
    """Set server settings until the current transaction ends (``SET LOCAL``).

    The connection must be in a transaction (not autocommit): outside one, nothing is kept.
    """
    for name, value in settings.items():
        conn.execute("SELECT set_config(%s, %s, true)", (name, value))
