"""Where each batch's latest publish attempt started on the transactions topic.

A publish commits the batch's Kafka transaction, then marks the batch published in
PostgreSQL. A run killed between the two leaves the batch `loaded` with its records already
committed on the topic; without a trace of the attempt the next run sends them all again. So
before a run produces anything it records, in a commit of its own, the topic's end offsets:
the next run of a batch still `loaded` reads the topic from there (``read_committed``) and, if
the batch's records are there, only marks it published (`publish.publisher`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE publish_attempts (
            batch_id text PRIMARY KEY,
            topic text NOT NULL,
            start_offsets bigint[] NOT NULL,
            started_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE publish_attempts")
