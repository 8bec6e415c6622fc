"""Initial schema: batches, transactions, predictions, quarantine, dead_letters.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMPTZ = sa.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.Text(), primary_key=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("batch_date", sa.Date(), nullable=False),
        sa.Column("is_synthetic", sa.Boolean(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("quarantined_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("content_sha256", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("loaded_at", TIMESTAMPTZ, nullable=False),
        sa.Column("published_at", TIMESTAMPTZ, nullable=True),
        sa.Column("scored_at", TIMESTAMPTZ, nullable=True),
        sa.CheckConstraint(
            "status IN ('loaded', 'published', 'scored')", name="batches_status_check"
        ),
    )
    op.create_table(
        "transactions",
        sa.Column("transaction_id", sa.Uuid(), primary_key=True),
        sa.Column("batch_id", sa.Text(), sa.ForeignKey("batches.batch_id"), nullable=False),
        sa.Column("source_row", sa.BigInteger(), nullable=False),
        sa.Column("event_time", TIMESTAMPTZ, nullable=False),
        sa.Column("amount", sa.Double(), nullable=False),
        *[sa.Column(f"v{i}", sa.Double(), nullable=False) for i in range(1, 29)],
        sa.Column("label", sa.SmallInteger(), nullable=True),
        sa.CheckConstraint("label IN (0, 1)", name="transactions_label_check"),
    )
    op.create_index("ix_transactions_event_time", "transactions", ["event_time"])
    op.create_index("ix_transactions_batch_id", "transactions", ["batch_id"])
    op.create_table(
        "predictions",
        sa.Column(
            "transaction_id",
            sa.Uuid(),
            sa.ForeignKey("transactions.transaction_id"),
            nullable=False,
        ),
        sa.Column("model_name", sa.Text(), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Text(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("is_fraud", sa.Boolean(), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column("scored_at", TIMESTAMPTZ, nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("transaction_id", "model_version"),
    )
    op.create_index("ix_predictions_batch_id", "predictions", ["batch_id"])
    op.create_index("ix_predictions_scored_at", "predictions", ["scored_at"])
    op.create_table(
        "quarantine",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_row", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", postgresql.JSONB(), nullable=False),
        sa.Column("quarantined_at", TIMESTAMPTZ, nullable=False, server_default=sa.text("now()")),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("error_type", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("received_at", TIMESTAMPTZ, nullable=False, server_default=sa.text("now()")),
        sa.UniqueConstraint("topic", "partition", "offset"),
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("quarantine")
    op.drop_table("predictions")
    op.drop_table("transactions")
    op.drop_table("batches")
