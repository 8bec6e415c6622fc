"""The `labels` table: label facts added, never changed; a transaction's label is its latest.

Adding is idempotent: a label already there (same transaction, source and moment known) is not
added again, so importing a file twice adds nothing the second time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import pandas as pd

from fraudpipe.adapters.postgres.connect import Connection

_UNKNOWN: Final = """
SELECT DISTINCT x::text FROM unnest(%s::uuid[]) AS x
WHERE NOT EXISTS (SELECT 1 FROM transactions t WHERE t.transaction_id = x)
"""

_INSERT_NEW: Final = """
INSERT INTO labels (transaction_id, is_fraud, source, labelled_by, known_at, note)
SELECT * FROM unnest(
    %s::uuid[], %s::boolean[], %s::text[], %s::text[], %s::timestamptz[], %s::text[]
)
ON CONFLICT (transaction_id, source, known_at) DO NOTHING
"""

#: Each transaction's latest label known at a moment (the latest recorded among equals).
_AS_OF: Final = """
SELECT DISTINCT ON (transaction_id)
    transaction_id::text, is_fraud, source, labelled_by, known_at, note
FROM labels
WHERE known_at <= %s
ORDER BY transaction_id, known_at DESC, recorded_at DESC
"""


def unknown_transactions(conn: Connection, ids: list[str]) -> set[str]:
    """The ids among `ids` that name no transaction in `transactions`."""
    if not ids:
        return set()
    return {row[0] for row in conn.execute(_UNKNOWN, (ids,))}


def add_labels(conn: Connection, labels: pd.DataFrame) -> int:
    """Add the labels not already there, in the caller's transaction; returns how many.

    Args:
        labels: ``transaction_id``, ``is_fraud``, ``source``, ``labelled_by``, ``known_at``
            (UTC) and ``note`` columns (`fraudpipe.data.labels.LabelRows.frame`).
    """
    if labels.empty:
        return 0
    cur = conn.execute(
        _INSERT_NEW,
        (
            labels["transaction_id"].tolist(),
            labels["is_fraud"].astype(bool).tolist(),
            labels["source"].tolist(),
            labels["labelled_by"].tolist(),
            [ts.to_pydatetime() for ts in labels["known_at"]],
            labels["note"].tolist(),
        ),
    )
    return cur.rowcount


def labels_as_of(conn: Connection, at: datetime) -> pd.DataFrame:
    """Each labelled transaction's latest label known at `at`: what was believed then."""
    rows = conn.execute(_AS_OF, (at,)).fetchall()
    columns = ["transaction_id", "is_fraud", "source", "labelled_by", "known_at", "note"]
    return pd.DataFrame(rows, columns=columns)
