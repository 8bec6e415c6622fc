"""Rows already loaded are removed from a new batch table by the owner, not the app role.

Before a new batch table is attached, the rows another batch of the source already holds are
deleted from it. Done by the app role, that needed DELETE on the tables the owner creates,
which reached every attached partition of `transactions` as well. Done here, in a
``SECURITY DEFINER`` function that only touches the table named after the batch and only while
it is not attached, the app role needs no DELETE at all (see `adapters.postgres.privileges`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

from fraudpipe.config import get_settings

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DROP_KNOWN_FUNCTION = """
CREATE FUNCTION fraudpipe_drop_known_rows(p_batch_id text, p_overlapping text[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    -- The name is derived from the batch id, never passed in: callers cannot aim this at
    -- any other table.
    t text := 'transactions_' || left(md5(p_batch_id), 20);
    removed bigint;
BEGIN
    IF to_regclass(t) IS NULL THEN
        RAISE EXCEPTION 'no table for batch %', p_batch_id;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(t)) THEN
        RAISE EXCEPTION 'batch % is attached: its rows are never deleted', p_batch_id;
    END IF;
    EXECUTE format(
        'DELETE FROM %I n USING transactions t '
        'WHERE t.batch_id = ANY($1) AND t.transaction_id = n.transaction_id', t)
    USING p_overlapping;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END $$
"""


def upgrade() -> None:
    op.execute(DROP_KNOWN_FUNCTION)
    op.execute("REVOKE ALL ON FUNCTION fraudpipe_drop_known_rows(text, text[]) FROM PUBLIC")
    op.execute(
        f"GRANT EXECUTE ON FUNCTION fraudpipe_drop_known_rows(text, text[]) TO {_app_role()}"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION fraudpipe_drop_known_rows(text, text[])")


def _app_role() -> str:
    config = op.get_context().config
    settings = (config.attributes.get("settings") if config else None) or get_settings()
    return '"' + settings.pg_app_user.replace('"', '""') + '"'
