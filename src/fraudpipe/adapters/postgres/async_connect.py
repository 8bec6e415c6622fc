"""asyncpg connections to the fraudpipe database, for the scoring API's reads on its event loop.

A module of its own, beside `connect`: only the API imports asyncpg, and every other process
that connects (the scorer, ingest, the flows' and DAGs' tasks) would otherwise import it too,
~58 ms at start-up here.
"""

from __future__ import annotations

import asyncpg

from fraudpipe.adapters.postgres.connect import CONNECT_TIMEOUT_SECONDS, Role, unreachable
from fraudpipe.config import Settings

#: What an asyncpg connection raises when it is refused or lost: the server's errors, the
#: driver's, the socket's, and a connect that timed out.
ASYNC_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


async def connect_async(
    settings: Settings, role: Role = "app", *, statement_timeout_ms: int
) -> asyncpg.Connection:
    """An asyncpg connection as `role` (autocommit, as asyncpg's are), whose statements the
    server cancels past `statement_timeout_ms`; `terminate` or `close` it when done.

    Raises:
        ServiceUnavailableError: PostgreSQL did not accept the connection.
    """
    user, password = settings.credentials("pg", role)
    try:
        return await asyncpg.connect(
            host=settings.pg_host,
            port=settings.pg_port,
            database=settings.pg_database,
            user=user,
            password=password.get_secret_value(),
            timeout=CONNECT_TIMEOUT_SECONDS,
            server_settings={
                "statement_timeout": str(statement_timeout_ms),
                "application_name": "fraudpipe",
            },
        )
    except ASYNC_CONNECTION_ERRORS as exc:
        raise unreachable(settings, role, exc) from exc
