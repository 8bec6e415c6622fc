"""PostgreSQL: reachable with psycopg 3 and SQLAlchemy 2, and the roles are least-privilege."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from fraudpipe.config import Settings

pytestmark = pytest.mark.integration


def _conninfo(settings: Settings, user: str, password: str) -> str:
    return psycopg.conninfo.make_conninfo(
        host=settings.pg_host,
        port=settings.pg_port,
        user=user,
        password=password,
        dbname=settings.pg_database,
    )


def test_psycopg_connects_as_app_role(stack: Settings) -> None:
    s = stack
    with psycopg.connect(_conninfo(s, s.pg_app_user, s.pg_app_password.get_secret_value())) as conn:
        row = conn.execute("SELECT current_user, current_database()").fetchone()
    assert row == (s.pg_app_user, s.pg_database)


def test_sqlalchemy_connects_as_reader(stack: Settings) -> None:
    engine = sa.create_engine(stack.reader_db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar_one() == stack.pg_reader_user
    finally:
        engine.dispose()


@pytest.mark.parametrize("role", ["app", "reader"])
def test_non_owner_roles_cannot_create_tables(stack: Settings, role: str, unique: str) -> None:
    user = getattr(stack, f"pg_{role}_user")
    password = getattr(stack, f"pg_{role}_password").get_secret_value()
    with (
        psycopg.connect(_conninfo(stack, user, password)) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute(f"CREATE TABLE t_{unique} (x int)")


def test_owner_creates_tables_app_writes_reader_only_reads(fresh_db: Settings, unique: str) -> None:
    # The default privileges a later table (a batch's partition) gets are set by the first
    # migration (`adapters.postgres.privileges`), so this needs a migrated database.
    s = fresh_db
    table = f"privilege_probe_{unique}"
    owner = _conninfo(s, s.pg_owner_user, s.pg_owner_password.get_secret_value())
    with psycopg.connect(owner, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (x int)")
    try:
        app = _conninfo(s, s.pg_app_user, s.pg_app_password.get_secret_value())
        with psycopg.connect(app) as conn:
            conn.execute(f"INSERT INTO {table} VALUES (1)")
        reader = _conninfo(s, s.pg_reader_user, s.pg_reader_password.get_secret_value())
        with psycopg.connect(reader) as conn:
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"INSERT INTO {table} VALUES (2)")
    finally:
        with psycopg.connect(owner, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {table}")
