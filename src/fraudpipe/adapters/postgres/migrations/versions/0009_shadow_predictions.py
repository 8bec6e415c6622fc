"""The challenger's scores, in shadow: every transaction the champion scored, scored again.

When the ``challenger`` alias is set, the scorer scores each micro-batch with that version too
and stores its scores here, in the micro-batch's own transaction, beside the champion's
`predictions`: the version, the score, whether it would have alerted at its own threshold, and
the champion version it ran beside (so the two are compared row for row). A shadow never
alerts and never reaches Kafka; `predictions` stays the record of what was decided.

Idempotent on ``(transaction_id, model_version)``, like `predictions`; no foreign key to
`transactions` for the same reason (the scorer checks the ids set-based before writing).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE shadow_predictions (
            transaction_id uuid NOT NULL,
            model_name text NOT NULL,
            model_version integer NOT NULL,
            champion_version integer NOT NULL,
            batch_id text NOT NULL,
            score double precision NOT NULL,
            would_alert boolean NOT NULL,
            threshold double precision NOT NULL,
            scored_at timestamptz NOT NULL,
            CONSTRAINT shadow_predictions_pkey PRIMARY KEY (transaction_id, model_version)
        )
        """
    )
    op.execute("CREATE INDEX ix_shadow_predictions_batch_id ON shadow_predictions (batch_id)")


def downgrade() -> None:
    op.execute("DROP TABLE shadow_predictions")
