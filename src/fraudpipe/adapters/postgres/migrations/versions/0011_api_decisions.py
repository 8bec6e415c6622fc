"""Decisions of the synchronous scoring API, one per transaction id.

The API answers only once a decision is acknowledged on the decisions topic; the decision
recorder (`fraudpipe.serving.recorder`) writes them here, ``ON CONFLICT DO NOTHING`` on the
transaction id, so a redelivered message, or a second decision on the same id, changes
nothing: the first is the record, and the API answers a repeat with it. Each row holds the
transaction as the caller sent it (it is in no batch: the API's transactions are not ingested),
the verdict and its lineage. Append-only for the app role, like `predictions`.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_decisions (
            transaction_id uuid NOT NULL,
            request_id uuid NOT NULL,
            client text NOT NULL,
            batch_id text NOT NULL,
            source text NOT NULL,
            event_time timestamptz NOT NULL,
            features double precision[] NOT NULL,
            model_name text NOT NULL,
            model_version integer NOT NULL,
            score double precision NOT NULL,
            threshold double precision NOT NULL,
            is_fraud boolean NOT NULL,
            reasons_method text NOT NULL,
            top_drivers jsonb NOT NULL,
            decided_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT api_decisions_pkey PRIMARY KEY (transaction_id),
            CONSTRAINT api_decisions_client_check CHECK (length(client) BETWEEN 1 AND 64),
            CONSTRAINT api_decisions_features_check
                CHECK (cardinality(features) = 29 AND array_ndims(features) = 1),
            CONSTRAINT api_decisions_version_check CHECK (model_version >= 1),
            CONSTRAINT api_decisions_score_check CHECK (score BETWEEN 0 AND 1),
            CONSTRAINT api_decisions_threshold_check CHECK (threshold BETWEEN 0 AND 1),
            CONSTRAINT api_decisions_drivers_check CHECK (jsonb_typeof(top_drivers) = 'array')
        )
        """
    )
    op.execute("CREATE INDEX api_decisions_decided_at_idx ON api_decisions (decided_at)")


def downgrade() -> None:
    op.execute("DROP TABLE api_decisions")
