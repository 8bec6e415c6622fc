"""Partition `transactions` by batch: a new batch loads into its own bare table, then attaches.

Keeping a primary key, a foreign key and two indexes up to date row by row cost ~80% of a
load (binary COPY into the bare columns ran ~5x faster than into the indexed table). Now each
batch is one LIST partition of `transactions`: ingest creates the batch's table empty and
bare, COPYs into it, builds its indexes in one sort each, and attaches it. The key becomes
``(transaction_id, batch_id)``: PostgreSQL requires the partition key in it, and the id leads
so that a lookup by id alone (lineage search) probes each partition's index; a transaction
id can still never appear under two batches, because the id is a function of
``(source, source_row)`` and ingest checks each new batch's rows against every batch of the
same source whose `source_row` range overlaps it (`min_source_row`, `max_source_row`, new on
`batches`), under a per-source lock.

The app role only writes rows; creating and attaching a partition is DDL, so it goes through
two SECURITY DEFINER functions owned by the owner, which only ever touch the table named after
the batch.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from fraudpipe.config import get_settings

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

V_COLUMNS = ", ".join(f"v{i} double precision NOT NULL" for i in range(1, 29))

BATCH_TABLE_FUNCTION = """
CREATE FUNCTION fraudpipe_batch_table(p_batch_id text, OUT table_name text, OUT is_new boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    -- The name is derived from the batch id, never passed in: callers cannot aim this at
    -- any other table.
    table_name := 'transactions_' || left(md5(p_batch_id), 20);
    is_new := to_regclass(table_name) IS NULL;
    IF is_new THEN
        EXECUTE format(
            'CREATE TABLE %I (LIKE transactions INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
            table_name);
        -- Lets ATTACH skip its scan proving every row belongs to the partition.
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (batch_id = %L)',
                       table_name, table_name || '_batch', p_batch_id);
    END IF;
END $$
"""

ATTACH_FUNCTION = """
CREATE FUNCTION fraudpipe_attach_batch_table(p_batch_id text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    t text := 'transactions_' || left(md5(p_batch_id), 20);
BEGIN
    IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(t)) THEN
        RETURN;
    END IF;
    -- Built here, in one sort each, before the attach; ATTACH adopts them as the partitions
    -- of the parent's key and index instead of building them under its lock on the parent.
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (transaction_id, batch_id)',
                   t, t || '_pkey');
    EXECUTE format('CREATE INDEX %I ON %I (event_time)', t || '_event_time', t);
    EXECUTE format('ALTER TABLE transactions ATTACH PARTITION %I FOR VALUES IN (%L)',
                   t, p_batch_id);
END $$
"""


def upgrade() -> None:
    op.execute("ALTER TABLE predictions DROP CONSTRAINT predictions_transaction_id_fkey")
    op.execute("ALTER TABLE transactions RENAME TO transactions_0001")
    op.execute("ALTER INDEX transactions_pkey RENAME TO transactions_0001_pkey")
    op.execute("DROP INDEX ix_transactions_event_time")
    op.execute("DROP INDEX ix_transactions_batch_id")
    op.execute(
        f"""
        CREATE TABLE transactions (
            transaction_id uuid NOT NULL,
            batch_id text NOT NULL,
            source_row bigint NOT NULL,
            event_time timestamptz NOT NULL,
            amount double precision NOT NULL,
            {V_COLUMNS},
            label smallint,
            CONSTRAINT transactions_label_check CHECK (label IN (0, 1)),
            CONSTRAINT transactions_pkey PRIMARY KEY (transaction_id, batch_id)
        ) PARTITION BY LIST (batch_id)
        """
    )
    op.execute("CREATE INDEX ix_transactions_event_time ON transactions (event_time)")
    op.add_column("batches", sa.Column("min_source_row", sa.BigInteger(), nullable=True))
    op.add_column("batches", sa.Column("max_source_row", sa.BigInteger(), nullable=True))
    op.execute(BATCH_TABLE_FUNCTION)
    op.execute(ATTACH_FUNCTION)
    for fn in ("fraudpipe_batch_table(text)", "fraudpipe_attach_batch_table(text)"):
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn} TO {_app_role()}")
    # Rows loaded before: one partition per batch, as ingest would have made them.
    op.execute(
        """
        DO $$
        DECLARE b record;
        BEGIN
            FOR b IN SELECT DISTINCT batch_id FROM transactions_0001 LOOP
                EXECUTE format('INSERT INTO %I SELECT * FROM transactions_0001 WHERE batch_id = %L',
                               (fraudpipe_batch_table(b.batch_id)).table_name, b.batch_id);
                PERFORM fraudpipe_attach_batch_table(b.batch_id);
            END LOOP;
        END $$
        """
    )
    op.execute(
        """
        UPDATE batches b SET min_source_row = r.lo, max_source_row = r.hi
        FROM (SELECT batch_id, min(source_row) AS lo, max(source_row) AS hi
              FROM transactions_0001 GROUP BY batch_id) r
        WHERE r.batch_id = b.batch_id
        """
    )
    op.execute("DROP TABLE transactions_0001")
    op.execute(
        "ALTER TABLE predictions ADD CONSTRAINT predictions_transaction_fkey "
        "FOREIGN KEY (batch_id, transaction_id) REFERENCES transactions (batch_id, transaction_id)"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE predictions DROP CONSTRAINT predictions_transaction_fkey")
    op.execute("ALTER TABLE transactions RENAME TO transactions_0002")
    op.execute("ALTER INDEX transactions_pkey RENAME TO transactions_0002_pkey")
    op.execute("ALTER INDEX ix_transactions_event_time RENAME TO transactions_0002_event_time")
    op.execute(
        f"""
        CREATE TABLE transactions (
            transaction_id uuid PRIMARY KEY,
            batch_id text NOT NULL REFERENCES batches (batch_id),
            source_row bigint NOT NULL,
            event_time timestamptz NOT NULL,
            amount double precision NOT NULL,
            {V_COLUMNS},
            label smallint,
            CONSTRAINT transactions_label_check CHECK (label IN (0, 1))
        )
        """
    )
    op.execute("INSERT INTO transactions SELECT * FROM transactions_0002")
    op.execute("CREATE INDEX ix_transactions_event_time ON transactions (event_time)")
    op.execute("CREATE INDEX ix_transactions_batch_id ON transactions (batch_id)")
    op.execute("DROP TABLE transactions_0002")  # and its partitions
    op.execute("DROP FUNCTION fraudpipe_attach_batch_table(text)")
    op.execute("DROP FUNCTION fraudpipe_batch_table(text)")
    op.drop_column("batches", "max_source_row")
    op.drop_column("batches", "min_source_row")
    op.execute(
        "ALTER TABLE predictions ADD CONSTRAINT predictions_transaction_id_fkey "
        "FOREIGN KEY (transaction_id) REFERENCES transactions (transaction_id)"
    )


def _app_role() -> str:
    config = op.get_context().config
    settings = (config.attributes.get("settings") if config else None) or get_settings()
    return '"' + settings.pg_app_user.replace('"', '""') + '"'
