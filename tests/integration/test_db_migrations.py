"""Alembic owns the schema: upgrade is repeatable, matches the models, and roles stay apart."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from fraudpipe.adapters.postgres.bulk_load import ensure_batch_partition
from fraudpipe.adapters.postgres.connect import connect, create_engine
from fraudpipe.adapters.postgres.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade,
)
from fraudpipe.adapters.postgres.models import Base
from fraudpipe.config import Settings

pytestmark = pytest.mark.integration


def test_upgrade_reaches_head_and_repeats_as_a_no_op(fresh_db: Settings) -> None:
    assert current_revision(fresh_db) == head_revision() == "0011"
    assert upgrade(fresh_db) == "0011"


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
        "model_refusals",
        "publish_attempts",
        "labels",
        "alert_reasons",
        "shadow_predictions",
        "batch_drift",
        "batch_alert_rates",
        "api_decisions",
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


def test_0002_moves_loaded_rows_into_one_partition_per_batch(fresh_db: Settings) -> None:
    command.downgrade(alembic_config(fresh_db), "0001")
    v = ", ".join(["0.5"] * 28)
    with connect(fresh_db, "owner") as conn:
        for day in ("2025-09-20", "2025-09-21"):
            conn.execute(
                "INSERT INTO batches (batch_id, source, batch_date, is_synthetic, row_count, "
                "content_sha256, status, loaded_at) "
                "VALUES (%s, 'm', %s, false, 2, 'x', 'scored', now())",
                (f"m:{day}", day),
            )
        for i, day in enumerate(("2025-09-20", "2025-09-20", "2025-09-21", "2025-09-21")):
            conn.execute(
                f"INSERT INTO transactions VALUES (%s, %s, %s, %s, 1.0, {v}, 0)",
                (uuid.uuid5(uuid.NAMESPACE_URL, str(i)), f"m:{day}", 10 + i, f"{day}T12:00Z"),
            )
        conn.execute(
            "INSERT INTO predictions SELECT transaction_id, 'fd', 1, batch_id, 0.1, false, 0.5, "
            "now(), 1.0 FROM transactions"
        )
    assert upgrade(fresh_db) == "0011"
    with connect(fresh_db, "owner") as conn:
        parts = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'transactions'::regclass"
        ).fetchone()
        ranges = conn.execute(
            "SELECT batch_id, min_source_row, max_source_row FROM batches ORDER BY batch_id"
        ).fetchall()
        joined = conn.execute(
            "SELECT count(*) FROM predictions JOIN transactions USING (batch_id, transaction_id)"
        ).fetchone()
    assert parts == (2,)
    assert ranges == [("m:2025-09-20", 10, 11), ("m:2025-09-21", 12, 13)]
    assert joined == (4,)
    # and back: the downgrade restores the single table with every row
    command.downgrade(alembic_config(fresh_db), "0001")
    with connect(fresh_db, "owner") as conn:
        assert conn.execute("SELECT count(*) FROM transactions").fetchone() == (4,)
    assert upgrade(fresh_db) == "0011"


def test_stored_rows_are_append_only_for_the_app_role(fresh_db: Settings) -> None:
    """Everything the sink's checks rest on: no role of the pipeline can change a stored row."""
    with connect(fresh_db, autocommit=True) as conn:
        ensure_batch_partition(conn, "priv:2025-09-20")
        partition = conn.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'transactions'::regclass"
        ).fetchone()
    assert partition is not None
    refused = [
        "DELETE FROM transactions",
        "UPDATE transactions SET amount = 1",
        "TRUNCATE transactions",
        f'DELETE FROM "{partition[0]}"',
        f'UPDATE "{partition[0]}" SET amount = 1',
        "DELETE FROM predictions",
        "UPDATE predictions SET score = 0",
        "DELETE FROM batches",
        "DELETE FROM quarantine",
        "DELETE FROM dead_letters",
        "DELETE FROM alert_reasons",
        "UPDATE alert_reasons SET contribution = 1",
        "UPDATE dead_letters SET error = ''",
    ]
    for statement in refused:
        with connect(fresh_db, "app") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_rights_granted_by_hand_are_taken_back_by_the_next_upgrade(fresh_db: Settings) -> None:
    with connect(fresh_db, "owner", autocommit=True) as conn:
        conn.execute(f'GRANT DELETE ON transactions TO "{fresh_db.pg_app_user}"')
    upgrade(fresh_db)
    with connect(fresh_db, "app") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM transactions")
