"""The `batches` table and its status machine: loaded → published → scored.

Each stage moves a batch one step, guarded by the status it expects, so a stage run twice, or
two copies of a stage, cannot skip or repeat a step. Methods run in the caller's transaction on
the caller's connection; committing is the caller's job (``with connect(settings) as conn:``
commits when the block ends).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final

from psycopg.rows import dict_row

from fraudpipe.adapters.postgres.connect import Connection
from fraudpipe.errors import BatchNotFoundError, BatchStatusError


class BatchStatus(StrEnum):
    """Where a batch is in the pipeline."""

    LOADED = "loaded"
    PUBLISHED = "published"
    SCORED = "scored"


_ORDER: Final = {BatchStatus.LOADED: 0, BatchStatus.PUBLISHED: 1, BatchStatus.SCORED: 2}
_COLUMNS: Final = (
    "batch_id, source, batch_date, is_synthetic, row_count, quarantined_count, content_sha256, "
    "status, loaded_at, published_at, scored_at"
)


@dataclass(frozen=True)
class Batch:
    """One row of `batches`."""

    batch_id: str
    source: str
    batch_date: date
    is_synthetic: bool
    row_count: int
    quarantined_count: int
    content_sha256: str
    status: BatchStatus
    loaded_at: datetime
    published_at: datetime | None
    scored_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Batch:
        """A batch from a `batches` row read with psycopg's ``dict_row``."""
        return cls(**{**row, "status": BatchStatus(row["status"])})


class BatchRepository:
    """Reads and moves batches on one connection (the app role is enough)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def lock(self, batch_id: str) -> None:
        """Wait for, then hold until the transaction ends, the exclusive right to write a batch.

        A transaction-scoped advisory lock: two ingests of the same day serialise here, and the
        second then sees the first one's committed batch.
        """
        self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (batch_id,))

    def get(self, batch_id: str) -> Batch | None:
        """The batch, or None."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM batches WHERE batch_id = %s", (batch_id,)
            ).fetchone()
        return Batch.from_row(row) if row else None

    def list(self, source: str | None = None) -> list[Batch]:
        """All batches (of one source), oldest day first."""
        with self._conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM batches WHERE %(source)s::text IS NULL "
                "OR source = %(source)s ORDER BY batch_date, batch_id",
                {"source": source},
            ).fetchall()
        return [Batch.from_row(r) for r in rows]

    def create(
        self,
        *,
        batch_id: str,
        source: str,
        batch_date: date,
        is_synthetic: bool,
        row_count: int,
        content_sha256: str,
        source_rows: tuple[int, int] | None = None,
    ) -> None:
        """Insert a new batch in status `loaded` (its rows go in the same transaction).

        Args:
            source_rows: The lowest and highest `source_row` of its rows (None: unknown, so
                every later batch of the source is checked against it).
        """
        lo, hi = source_rows if source_rows else (None, None)
        self._conn.execute(
            "INSERT INTO batches (batch_id, source, batch_date, is_synthetic, row_count, "
            "content_sha256, status, loaded_at, min_source_row, max_source_row) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, now(), %s, %s)",
            (
                batch_id,
                source,
                batch_date,
                is_synthetic,
                row_count,
                content_sha256,
                BatchStatus.LOADED.value,
                lo,
                hi,
            ),
        )

    def record_rows(
        self,
        batch_id: str,
        *,
        row_count: int,
        content_sha256: str,
        source_rows: tuple[int, int] | None = None,
    ) -> None:
        """Set a batch's row count and content hash after rows were added to it.

        Args:
            source_rows: The `source_row` range of the rows added; the batch's range widens
                to cover it.
        """
        lo, hi = source_rows if source_rows else (None, None)
        self._conn.execute(
            "UPDATE batches SET row_count = %s, content_sha256 = %s, "
            "min_source_row = least(min_source_row, %s), "
            "max_source_row = greatest(max_source_row, %s) WHERE batch_id = %s",
            (row_count, content_sha256, lo, hi, batch_id),
        )

    def refresh_quarantined_count(self, batch_id: str) -> int:
        """Recount the quarantined rows that belong to a batch; returns the count."""
        row = self._conn.execute(
            "UPDATE batches SET quarantined_count = "
            "(SELECT count(*) FROM quarantine WHERE batch_id = %s) "
            "WHERE batch_id = %s RETURNING quarantined_count",
            (batch_id, batch_id),
        ).fetchone()
        return int(row[0]) if row else 0

    def oldest_batch_with_status(
        self, status: BatchStatus | str, *, skip_locked: bool = False
    ) -> Batch | None:
        """The batch of the earliest day (then id) in `status`, or None.

        Args:
            status: The status to look for.
            skip_locked: Lock the row returned (``FOR UPDATE SKIP LOCKED``) so concurrent
                workers each get a different batch; the lock lasts until the transaction ends.
        """
        lock = " FOR UPDATE SKIP LOCKED" if skip_locked else ""
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM batches WHERE status = %s "
                f"ORDER BY batch_date, batch_id LIMIT 1{lock}",
                (BatchStatus(status).value,),
            ).fetchone()
        return Batch.from_row(row) if row else None

    def mark_published(self, batch_id: str) -> bool:
        """loaded → published (stamps `published_at`).

        Returns:
            True if the batch moved; False if it was already published or scored (a repeat).

        Raises:
            BatchNotFoundError: No such batch.
        """
        return self._advance(batch_id, BatchStatus.LOADED, BatchStatus.PUBLISHED, "published_at")

    def mark_scored(self, batch_id: str) -> bool:
        """published → scored (stamps `scored_at`).

        Returns:
            True if the batch moved; False if it was already scored (a repeat).

        Raises:
            BatchNotFoundError: No such batch.
            BatchStatusError: The batch is still `loaded` (it was never published).
        """
        return self._advance(batch_id, BatchStatus.PUBLISHED, BatchStatus.SCORED, "scored_at")

    def _advance(
        self, batch_id: str, expected: BatchStatus, target: BatchStatus, stamp: str
    ) -> bool:
        moved = self._conn.execute(
            f"UPDATE batches SET status = %s, {stamp} = now() "
            "WHERE batch_id = %s AND status = %s RETURNING batch_id",
            (target.value, batch_id, expected.value),
        ).fetchone()
        if moved:
            return True
        current = self.get(batch_id)
        if current is None:
            raise BatchNotFoundError(batch_id)
        if _ORDER[current.status] >= _ORDER[target]:
            return False
        raise BatchStatusError(batch_id, current.status.value, expected.value, target.value)
