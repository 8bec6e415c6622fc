"""Model versions a scorer refused to serve, and why, for the dashboard.

One row per registered model and version: a scorer that refuses a version records the reason
(a later refusal of the same version updates it and counts it), so the Models page can say
which versions never served and why.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE model_refusals (
            model_name text NOT NULL,
            model_version integer NOT NULL,
            reason text NOT NULL,
            scorer text NOT NULL,
            refusals integer NOT NULL DEFAULT 1,
            first_refused_at timestamptz NOT NULL DEFAULT now(),
            last_refused_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (model_name, model_version)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE model_refusals")
