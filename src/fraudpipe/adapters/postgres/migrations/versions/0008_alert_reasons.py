"""Why each alert fired: its top reasons, stored with the prediction that raised it.

An alert is a prediction with ``is_fraud``; its reasons (the inputs that pushed its score up
most, `fraudpipe.model.reasons`) used to travel only on the alerts topic, so the dashboard and
a review queue could not show them. A row here is one reason of one alert: its rank (1 is the
largest), the input, its contribution to the log-odds, the sentence an analyst reads and how it
was worked out. They are written in the micro-batch's own transaction, so a prediction that is
an alert never exists without its reasons, and a redelivery adds nothing (the key is the
prediction's and the rank).

The review queue's reads get a partial index of the alerts by score.

The foreign key to `predictions` costs one index probe per reason, a few per micro-batch. It
cascades: only the owner may delete a prediction (the app role may not, `privileges`), and an
owner's clean-up takes the reasons with it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE alert_reasons (
            transaction_id uuid NOT NULL,
            model_version integer NOT NULL,
            rank smallint NOT NULL,
            feature text NOT NULL,
            contribution double precision NOT NULL,
            description text NOT NULL,
            method text NOT NULL,
            CONSTRAINT alert_reasons_pkey PRIMARY KEY (transaction_id, model_version, rank),
            CONSTRAINT alert_reasons_prediction_fkey FOREIGN KEY (transaction_id, model_version)
                REFERENCES predictions (transaction_id, model_version) ON DELETE CASCADE,
            CONSTRAINT alert_reasons_rank_check CHECK (rank BETWEEN 1 AND 10),
            CONSTRAINT alert_reasons_feature_check CHECK (length(feature) BETWEEN 1 AND 64),
            CONSTRAINT alert_reasons_contribution_check
                CHECK (contribution > 0 AND contribution < 'Infinity'::float8),
            CONSTRAINT alert_reasons_description_check CHECK (length(description) <= 500),
            CONSTRAINT alert_reasons_method_check CHECK (method IN ('linear', 'tree_shap'))
        )
        """
    )
    # The review queue reads open alerts by score: a partial index holds the alerts only, so
    # the scorer's COPY pays for it on alert rows alone.
    op.execute("CREATE INDEX ix_predictions_alerts ON predictions (score DESC) WHERE is_fraud")


def downgrade() -> None:
    op.execute("DROP INDEX ix_predictions_alerts")
    op.execute("DROP TABLE alert_reasons")
