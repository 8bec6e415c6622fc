"""The batch status machine: loaded → published → scored, guarded, idempotent, one at a time."""

from __future__ import annotations

from datetime import date

import pytest

from fraudpipe.adapters.postgres.batches import BatchRepository, BatchStatus
from fraudpipe.adapters.postgres.connect import connect
from fraudpipe.config import Settings
from fraudpipe.errors import BatchNotFoundError, BatchStatusError

pytestmark = pytest.mark.integration


def _make(settings: Settings, source: str, *days: date) -> list[str]:
    ids = []
    with connect(settings) as conn:
        repo = BatchRepository(conn)
        for day in days:
            bid = f"{source}:{day.isoformat()}"
            repo.create(
                batch_id=bid,
                source=source,
                batch_date=day,
                is_synthetic=False,
                row_count=0,
                content_sha256="-",
            )
            ids.append(bid)
    return ids


def test_status_moves_forward_once(fresh_db: Settings, unique: str) -> None:
    [bid] = _make(fresh_db, f"t{unique}", date(2025, 9, 20))
    with connect(fresh_db) as conn:
        repo = BatchRepository(conn)
        with pytest.raises(BatchStatusError, match="is loaded, so it cannot become scored"):
            repo.mark_scored(bid)
        assert repo.mark_published(bid) is True
        assert repo.mark_published(bid) is False  # a repeat is a no-op
        published = repo.get(bid)
        assert published is not None and published.status is BatchStatus.PUBLISHED
        assert published.published_at is not None and published.scored_at is None
        assert repo.mark_scored(bid) is True
        assert repo.mark_scored(bid) is False
        assert repo.mark_published(bid) is False  # never goes back
        scored = repo.get(bid)
        assert scored is not None and scored.status is BatchStatus.SCORED
        assert scored.scored_at is not None


def test_unknown_batch(fresh_db: Settings) -> None:
    with connect(fresh_db) as conn, pytest.raises(BatchNotFoundError):
        BatchRepository(conn).mark_published("nowhere:2025-01-01")


def test_oldest_batch_with_status_is_the_earliest_day(fresh_db: Settings, unique: str) -> None:
    source = f"o{unique}"
    later, earlier = _make(fresh_db, source, date(2025, 9, 22), date(2025, 9, 21))
    with connect(fresh_db) as conn:
        conn.execute("UPDATE batches SET status = 'scored' WHERE source <> %s", (source,))
        repo = BatchRepository(conn)
        oldest = repo.oldest_batch_with_status(BatchStatus.LOADED)
        assert oldest is not None and oldest.batch_id == earlier
        repo.mark_published(earlier)
        oldest = repo.oldest_batch_with_status("loaded")
        assert oldest is not None and oldest.batch_id == later
        repo.mark_published(later)
        assert repo.oldest_batch_with_status(BatchStatus.LOADED) is None


def test_concurrent_workers_get_different_batches(fresh_db: Settings, unique: str) -> None:
    source = f"w{unique}"
    first, second = _make(fresh_db, source, date(2025, 9, 23), date(2025, 9, 24))
    with connect(fresh_db) as conn:
        conn.execute(
            "UPDATE batches SET status = 'scored' WHERE source <> %s AND status = 'loaded'",
            (source,),
        )
    with connect(fresh_db) as a, connect(fresh_db) as b:
        got_a = BatchRepository(a).oldest_batch_with_status("loaded", skip_locked=True)
        got_b = BatchRepository(b).oldest_batch_with_status("loaded", skip_locked=True)
        assert got_a is not None and got_b is not None
        assert (got_a.batch_id, got_b.batch_id) == (first, second)
