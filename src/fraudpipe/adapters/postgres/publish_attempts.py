"""Where a batch's latest publish attempt started on the topic (migration 0006)."""

from __future__ import annotations

from fraudpipe.adapters.postgres.connect import Connection, connect
from fraudpipe.config import Settings


def record_attempt(settings: Settings, batch_id: str, topic: str, offsets: list[int]) -> None:
    """Record, in a commit of its own, the topic's end offsets (one per partition, in
    partition order) as an attempt to publish `batch_id` begins."""
    with connect(settings, "app", autocommit=True) as conn:
        conn.execute(
            "INSERT INTO publish_attempts (batch_id, topic, start_offsets) VALUES (%s, %s, %s) "
            "ON CONFLICT (batch_id) DO UPDATE "
            "SET topic = excluded.topic, start_offsets = excluded.start_offsets, "
            "started_at = now()",
            (batch_id, topic, offsets),
        )


def last_attempt(conn: Connection, batch_id: str, topic: str) -> list[int] | None:
    """The end offsets recorded by the batch's latest attempt on `topic`, or None."""
    row = conn.execute(
        "SELECT start_offsets FROM publish_attempts WHERE batch_id = %s AND topic = %s",
        (batch_id, topic),
    ).fetchone()
    return None if row is None else [int(o) for o in row[0]]
