"""Alembic owns the schema: upgrade is repeatable, matches the models, and roles stay apart."""

from __future__ import annotations

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from fraudpipe.config import Settings
from fraudpipe.db.connect import connect, create_engine
from fraudpipe.db.migrate import current_revision, head_revision, upgrade
from fraudpipe.db.models import Base

pytestmark = pytest.mark.integration


def test_upgrade_reaches_head_and_repeats_as_a_no_op(fresh_db: Settings) -> None:
    assert current_revision(fresh_db) == head_revision() == "0001"
    assert upgrade(fresh_db) == "0001"


def test_models_match_the_migrated_schema(fresh_db: Settings) -> None:
    engine = create_engine(fresh_db, "owner")
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    # alembic_version is Alembic's own table, not a model.
    assert [
        d for d in diff if not (d[0] == "remove_table" and d[1].name == "alembic_version")
    ] == []


def test_tables_belong_to_the_owner_and_roles_keep_to_their_rights(fresh_db: Settings) -> None:
    with connect(fresh_db, "owner") as conn:
        owners = dict(
            conn.execute(
                "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        )
    assert set(owners) == {
        "alembic_version",
        "batches",
        "transactions",
        "predictions",
        "quarantine",
        "dead_letters",
    }
    assert set(owners.values()) == {fresh_db.pg_owner_user}
    with connect(fresh_db, "app") as conn:
        conn.execute("INSERT INTO quarantine (source, reason, raw) VALUES ('probe', 'probe', '{}')")
    with connect(fresh_db, "app") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("ALTER TABLE transactions ADD COLUMN x int")
    with connect(fresh_db, "reader") as conn:
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM quarantine")
