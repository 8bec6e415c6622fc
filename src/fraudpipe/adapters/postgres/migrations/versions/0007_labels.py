"""Labels as facts of their own: who said a transaction was fraud or not, and when it was known.

A transaction's label used to be a column written once at ingest (``transactions.label``), so a
chargeback or an analyst's decision could never arrive later. A row of `labels` is one such
fact: the transaction, the label, where it came from (``dataset``, ``chargeback``,
``analyst``), who gave it, when it became known, and a note. Rows are only added (the app role
may not update or delete them, `privileges`); a transaction's label is its latest known one, so
the history of what was believed when stays, and a retrain can ask what was known at a cut-off.

The key is the transaction, the source and the moment the label became known: importing the
same file again adds nothing. No foreign key to `transactions`: that table is partitioned by
batch, and a key on the transaction id alone cannot reference it; the import checks the ids.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE labels (
            transaction_id uuid NOT NULL,
            is_fraud boolean NOT NULL,
            source text NOT NULL,
            labelled_by text NOT NULL,
            known_at timestamptz NOT NULL,
            note text,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT labels_pkey PRIMARY KEY (transaction_id, source, known_at),
            CONSTRAINT labels_source_check
                CHECK (source IN ('dataset', 'chargeback', 'analyst')),
            CONSTRAINT labels_labelled_by_check CHECK (length(labelled_by) BETWEEN 1 AND 200),
            CONSTRAINT labels_note_check CHECK (length(note) <= 2000)
        )
        """
    )
    op.execute("CREATE INDEX ix_labels_known_at ON labels (known_at)")


def downgrade() -> None:
    op.execute("DROP TABLE labels")
