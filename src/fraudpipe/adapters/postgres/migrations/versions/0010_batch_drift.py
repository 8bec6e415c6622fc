"""Drift per scored batch: PSI per feature and for the score, and the alert rate.

Once a batch is scored, each model version that scored it is compared with the reference
profile of its own training data (`fraudpipe.model.drift`): ``batch_drift`` holds one row per
batch, version and profiled column (``amount``, ``v1``..``v28``, ``hour``, ``score``) with its
PSI; ``batch_alert_rates`` one row per batch and version with the alerts raised against the
rate its threshold was placed for.

Both are append-only and idempotent on their keys: a batch's rows, its predictions and a
version's reference never change, so measuring again gives the same numbers.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE batch_drift (
            batch_id text NOT NULL REFERENCES batches (batch_id),
            model_name text NOT NULL,
            model_version integer NOT NULL,
            feature text NOT NULL,
            psi double precision NOT NULL,
            rows bigint NOT NULL,
            measured_at timestamptz NOT NULL,
            CONSTRAINT batch_drift_pkey PRIMARY KEY (batch_id, model_version, feature),
            CONSTRAINT batch_drift_feature_check CHECK (length(feature) BETWEEN 1 AND 64),
            CONSTRAINT batch_drift_psi_check CHECK (psi >= 0 AND psi < 'Infinity'::float8),
            CONSTRAINT batch_drift_rows_check CHECK (rows > 0)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE batch_alert_rates (
            batch_id text NOT NULL REFERENCES batches (batch_id),
            model_name text NOT NULL,
            model_version integer NOT NULL,
            rows bigint NOT NULL,
            alerts bigint NOT NULL,
            expected_alert_rate double precision NOT NULL,
            measured_at timestamptz NOT NULL,
            CONSTRAINT batch_alert_rates_pkey PRIMARY KEY (batch_id, model_version),
            CONSTRAINT batch_alert_rates_rows_check CHECK (rows > 0),
            CONSTRAINT batch_alert_rates_alerts_check CHECK (alerts BETWEEN 0 AND rows),
            CONSTRAINT batch_alert_rates_expected_check
                CHECK (expected_alert_rate BETWEEN 0 AND 1)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE batch_alert_rates")
    op.execute("DROP TABLE batch_drift")
