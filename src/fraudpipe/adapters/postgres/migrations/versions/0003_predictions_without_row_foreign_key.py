"""Predictions without the row-by-row foreign key to `transactions`.

The foreign key ``(batch_id, transaction_id) → transactions`` fired one trigger per inserted
prediction: a query against the partitioned table and a ``FOR KEY SHARE`` row lock, which
writes the referenced transaction's tuple header (a dirtied page and WAL per row). The scorer now
checks the same thing set-based in the micro-batch's own transaction, before it inserts: one
anti-join of the staged ids against the partitions' primary keys
(`adapters.postgres.prediction_sink`). Rows of `transactions` are never deleted or updated,
so the lock guarded against nothing the pipeline does.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE predictions DROP CONSTRAINT predictions_transaction_fkey")


def downgrade() -> None:
    op.execute(
        "ALTER TABLE predictions ADD CONSTRAINT predictions_transaction_fkey "
        "FOREIGN KEY (batch_id, transaction_id) REFERENCES transactions (batch_id, transaction_id)"
    )
