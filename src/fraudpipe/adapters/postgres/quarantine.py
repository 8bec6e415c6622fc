"""The `quarantine` table: rejected source rows with why and their raw values.

Writes are idempotent: a row already quarantined (same source, position, reason, batch and raw
values) is not added again, so re-running an ingest never doubles the quarantine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from fraudpipe.adapters.postgres.connect import Connection
from fraudpipe.data.days import QuarantineRecord

_INSERT_NEW: Final = """
INSERT INTO quarantine (batch_id, source, source_row, reason, raw)
SELECT v.batch_id, v.source, v.source_row, v.reason, v.raw::jsonb
FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[])
    AS v(batch_id, source, source_row, reason, raw)
WHERE NOT EXISTS (
    SELECT 1 FROM quarantine q
    WHERE q.source = v.source AND q.source_row = v.source_row AND q.reason = v.reason
      AND q.raw = v.raw::jsonb AND q.batch_id IS NOT DISTINCT FROM v.batch_id
)
"""


def quarantine_rows(conn: Connection, records: Sequence[QuarantineRecord]) -> int:
    """Add the records not already in `quarantine`, in the caller's transaction.

    Returns:
        How many were added.
    """
    if not records:
        return 0
    cur = conn.execute(
        _INSERT_NEW,
        (
            [r.batch_id for r in records],
            [r.source for r in records],
            [r.source_row for r in records],
            [r.reason for r in records],
            [r.raw_json() for r in records],
        ),
    )
    return cur.rowcount
